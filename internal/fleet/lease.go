package fleet

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is one piece of singleton work (an ECS cluster's poller): at most
// one instance of the fleet holds it at a time. It is a key in the leases
// bucket, whose value names the holder; the holder renews it by revision
// every third of the lease, and the bucket drops a key a lease after its
// last write, so a holder that dies or is cut off loses it within a lease,
// and another instance, trying every third of a lease, takes it within
// about a lease and a third. A holder that cannot renew for half a lease
// steps down before its key can expire: two never hold it at once while
// the servers' clocks agree.
//
// Its methods are safe for concurrent use.
type Lease struct {
	f    *Fleet
	name string
	key  string

	mu      sync.Mutex
	leading bool
	rev     uint64    // of the key as this instance last wrote it
	renewed time.Time // when it last renewed (or took) it
	holder  string    // who holds it, as last seen
	changed chan struct{}
}

// Leading reports whether this instance holds the lease now, and a
// channel closed when that changes.
func (l *Lease) Leading() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading, l.changed
}

// Holder is the instance that holds the lease, as last seen ("" for none).
func (l *Lease) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

func (l *Lease) set(leading bool, holder string, rev uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holder = holder
	if leading {
		l.rev, l.renewed = rev, now
	}
	if leading == l.leading {
		return
	}
	l.leading = leading
	close(l.changed)
	l.changed = make(chan struct{})
	if leading {
		l.f.log.Info("lease taken: this instance leads", "lease", l.name, "instance", l.f.id)
	} else {
		l.f.log.Warn("lease lost: another instance may lead now", "lease", l.name, "instance", l.f.id, "holder", holder)
	}
}

// campaign takes, renews and watches the lease until ctx ends, then gives
// it up (deletes the key, so that another takes it at once).
func (l *Lease) campaign(ctx context.Context) {
	every := l.f.cfg.Lease / 3
	for {
		l.tick(ctx)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			l.release()
			return
		case <-t.C:
		}
	}
}

// tick is one round: renew if holding, else try to take.
func (l *Lease) tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.f.cfg.Lease/3)
	defer cancel()
	now := time.Now()
	l.mu.Lock()
	leading, rev, renewed := l.leading, l.rev, l.renewed
	l.mu.Unlock()
	if leading {
		nrev, err := l.f.leases.Update(ctx, l.key, []byte(l.f.id), rev)
		switch {
		case err == nil:
			l.set(true, l.f.id, nrev, now)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			// Someone else wrote it: the lease is theirs.
			l.set(false, l.read(ctx), 0, now)
		case now.Sub(renewed) > l.f.cfg.Lease/2:
			// Not renewed for half a lease: step down before it can expire
			// under us and another take it.
			l.f.log.Warn("lease not renewed: stepping down", "lease", l.name, "error", err)
			l.set(false, "", 0, now)
		default:
			l.f.log.Debug("lease renewal failed; trying again", "lease", l.name, "error", err)
		}
		return
	}
	nrev, err := l.f.leases.Create(ctx, l.key, []byte(l.f.id))
	switch {
	case err == nil:
		l.set(true, l.f.id, nrev, now)
	case errors.Is(err, jetstream.ErrKeyExists):
		l.set(false, l.read(ctx), 0, now)
	default:
		l.f.log.Debug("lease not taken", "lease", l.name, "error", err)
	}
}

// read returns the holder the bucket names ("" when none or unknown).
func (l *Lease) read(ctx context.Context) string {
	e, err := l.f.leases.Get(ctx, l.key)
	if err != nil {
		return ""
	}
	return string(e.Value())
}

// release gives the lease up if this instance holds it.
func (l *Lease) release() {
	l.mu.Lock()
	leading, rev := l.leading, l.rev
	l.mu.Unlock()
	if !leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Only this holder's revision is deleted: a lease someone else took
	// meanwhile is left alone.
	if err := l.f.leases.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		l.f.log.Debug("lease not released; it expires", "lease", l.name, "error", err)
	}
	l.set(false, "", 0, time.Now())
}

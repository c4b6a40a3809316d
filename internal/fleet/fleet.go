// Package fleet is what several switchyard instances share through a NATS
// cluster, without consensus of their own: leases for singleton work (one
// instance polls each ECS cluster), fleet-wide rate limits (tokens taken in
// small batches from a shared bucket), and the roster of live instances
// that fleet-wide concurrency is divided by and `switchyard status` shows.
// Everything is JetStream key-value buckets, written by compare-and-set.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/kvbucket"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is the `fleet:` block of the config file.
type Config struct {
	// Lease is how long singleton work's lease (an ECS cluster's poller)
	// lasts without being renewed: when its holder dies or is cut off,
	// another instance takes it over within about a lease and a third. It
	// is also how long a dead instance is counted in the roster. Default
	// 15s.
	Lease time.Duration `yaml:"lease"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Lease == 0 {
		c.Lease = 15 * time.Second
	}
}

// Validate checks the fields on their own.
func (c *Config) Validate() error {
	if c.Lease < 3*time.Second {
		return router.Fieldf("lease", "%s is too short: a lease is renewed every third of it, over the network (at least 3s)", c.Lease)
	}
	return nil
}

// The fleet's buckets.
const (
	LeaseBucket  = "switchyard_leases"
	RosterBucket = "switchyard_roster"
	TokenBucket  = "switchyard_tokens"
)

// Fleet is this instance's membership of the fleet. Its methods are safe
// for concurrent use.
type Fleet struct {
	cfg     Config
	id      string
	log     *slog.Logger
	started time.Time
	version string

	leases, roster, tokens jetstream.KeyValue

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	held    map[string]*Lease
	rates   map[string]*Rate
	conc    map[string]concurrency
	members []Member // as last read
	shares  map[string]Share
}

// Member is one live instance, as it last wrote itself in the roster.
type Member struct {
	ID      string           `json:"id"`
	Host    string           `json:"host"`
	Version string           `json:"version"`
	Started time.Time        `json:"started"`
	Seen    time.Time        `json:"seen"`
	Leases  []string         `json:"leases,omitempty"`
	Shares  map[string]Share `json:"shares,omitempty"`
}

// Share is what an instance has of a target's fleet-wide limits.
type Share struct {
	// Concurrency is its part of the target's fleet-wide concurrency.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate is the tokens per second it took of the target's fleet-wide
	// rate over its last window.
	Rate float64 `json:"rate,omitempty"`
	// Fallback is set while the cluster cannot be reached: the instance
	// limits itself to its share of the rate.
	Fallback bool `json:"fallback,omitempty"`
}

// Open joins the fleet: it opens (or creates) the buckets, and starts
// writing this instance into the roster. version is the build's.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, version string, log *slog.Logger, replicas int) (*Fleet, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &Fleet{cfg: cfg, id: newID(), log: log.With("component", "fleet"), started: time.Now(), version: version,
		held: map[string]*Lease{}, rates: map[string]*Rate{}, conc: map[string]concurrency{}, shares: map[string]Share{}}
	var err error
	open := func(bucket, what string, ttl time.Duration) jetstream.KeyValue {
		if err != nil {
			return nil
		}
		var kv jetstream.KeyValue
		kv, err = openBucket(ctx, js, jetstream.KeyValueConfig{Bucket: bucket, Description: "switchyard: " + what, History: 1, TTL: ttl,
			Storage: jetstream.FileStorage, Replicas: max(1, replicas)})
		return kv
	}
	f.leases = open(LeaseBucket, "leases of singleton work", cfg.Lease)
	f.roster = open(RosterBucket, "the live instances", cfg.Lease)
	f.tokens = open(TokenBucket, "fleet-wide rate limits", 0)
	if err != nil {
		return nil, err
	}
	// The roster is read before anything is shared out: an instance that
	// knew of no other would take the whole of a fleet-wide limit as its
	// share when the cluster is slow to answer.
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f.heartbeat(hctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fleet: the roster (bucket %s): %w", RosterBucket, err)
		}
		f.log.Warn("fleet: the roster does not answer yet; trying again", "error", err)
		if err := pause(ctx); err != nil {
			return nil, fmt.Errorf("fleet: the roster (bucket %s): %w", RosterBucket, err)
		}
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Go(f.beat)
	return f, nil
}

// openBucket opens a bucket, creating it when missing; an existing one
// with another lease (TTL) than asked is an error naming both, as instances
// that disagree on it would not agree on who leads.
func openBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := kvbucket.Open(ctx, js, want)
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", want.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", want.Bucket, err)
	}
	if st.TTL() != want.TTL {
		return nil, fmt.Errorf("fleet: bucket %s has ttl %s, this instance's fleet.lease asks for %s: every instance of a fleet needs the same fleet.lease (or delete the bucket when none runs)",
			want.Bucket, st.TTL(), want.TTL)
	}
	return kv, nil
}

func newID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	if host == "" {
		host = "switchyard"
	}
	return names.Token(host) + "-" + hex.EncodeToString(b[:])
}

// ID is this instance's id in the fleet.
func (f *Fleet) ID() string { return f.id }

// Lease returns the lease named name, campaigning for it from now until
// Close. Asking twice returns the same lease.
func (f *Fleet) Lease(name string) *Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.held[name]; l != nil {
		return l
	}
	l := &Lease{f: f, name: name, key: "lease." + names.Token(name), changed: make(chan struct{})}
	f.held[name] = l
	f.wg.Go(func() { l.campaign(f.ctx) })
	return l
}

// beat writes this instance into the roster every third of a lease, and
// reads the others.
func (f *Fleet) beat() {
	t := time.NewTicker(f.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f.roster.Delete(ctx, "member."+f.id)
			cancel()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Lease/3)
		f.heartbeat(ctx)
		cancel()
	}
}

// heartbeat writes this instance and reads the roster.
func (f *Fleet) heartbeat(ctx context.Context) error {
	me := f.self()
	b, _ := json.Marshal(me)
	if _, err := f.roster.Put(ctx, "member."+f.id, b); err != nil {
		f.log.Debug("roster not written", "error", err)
		return err
	}
	members, err := f.read(ctx)
	if err != nil {
		f.log.Debug("roster not read", "error", err)
		return err
	}
	f.mu.Lock()
	f.members = members
	f.mu.Unlock()
	f.applyShares()
	return nil
}

// self is this instance as the roster shows it.
func (f *Fleet) self() Member {
	host, _ := os.Hostname()
	m := Member{ID: f.id, Host: host, Version: f.version, Started: f.started, Seen: time.Now(), Shares: map[string]Share{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, l := range f.held {
		if leading, _ := l.Leading(); leading {
			m.Leases = append(m.Leases, name)
		}
	}
	slices.Sort(m.Leases)
	for target, s := range f.shares {
		m.Shares[target] = s
	}
	for target, r := range f.rates {
		s := m.Shares[target]
		s.Rate, s.Fallback = r.taken()
		m.Shares[target] = s
	}
	return m
}

// read returns the roster's live members.
func (f *Fleet) read(ctx context.Context) ([]Member, error) {
	keys, err := f.roster.ListKeysFiltered(ctx, "member.>")
	if err != nil {
		return nil, err
	}
	defer keys.Stop()
	var out []Member
	for k := range keys.Keys() {
		e, err := f.roster.Get(ctx, k)
		if err != nil {
			continue // gone meanwhile
		}
		var m Member
		if json.Unmarshal(e.Value(), &m) == nil && strings.HasPrefix(k, "member.") {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Members returns the live instances as last read (this one included once
// it has written itself), asking the cluster when ctx allows.
func (f *Fleet) Members(ctx context.Context) []Member {
	if ms, err := f.read(ctx); err == nil {
		f.holders(ctx, ms)
		f.mu.Lock()
		f.members = ms
		f.mu.Unlock()
		return ms
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

// holders sets, in the members' Leases, the holder of each lease this
// instance campaigns for as the leases bucket has it now: a member's own
// entry is up to a third of a lease old, and a holder that died is in the
// roster until its entry expires.
func (f *Fleet) holders(ctx context.Context, ms []Member) {
	f.mu.Lock()
	leases := slices.Collect(maps.Values(f.held))
	f.mu.Unlock()
	for _, l := range leases {
		holder := ""
		e, err := f.leases.Get(ctx, l.key)
		switch {
		case err == nil:
			holder = string(e.Value())
		case !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted):
			continue // unknown: the roster's word stands
		}
		for i := range ms {
			m := &ms[i]
			m.Leases = slices.DeleteFunc(m.Leases, func(n string) bool { return n == l.name })
			if m.ID == holder {
				m.Leases = append(m.Leases, l.name)
				slices.Sort(m.Leases)
			}
		}
	}
}

// size is the number of live instances as last read, at least 1.
func (f *Fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(1, len(f.members))
}

// Close gives up this instance's leases, leaves the roster, and stops.
// It is idempotent.
func (f *Fleet) Close(ctx context.Context) error {
	f.cancel()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fleet: close: %w", ctx.Err())
	}
}

// Concurrency shares a target's fleet-wide concurrency of total calls
// among the live instances: set is called with this instance's share (the
// total divided by the instances, rounded down, at least 1) now and
// whenever the roster changes it. A second call for a target replaces the
// first (a reload); a nil set ends it.
func (f *Fleet) Concurrency(target string, total int, set func(n int)) {
	f.mu.Lock()
	if set == nil { // no longer fleet-wide
		delete(f.conc, target)
		delete(f.shares, target)
		f.mu.Unlock()
		return
	}
	f.conc[target] = concurrency{total: total, set: set}
	s := f.shares[target]
	s.Concurrency = 0 // set anew below
	f.shares[target] = s
	f.mu.Unlock()
	f.applyShares()
}

// concurrency is a target's fleet-wide concurrency and what applies it.
type concurrency struct {
	total int
	set   func(n int)
}

// applyShares gives each target's concurrency its share of the roster.
func (f *Fleet) applyShares() {
	size := f.size()
	f.mu.Lock()
	var calls []func()
	for target, c := range f.conc {
		n := max(1, c.total/size)
		s := f.shares[target]
		if s.Concurrency != n {
			s.Concurrency = n
			f.shares[target] = s
			set := c.set
			calls = append(calls, func() { set(n) })
		}
	}
	f.mu.Unlock()
	for _, call := range calls {
		call()
	}
}

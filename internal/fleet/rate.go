package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/internal/names"
)

// Rate is a target's fleet-wide rate limit: every instance takes its calls'
// tokens from one shared count per slot of time (about 200ms, or the time
// of one token at rates under 5/s), a few tokens at a time by
// compare-and-set, so that a call costs no round trip of its own and the
// fleet's calls in any slot stay within the rate. Tokens left when a slot
// ends are dropped, not carried over. While the cluster cannot be reached,
// the instance falls back to its share of the rate (the rate divided by
// the instances last seen), never to the whole of it.
//
// Its methods are safe for concurrent use.
type Rate struct {
	f         *Fleet
	target    string
	key       string
	perSecond float64
	slot      time.Duration // length of a slot
	limit     int           // tokens in a slot, fleet-wide
	batch     int           // tokens taken at a time

	mu         sync.Mutex
	slotIndex  int64 // the slot held tokens belong to
	have       int   // tokens held for it
	down       time.Time
	fallback   *rate.Limiter
	count      int       // tokens used since since
	since      time.Time // start of the reporting window
	inFallback bool
}

// Rate returns target's fleet-wide rate limit of perSecond calls.
func (f *Fleet) Rate(target string, perSecond float64) *Rate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rates[target]; r != nil && r.perSecond == perSecond {
		return r
	}
	limit := max(1, int(math.Round(perSecond*0.2)))
	r := &Rate{
		f: f, target: target, key: "rate." + names.Token(target), perSecond: perSecond,
		limit: limit, slot: time.Duration(float64(limit) / perSecond * float64(time.Second)), batch: max(1, limit/4),
		since: time.Now(),
	}
	f.rates[target] = r
	return r
}

// slotValue is a slot's count as stored: its index and the tokens taken.
type slotValue struct {
	Slot int64 `json:"s"`
	Used int   `json:"u"`
}

// rateTimeout bounds taking tokens from the cluster; rateDown is how long
// an instance keeps to its share after failing to.
const (
	rateTimeout = time.Second
	rateDown    = 5 * time.Second
)

// Wait takes a token, waiting for one as long as ctx allows.
func (r *Rate) Wait(ctx context.Context) error {
	for {
		now := time.Now()
		idx := now.UnixNano() / int64(r.slot)
		r.mu.Lock()
		if idx != r.slotIndex {
			r.slotIndex, r.have = idx, 0
		}
		if r.have > 0 {
			r.have--
			r.count++
			r.mu.Unlock()
			return nil
		}
		fallback := now.Before(r.down)
		r.mu.Unlock()
		if fallback {
			return r.waitFallback(ctx)
		}
		n, err := r.take(ctx, idx)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			r.f.log.Warn("fleet-wide rate: the cluster does not answer; keeping to this instance's share for a while",
				"target", r.target, "share_per_second", r.perSecond/float64(r.f.size()), "error", err)
			r.mu.Lock()
			r.down = time.Now().Add(rateDown)
			r.mu.Unlock()
			continue
		case n == 0:
			// The slot is used up fleet-wide: wait for the next.
			next := time.Unix(0, (idx+1)*int64(r.slot))
			t := time.NewTimer(time.Until(next))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			continue
		}
		r.mu.Lock()
		if r.slotIndex == idx {
			r.have += n - 1
			r.count++
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock() // the slot ended meanwhile: its tokens are spent
	}
}

// take claims up to batch tokens of slot idx; 0 when it is used up.
func (r *Rate) take(ctx context.Context, idx int64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, rateTimeout)
	defer cancel()
	for {
		e, err := r.f.tokens.Get(ctx, r.key)
		var v slotValue
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, err
		default:
			rev = e.Revision()
			if json.Unmarshal(e.Value(), &v) != nil {
				v = slotValue{} // not ours: overwrite
			}
		}
		switch {
		case v.Slot > idx:
			return 0, nil // another instance is in the next slot already: so is this one
		case v.Slot < idx:
			v = slotValue{Slot: idx}
		}
		n := min(r.batch, r.limit-v.Used)
		if n <= 0 {
			return 0, nil
		}
		v.Used += n
		b, _ := json.Marshal(v)
		if rev == 0 {
			_, err = r.f.tokens.Create(ctx, r.key, b)
		} else {
			_, err = r.f.tokens.Update(ctx, r.key, b, rev)
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another instance took some meanwhile
		default:
			return 0, err
		}
	}
}

// waitFallback takes a token of this instance's share of the rate.
func (r *Rate) waitFallback(ctx context.Context) error {
	share := r.perSecond / float64(r.f.size())
	r.mu.Lock()
	if r.fallback == nil || r.fallback.Limit() != rate.Limit(share) {
		r.fallback = rate.NewLimiter(rate.Limit(share), 1)
	}
	l := r.fallback
	r.inFallback = true
	r.mu.Unlock()
	if err := l.Wait(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.count++
	r.mu.Unlock()
	return nil
}

// Tokens is a guess at the tokens to be had now without waiting long:
// those held, else one (taking some may well succeed).
func (r *Rate) Tokens() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return float64(max(1, r.have))
}

// taken is the rate of tokens this instance used since it was last asked,
// and whether it kept to its share since then.
func (r *Rate) taken() (perSecond float64, fallback bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if d := now.Sub(r.since).Seconds(); d > 0 {
		perSecond = float64(r.count) / d
	}
	fallback = r.inFallback || now.Before(r.down)
	r.count, r.since, r.inFallback = 0, now, false
	return perSecond, fallback
}

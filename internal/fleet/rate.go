package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/internal/names"
)

// Rate is a target's fleet-wide rate limit: a token bucket in the
// cluster, refilled at the rate and holding at most 0.3 s of it, from which
// every instance takes its calls' tokens a few at a time by compare-and-set,
// so that a call costs no round trip of its own and the fleet's calls in
// any span of time stay within the rate plus that 0.3 s. Tokens an
// instance took and did not use within 200ms are dropped, not saved up.
// While the cluster cannot be reached, the instance falls back to its share
// of the rate (the rate divided by the instances last seen), never to the
// whole of it.
//
// Its methods are safe for concurrent use.
type Rate struct {
	f         *Fleet
	target    string
	key       string
	perSecond float64
	burst     float64 // the bucket's capacity
	batch     int     // tokens taken at a time

	mu         sync.Mutex
	have       int       // tokens held
	took       time.Time // when they were taken
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
	burst := max(1, perSecond*0.3)
	r := &Rate{
		f: f, target: target, key: "rate." + names.Token(target), perSecond: perSecond,
		burst: burst, batch: max(1, int(burst/4)), since: time.Now(),
	}
	f.rates[target] = r
	return r
}

// bucketValue is the bucket as stored: its tokens at a time.
type bucketValue struct {
	Tokens float64 `json:"t"`
	At     int64   `json:"at"` // Unix nanoseconds
}

// rateTimeout bounds taking tokens from the cluster; rateDown is how long
// an instance keeps to its share after failing to; heldFor is how long
// tokens taken and not used stay usable.
const (
	rateTimeout = 3 * time.Second
	rateDown    = 5 * time.Second
	heldFor     = 200 * time.Millisecond
)

// Wait takes a token, waiting for one as long as ctx allows.
func (r *Rate) Wait(ctx context.Context) error {
	for {
		now := time.Now()
		r.mu.Lock()
		if now.Sub(r.took) > heldFor {
			r.have = 0
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
		n, wait, err := r.take(ctx)
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
			// Instances that wait for the same token would wake together,
			// and the nearest to the bucket's server would win it every
			// time: a jitter of up to a token's interval makes the order
			// random, so every instance that wants tokens gets a part.
			// The bucket holds 0.3 s of the rate meanwhile: nothing is
			// lost to the wait.
			wait += rand.N(time.Duration(float64(time.Second) / r.perSecond))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			continue
		}
		r.mu.Lock()
		r.have, r.took = n-1, time.Now()
		r.count++
		r.mu.Unlock()
		return nil
	}
}

// take claims up to batch tokens from the bucket; none, and how long until
// there is one, when it is empty.
func (r *Rate) take(ctx context.Context) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, rateTimeout)
	defer cancel()
	for {
		e, err := r.f.tokens.Get(ctx, r.key)
		now := time.Now()
		v := bucketValue{Tokens: r.burst, At: now.UnixNano()} // a new bucket is full
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case unready(err):
			if err := pause(ctx); err != nil {
				return 0, 0, err
			}
			continue
		case err != nil:
			return 0, 0, err
		default:
			rev = e.Revision()
			if json.Unmarshal(e.Value(), &v) != nil {
				v = bucketValue{At: now.UnixNano()} // not ours: start empty
			}
		}
		// Refill since it was last written (never backwards: another
		// instance's clock may run ahead of this one's).
		if elapsed := time.Duration(now.UnixNano() - v.At); elapsed > 0 {
			v.Tokens = min(r.burst, v.Tokens+elapsed.Seconds()*r.perSecond)
			v.At = now.UnixNano()
		}
		n := min(r.batch, int(v.Tokens))
		if n < 1 {
			return 0, time.Duration((1 - v.Tokens) / r.perSecond * float64(time.Second)), nil
		}
		v.Tokens -= float64(n)
		b, _ := json.Marshal(v)
		if rev == 0 {
			_, err = r.f.tokens.Create(ctx, r.key, b)
		} else {
			_, err = r.f.tokens.Update(ctx, r.key, b, rev)
		}
		switch {
		case err == nil:
			return n, 0, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// another instance took some meanwhile
		case unready(err):
			if err := pause(ctx); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, err
		}
	}
}

// unready reports an answer from a bucket that is not serving for the
// moment (its stream is electing a leader, or is just made): asked again
// shortly, it answers.
func unready(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// pause waits a moment before a bucket that was not serving is asked
// again, or returns ctx's error.
func pause(ctx context.Context) error {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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

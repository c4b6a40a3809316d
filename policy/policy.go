package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/router"
)

// Policy wraps a target's sink: per attempt it takes a rate token, passes
// the circuit breaker, takes a concurrency slot and applies the timeout;
// around the attempts it retries with jittered exponential backoff,
// bounded by retry.attempts and retry.max_age, and dead-letters what
// fails for good. Its Deliver returns nil when the delivery resolved:
// delivered, or dead-lettered.
//
// Counting follows the design: an attempt is a call that reached the
// target (a half-open probe is one); waiting for the breaker or in backoff
// spends none and holds no concurrency slot. Throttled calls back off (by
// the target's hint when it gives one) and do not count against
// retry.attempts or the breaker; only retry.max_age bounds them. They also
// lower the effective concurrency, which recovers as calls succeed.
type Policy struct {
	next  router.Sink
	cfg   Config
	dl    router.Sink
	slots *limiter
	rate  RateLimiter
	cb    *gobreaker.TwoStepCircuitBreaker[struct{}]
	log   *slog.Logger
	stats *Stats
	obs   Observer

	backlog    router.Backlog // nil: deliveries wait in memory
	maxWaiting int            // waiting deliveries beyond which new ones go to the backlog
	inside     atomic.Int64   // deliveries in Deliver: in a call, or waiting
	backlogMu  sync.Mutex
	backlogOff time.Time     // after a failed push, the backlog is not tried until then
	opened     chan struct{} // closed when the breaker opens; guarded by backlogMu
}

// Stats are a policy's counters and gauges, safe to read at any time.
type Stats struct {
	// Attempts counts calls made to the target.
	Attempts atomic.Int64
	// Delivered, DeadLettered and Unresolved count deliveries by how they
	// ended; Unresolved ones go back to their source.
	Delivered, DeadLettered, Unresolved atomic.Int64
	// Retried counts attempts that failed and were tried again; Throttled
	// counts attempts the target throttled.
	Retried, Throttled atomic.Int64
	// DeadLetterFailures counts dead letters the dead-letter target did
	// not take.
	DeadLetterFailures atomic.Int64
	// Backlogged counts deliveries moved to the target's backlog;
	// BacklogErrors the moves that failed (those deliveries waited in
	// memory instead).
	Backlogged, BacklogErrors atomic.Int64
	// LastBacklogError is the latest failed move, or nil.
	LastBacklogError atomic.Pointer[router.LastError]
	// InFlight is the number of calls to the target now; Waiting the
	// number of deliveries waiting for an open breaker.
	InFlight, Waiting atomic.Int64
	// Limit is the effective concurrency: the configured one, lowered
	// while the target throttles.
	Limit atomic.Int64
	// LastError is the latest failed attempt, or nil.
	LastError atomic.Pointer[router.LastError]
}

// Observer receives a policy's latencies, for histograms. Its methods are
// called concurrently and must not block.
type Observer interface {
	// ObserveAttempt is called after each call to the target with how
	// long it took and its outcome (nil, or a classified error).
	ObserveAttempt(took time.Duration, err error)
	// ObserveDelivered is called when a delivery succeeds, with the time
	// since its message was received.
	ObserveDelivered(sinceReceived time.Duration)
}

// Option changes a Policy.
type Option func(*Policy)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(p *Policy) { p.log = l } }

// WithStats makes the policy count in st instead of its own Stats: a
// policy rebuilt by a config reload keeps its target's counters.
func WithStats(st *Stats) Option { return func(p *Policy) { p.stats = st } }

// WithObserver sets the observer of latencies.
func WithObserver(o Observer) Option { return func(p *Policy) { p.obs = o } }

// RateLimiter limits a target's calls: golang.org/x/time/rate's Limiter,
// or a fleet-wide one. Its methods are safe for concurrent use.
type RateLimiter interface {
	// Wait takes a token, waiting for one while ctx allows.
	Wait(ctx context.Context) error
	// Tokens is how many tokens there are to take now (a guess may do).
	Tokens() float64
}

// WithRateLimiter makes l limit the target's calls instead of a limiter of
// the policy's own rate (a fleet-wide rate, shared with other instances).
func WithRateLimiter(l RateLimiter) Option { return func(p *Policy) { p.rate = l } }

// SetConcurrency changes the most calls in flight (the instance's share of
// a fleet-wide concurrency, as the fleet changes); calls under way finish.
func (p *Policy) SetConcurrency(n int) { p.slots.setMax(n) }

// WithBacklog gives the target a backlog: a delivery that would wait while
// the breaker is open, or while more than maxWaiting of the target's
// deliveries wait (for a slot, a rate token, or a retry), is pushed to b
// instead, and its Deliver returns nil with the delivery's State
// Backlogged. Deliveries of ordered messages (Message.Group) never go to a
// backlog: they would be overtaken. When a push fails, the delivery waits
// in memory, as without a backlog.
func WithBacklog(b router.Backlog, maxWaiting int) Option {
	return func(p *Policy) { p.backlog, p.maxWaiting = b, max(0, maxWaiting) }
}

// Wrap returns next wrapped in the policy cfg (defaults applied). A nil
// deadLetter means failed deliveries are not dead-lettered but left
// unresolved, so their source message comes back.
func Wrap(next router.Sink, cfg Config, deadLetter router.Sink, opts ...Option) *Policy {
	cfg.SetDefaults()
	p := &Policy{next: next, cfg: cfg, dl: deadLetter, log: slog.Default(), stats: new(Stats), obs: nopObserver{}}
	for _, o := range opts {
		o(p)
	}
	p.slots = newLimiter(cfg.Concurrency, func(n int) { p.stats.Limit.Store(int64(n)) })
	// Delivery lines name the target through router.LogAttrs; the
	// breaker's own lines name it themselves.
	if r := cfg.Rate.PerSecond(); r > 0 && p.rate == nil {
		p.rate = rate.NewLimiter(rate.Limit(r), max(1, int(r/10)))
	}
	p.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        next.Name(),
		MaxRequests: uint32(cfg.Breaker.HalfOpen),
		Timeout:     cfg.Breaker.Open,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(cfg.Breaker.Failures) },
		// Permanent failures say nothing about the target's health, throttles
		// are handled by backing off, and cancellations are ours.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || router.ClassOf(err) != router.Retryable
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			p.log.Warn("circuit breaker "+to.String(), "target", name, "from", from.String())
			if to == gobreaker.StateOpen {
				p.backlogMu.Lock()
				close(p.opened)
				p.opened = make(chan struct{})
				p.backlogMu.Unlock()
			}
		},
	})
	p.opened = make(chan struct{})
	return p
}

var _ router.Sink = (*Policy)(nil)

// Name returns the target's name.
func (p *Policy) Name() string { return p.next.Name() }

// Stats returns the policy's counters.
func (p *Policy) Stats() *Stats { return p.stats }

// ReportLimit stores the effective concurrency in Stats().Limit again: a
// policy built for a reload that was rejected may have overwritten it.
func (p *Policy) ReportLimit() { p.stats.Limit.Store(int64(p.slots.current())) }

// Config returns the policy's config, defaults applied.
func (p *Policy) Config() Config { return p.cfg }

type nopObserver struct{}

func (nopObserver) ObserveAttempt(time.Duration, error) {}
func (nopObserver) ObserveDelivered(time.Duration)      {}

// BreakerState returns the circuit breaker's state: closed, half-open or
// open.
func (p *Policy) BreakerState() string { return p.cb.State().String() }

// errExpired ends the attempts of a delivery older than retry.max_age.
var errExpired = errors.New("retry.max_age reached")

// errBacklogged ends an attempt whose delivery went to the backlog.
var errBacklogged = errors.New("moved to the backlog")

// Deliver makes attempts until the delivery succeeds, fails for good (it
// is then dead-lettered), goes to the target's backlog, or ctx ends (it is
// unresolved, and the error is returned). A delivery that comes with
// attempts made before (the ledger, a backlog) carries on from them:
// retry.attempts and retry.max_age count them all.
func (p *Policy) Deliver(ctx context.Context, d *router.Delivery) error {
	p.inside.Add(1)
	defer p.inside.Add(-1)
	if d.FirstAttempt.IsZero() {
		d.FirstAttempt = time.Now()
	}
	deadline := d.FirstAttempt.Add(p.cfg.Retry.MaxAge)
	switch {
	case d.Failures >= p.cfg.Retry.Attempts:
		return p.deadLetter(ctx, d, fmt.Errorf("%d attempts failed before: %w", d.Failures, lastErr(d)))
	case !time.Now().Before(deadline):
		return p.deadLetter(ctx, d, fmt.Errorf("%w before: %w", errExpired, lastErr(d)))
	}
	for {
		err := p.attempt(ctx, d, deadline)
		if err == nil {
			d.State = router.Delivered
			p.stats.Delivered.Add(1)
			if m := d.Message; m != nil && !m.Received.IsZero() {
				p.obs.ObserveDelivered(time.Since(m.Received))
			}
			return nil
		}
		if errors.Is(err, errBacklogged) {
			return nil
		}
		if errors.Is(err, errExpired) {
			return p.deadLetter(ctx, d, err)
		}
		if d.FirstErr == nil {
			d.FirstErr = err
		}
		d.LastErr = err
		if ctx.Err() != nil {
			p.stats.Unresolved.Add(1)
			return err
		}
		class := router.ClassOf(err)
		if class == router.Permanent {
			return p.deadLetter(ctx, d, err)
		}
		wait := router.RetryAfterOf(err)
		if class == router.Throttled {
			p.stats.Throttled.Add(1)
			wait = max(wait, p.backoff(d.Failures+1))
		} else {
			d.Failures++
			if d.Failures >= p.cfg.Retry.Attempts {
				return p.deadLetter(ctx, d, fmt.Errorf("%d attempts failed: %w", d.Failures, err))
			}
			wait = max(wait, p.backoff(d.Failures))
		}
		if time.Now().Add(wait).After(deadline) {
			return p.deadLetter(ctx, d, fmt.Errorf("%w: %w", errExpired, err))
		}
		// The attempt is on record before the wait: a crash or a
		// redelivery carries on from it.
		d.Record(ctx, router.Pending)
		p.stats.Retried.Add(1)
		if p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.Debug("retrying", router.LogAttrs(d), "attempt", d.Attempt, "class", class.String(), "in", wait, "error", err)
		}
		if p.waitingOver(d) && p.toBacklog(ctx, d) {
			return nil
		}
		moved, err := p.backoffSleep(ctx, d, wait)
		if moved {
			return nil
		}
		if err != nil {
			p.stats.Unresolved.Add(1)
			return err
		}
	}
}

// lastErr is the delivery's last failure, for a dead letter made without
// a call.
func lastErr(d *router.Delivery) error {
	if d.LastErr != nil {
		return d.LastErr
	}
	return errors.New("no error recorded")
}

// backoffSleep waits before a retry. With a backlog, a delivery whose
// breaker is open, or opens while it waits, moves there (moved true).
func (p *Policy) backoffSleep(ctx context.Context, d *router.Delivery, wait time.Duration) (moved bool, err error) {
	if !p.mayBacklog(d) {
		return false, sleep(ctx, wait)
	}
	p.backlogMu.Lock()
	opened := p.opened
	p.backlogMu.Unlock()
	// Opened before the channel was taken (by this very failure, say):
	// waiting out the backoff would only meet it open.
	if p.cb.State() == gobreaker.StateOpen && p.toBacklog(ctx, d) {
		return true, nil
	}
	end := time.Now().Add(wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-opened:
		if p.toBacklog(ctx, d) {
			return true, nil
		}
		return false, sleep(ctx, time.Until(end))
	}
}

// backlogTimeout bounds one push to the backlog; backlogPause is how long
// the backlog is left alone after a push failed.
const (
	backlogTimeout = 5 * time.Second
	backlogPause   = 5 * time.Second
)

// mayBacklog reports whether d may go to the backlog: there is one, and d
// is not ordered behind other messages of its group.
func (p *Policy) mayBacklog(d *router.Delivery) bool {
	return p.backlog != nil && (d.Message == nil || d.Message.Group == "")
}

// waitingOver reports whether d may go to the backlog because too many of
// the target's deliveries wait. Deliveries drained from the backlog only
// go back while the breaker is open (else they would go round).
func (p *Policy) waitingOver(d *router.Delivery) bool {
	return p.mayBacklog(d) && !d.Drained && p.inside.Load()-p.stats.InFlight.Load() > int64(p.maxWaiting)
}

// toBacklog pushes d to the backlog; it reports whether d is there now
// (and its state Backlogged). A failed push is counted, logged, and the
// backlog left alone for a while: d waits in memory instead.
func (p *Policy) toBacklog(ctx context.Context, d *router.Delivery) bool {
	if !p.mayBacklog(d) {
		return false
	}
	p.backlogMu.Lock()
	off := time.Now().Before(p.backlogOff)
	p.backlogMu.Unlock()
	if off || ctx.Err() != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	err := p.backlog.Push(pctx, d)
	cancel()
	if err != nil {
		p.stats.BacklogErrors.Add(1)
		p.stats.LastBacklogError.Store(&router.LastError{At: time.Now(), Error: err.Error()})
		if router.ClassOf(err) != router.Permanent { // else only this entry cannot go (too large)
			p.backlogMu.Lock()
			p.backlogOff = time.Now().Add(backlogPause)
			p.backlogMu.Unlock()
		}
		p.log.Error("BACKLOG FAILED: the delivery waits in memory, holding its message", router.LogAttrs(d), "backlog", p.backlog.String(), "error", err)
		return false
	}
	d.State = router.Backlogged
	p.stats.Backlogged.Add(1)
	if p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.Debug("delivery moved to the backlog", router.LogAttrs(d), "backlog", p.backlog.String(), "attempts", d.Attempt)
	}
	return true
}

// Room is how many more deliveries the target can start now without
// waiting: none while its breaker is open, its half-open probes while it
// is half-open, else its concurrency less the deliveries it has (and no
// more than its rate has tokens for).
func (p *Policy) Room() int {
	var room int
	switch p.cb.State() {
	case gobreaker.StateOpen:
		return 0
	case gobreaker.StateHalfOpen:
		// The breaker lets HalfOpen calls through in all, not at a time.
		room = p.cfg.Breaker.HalfOpen - int(p.cb.Counts().Requests)
	default:
		room = p.slots.current() - int(p.inside.Load())
	}
	if p.rate != nil {
		room = min(room, int(p.rate.Tokens()))
	}
	return max(0, room)
}

// attempt makes one call: it takes a concurrency slot and a rate token,
// then passes the breaker, and calls with the timeout. While the breaker
// is open it gives its slot back and waits, without spending an attempt,
// for as long as the delivery may still be tried (errExpired after).
func (p *Policy) attempt(ctx context.Context, d *router.Delivery, deadline time.Time) error {
	waiting := false
	defer func() {
		if waiting {
			p.stats.Waiting.Add(-1)
		}
	}()
	var done func(error)
	for {
		if !p.slots.tryAcquire() {
			if p.waitingOver(d) && p.toBacklog(ctx, d) {
				return errBacklogged
			}
			if err := p.slots.acquire(ctx); err != nil {
				return err
			}
		}
		if p.rate != nil {
			if err := p.takeToken(ctx, d); err != nil {
				p.slots.giveBack()
				return err
			}
		}
		var err error
		if done, err = p.cb.Allow(); err == nil {
			break
		}
		p.slots.giveBack()
		if p.toBacklog(ctx, d) {
			return errBacklogged
		}
		if !waiting {
			waiting = true
			p.stats.Waiting.Add(1)
		}
		// Poll the breaker a few times per open period; waiting costs no
		// calls, and its jitter spreads the probes when it half-opens.
		poll := min(max(p.cfg.Breaker.Open/10, 50*time.Millisecond), time.Second)
		poll = poll/2 + rand.N(poll/2+1)
		if time.Now().Add(poll).After(deadline) {
			if err := sleep(ctx, time.Until(deadline)); err != nil {
				return err
			}
			return fmt.Errorf("%w while the circuit breaker was open", errExpired)
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}
	if waiting {
		waiting = false
		p.stats.Waiting.Add(-1)
	}
	// A call under a new launch generation is on record before it is made.
	d.RecordGeneration(ctx)
	p.stats.InFlight.Add(1)
	d.Attempt++
	p.stats.Attempts.Add(1)
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	err := p.next.Deliver(actx, d)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		err = router.RetryableError(fmt.Errorf("attempt timed out after %s: %w", p.cfg.Timeout, err), 0)
	}
	cancel()
	took := time.Since(start)
	p.stats.InFlight.Add(-1)
	p.obs.ObserveAttempt(took, err)
	if err != nil && ctx.Err() == nil {
		p.stats.LastError.Store(&router.LastError{At: start.Add(took), Error: err.Error()})
	}
	done(err)
	p.slots.release(err != nil && router.ClassOf(err) == router.Throttled)
	return err
}

// takeToken waits for a rate token; with a backlog, a delivery that would
// wait for one while too many wait goes there instead (errBacklogged).
func (p *Policy) takeToken(ctx context.Context, d *router.Delivery) error {
	if p.rate.Tokens() < 1 && p.waitingOver(d) && p.toBacklog(ctx, d) {
		return errBacklogged
	}
	return p.rate.Wait(ctx)
}

// backoff is full jitter: a random wait up to initial·2^(n-1), capped at
// retry.max.
func (p *Policy) backoff(n int) time.Duration {
	ceiling := p.cfg.Retry.Initial << min(n-1, 30)
	if ceiling <= 0 || ceiling > p.cfg.Retry.Max {
		ceiling = p.cfg.Retry.Max
	}
	return rand.N(ceiling + 1)
}

// deadLetter sends a delivery that failed for good to the dead-letter
// target. It returns nil once the dead letter is taken, and an error (the
// delivery is unresolved, so its message comes back) when there is no
// dead-letter target or it failed. A delivery that is itself a dead letter
// is never dead-lettered again: it stays unresolved (its sender says so),
// so dead letters cannot loop, whatever the targets' policies.
func (p *Policy) deadLetter(ctx context.Context, d *router.Delivery, why error) error {
	if d.DeadLetter != nil {
		p.stats.Unresolved.Add(1)
		return router.RetryableError(fmt.Errorf("dead letter to %s failed: %w", p.Name(), why), 0)
	}
	if p.dl == nil {
		p.stats.Unresolved.Add(1)
		p.log.Error("delivery failed for good and the target has no dead_letter: its message will come back",
			router.LogAttrs(d), "attempts", d.Attempt, "error", why)
		return router.RetryableError(fmt.Errorf("delivery to %s failed and has no dead-letter target: %w", p.Name(), why), 0)
	}
	first, last := "", ""
	if d.FirstErr != nil {
		first = d.FirstErr.Error()
	}
	if d.LastErr != nil {
		last = d.LastErr.Error()
	}
	if last == "" {
		last = why.Error()
	}
	m := d.Message
	letter := &router.Delivery{
		ID: router.DeliveryID(d.ID, "dead-letter", p.dl.Name()), Message: m, Rule: d.Rule, Target: p.dl.Name(), Payload: m.Body,
		DeadLetter: &router.DeadLetter{
			Source: m.Source, MessageID: m.ID, Rule: d.Rule, Target: p.Name(), Attempts: d.Attempt,
			FirstError: first, LastError: last, FirstAttempt: d.FirstAttempt, LastAttempt: time.Now(), Attributes: m.Attributes,
		},
	}
	if err := p.dl.Deliver(ctx, letter); err != nil {
		p.stats.DeadLetterFailures.Add(1)
		p.stats.Unresolved.Add(1)
		p.log.Error("DEAD LETTER FAILED: the delivery failed for good and its dead letter was not taken; its message will come back",
			router.LogAttrs(d), "dead_letter", p.dl.Name(), "error", err, "cause", why)
		return fmt.Errorf("dead-lettering to %s: %w", p.dl.Name(), err)
	}
	d.State = router.DeadLettered
	p.stats.DeadLettered.Add(1)
	p.log.Warn("delivery dead-lettered", router.LogAttrs(d), "dead_letter", p.dl.Name(), "attempts", d.Attempt, "error", why)
	return nil
}

// sleep waits for d or ctx.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package policy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted is a sink whose calls return the scripted results in turn
// (nil once the script runs out).
type scripted struct {
	name  string
	mu    sync.Mutex
	errs  []error
	calls atomic.Int64
	delay time.Duration
	seen  []*router.Delivery
}

func (s *scripted) Name() string { return s.name }

func (s *scripted) Deliver(ctx context.Context, d *router.Delivery) error {
	s.calls.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *d
	s.seen = append(s.seen, &cp)
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

var quiet = WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func delivery() *router.Delivery {
	return &router.Delivery{
		ID: "d-1", Rule: "r", Target: "t", Payload: []byte(`{"k":1}`),
		Message: &router.Message{Source: "jobs", ID: "m-1", Body: []byte(`original body`), Attributes: map[string]string{"a": "b"}},
	}
}

var (
	retryable = errors.New("503")
	permanent = router.PermanentError(errors.New("400 bad payload"))
)

func cfg() Config {
	c := Config{Retry: Retry{Attempts: 3, Initial: 100 * time.Millisecond, Max: time.Second, MaxAge: time.Minute}, Breaker: Breaker{Failures: 100}}
	c.SetDefaults()
	return c
}

func TestPolicy_DeliversAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &scripted{name: "t", errs: []error{retryable, retryable}}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, cfg(), dlq, quiet)
		d := delivery()
		start := time.Now()
		if err := p.Deliver(context.Background(), d); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
		if sink.calls.Load() != 3 || d.Attempt != 3 {
			t.Errorf("calls %d, attempt %d; want 3", sink.calls.Load(), d.Attempt)
		}
		// Full jitter: at most 100ms, then 200ms.
		if took := time.Since(start); took > 300*time.Millisecond {
			t.Errorf("backoff took %v, more than 100ms + 200ms", took)
		}
		if dlq.calls.Load() != 0 || p.Stats().Delivered.Load() != 1 || p.Stats().Retried.Load() != 2 || p.Stats().Attempts.Load() != 3 {
			t.Errorf("stats: %+v", p.Stats())
		}
	})
}

func TestPolicy_PermanentGoesToDeadLetterAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &scripted{name: "t", errs: []error{permanent}}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, cfg(), dlq, quiet)
		if err := p.Deliver(context.Background(), delivery()); err != nil {
			t.Fatalf("Deliver = %v, want nil (dead-lettered)", err)
		}
		if sink.calls.Load() != 1 || dlq.calls.Load() != 1 {
			t.Fatalf("calls: target %d, dead letter %d", sink.calls.Load(), dlq.calls.Load())
		}
		l := dlq.seen[0]
		dl := l.DeadLetter
		if string(l.Payload) != "original body" || l.Target != "dlq" || dl == nil {
			t.Fatalf("dead letter delivery: %+v", l)
		}
		if dl.Source != "jobs" || dl.MessageID != "m-1" || dl.Rule != "r" || dl.Target != "t" || dl.Attempts != 1 ||
			dl.FirstError != "400 bad payload" || dl.LastError != "400 bad payload" || dl.FirstAttempt.IsZero() || dl.Attributes["a"] != "b" {
			t.Errorf("dead letter record: %+v", dl)
		}
		if p.Stats().DeadLettered.Load() != 1 {
			t.Error("not counted")
		}
	})
}

func TestPolicy_ExhaustedAttemptsGoToDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &scripted{name: "t", errs: []error{retryable, errors.New("reset"), errors.New("502")}}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, cfg(), dlq, quiet)
		if err := p.Deliver(context.Background(), delivery()); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
		if sink.calls.Load() != 3 {
			t.Errorf("calls = %d, want retry.attempts = 3", sink.calls.Load())
		}
		dl := dlq.seen[0].DeadLetter
		if dl.Attempts != 3 || dl.FirstError != "503" || dl.LastError != "502" {
			t.Errorf("dead letter: %+v", dl)
		}
	})
}

func TestPolicy_UnresolvedWithoutDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Wrap(&scripted{name: "t", errs: []error{permanent}}, cfg(), nil, quiet)
		if err := p.Deliver(context.Background(), delivery()); err == nil {
			t.Fatal("a failed delivery without a dead-letter target resolved")
		}
		if p.Stats().Unresolved.Load() != 1 {
			t.Error("not counted as unresolved")
		}
	})
}

func TestPolicy_DeadLetterFailureLeavesItUnresolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dlq := &scripted{name: "dlq", errs: []error{errors.New("dlq down")}}
		p := Wrap(&scripted{name: "t", errs: []error{permanent}}, cfg(), dlq, quiet)
		if err := p.Deliver(context.Background(), delivery()); err == nil {
			t.Fatal("resolved although the dead letter failed")
		}
		if p.Stats().DeadLetterFailures.Load() != 1 || p.Stats().DeadLettered.Load() != 0 {
			t.Errorf("stats: %+v", p.Stats())
		}
	})
}

// A dead letter that fails for good is not dead-lettered again, even when
// the dead-letter target's policy dead-letters to that same target: it is
// left unresolved, and its message comes back.
func TestPolicy_DeadLetterIsNeverDeadLetteredAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dlqSink := &scripted{name: "dlq", errs: []error{permanent}}
		var dlq *Policy
		self := &funcSink{name: "dlq", fn: func(ctx context.Context, d *router.Delivery) error { return dlq.Deliver(ctx, d) }}
		dlq = Wrap(dlqSink, cfg(), self, quiet) // the default policy, whose dead letter is dlq
		p := Wrap(&scripted{name: "t", errs: []error{permanent}}, cfg(), dlq, quiet)
		if err := p.Deliver(context.Background(), delivery()); err == nil {
			t.Fatal("resolved although the dead letter failed")
		}
		if dlqSink.calls.Load() != 1 {
			t.Errorf("dlq called %d times, want once: the dead letter was dead-lettered again", dlqSink.calls.Load())
		}
		if dlq.Stats().DeadLettered.Load() != 0 || dlq.Stats().Unresolved.Load() != 1 || p.Stats().DeadLetterFailures.Load() != 1 {
			t.Errorf("dlq stats: %+v; target stats: %+v", dlq.Stats(), p.Stats())
		}
	})
}

// Throttles back off by the target's hint and do not use up attempts;
// only max_age ends them.
func TestPolicy_ThrottlesDoNotUseAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errs []error
		for range 10 {
			errs = append(errs, router.ThrottledError(errors.New("429"), 2*time.Second))
		}
		sink := &scripted{name: "t", errs: errs}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, cfg(), dlq, quiet)
		start := time.Now()
		if err := p.Deliver(context.Background(), delivery()); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
		if sink.calls.Load() != 11 || dlq.calls.Load() != 0 {
			t.Errorf("calls %d, dead letters %d: throttles must not exhaust 3 attempts", sink.calls.Load(), dlq.calls.Load())
		}
		if took := time.Since(start); took < 20*time.Second {
			t.Errorf("took %v, want at least the 10 hints of 2s", took)
		}
		if p.Stats().Throttled.Load() != 10 {
			t.Errorf("throttled = %d", p.Stats().Throttled.Load())
		}
		// Throttling for longer than max_age dead-letters.
		var forever []error
		for range 1000 {
			forever = append(forever, router.ThrottledError(errors.New("429"), 10*time.Second))
		}
		sink2 := &scripted{name: "t", errs: forever}
		p2 := Wrap(sink2, cfg(), dlq, quiet)
		if err := p2.Deliver(context.Background(), delivery()); err != nil || dlq.calls.Load() != 1 {
			t.Errorf("Deliver = %v, dead letters %d; want dead-lettered at max_age", err, dlq.calls.Load())
		}
		if n := sink2.calls.Load(); n < 5 || n > 7 {
			t.Errorf("%d calls in a 1 minute max_age at 10s each", n)
		}
	})
}

// After `failures` consecutive failures the breaker opens: deliveries then
// wait without calling the target (no attempts spent), until a probe
// succeeds.
func TestPolicy_BreakerParksWithoutSpendingAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 3, Open: 10 * time.Second, HalfOpen: 1}
		c.Retry.Attempts = 100
		c.Retry.MaxAge = time.Hour
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			calls.Add(1)
			if down.Load() {
				return retryable
			}
			return nil
		}}
		p := Wrap(sink, c, &scripted{name: "dlq"}, quiet)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if err := p.Deliver(context.Background(), delivery()); err != nil {
					t.Errorf("Deliver = %v", err)
				}
			})
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if p.BreakerState() != "open" {
			t.Fatalf("breaker %s after the target failed", p.BreakerState())
		}
		opened := calls.Load()
		if opened > 3+20 {
			t.Errorf("%d calls before the breaker opened", opened)
		}
		if w := p.Stats().Waiting.Load(); w != 20 {
			t.Errorf("waiting = %d, want all 20 deliveries", w)
		}
		// While open (and failing probes), calls stay at probe level.
		time.Sleep(time.Minute)
		synctest.Wait()
		if probes := calls.Load() - opened; probes > 8 {
			t.Errorf("%d calls in a minute while open, want about one probe per 10s", probes)
		}
		down.Store(false)
		wg.Wait()
		if p.Stats().Delivered.Load() != 20 || p.Stats().DeadLettered.Load() != 0 {
			t.Errorf("after recovery: delivered %d, dead-lettered %d", p.Stats().Delivered.Load(), p.Stats().DeadLettered.Load())
		}
	})
}

// Waiting on an open breaker is bounded by max_age, then the delivery is
// dead-lettered without further calls.
func TestPolicy_MaxAgeWhileBreakerOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 1, Open: time.Hour, HalfOpen: 1}
		c.Retry.Attempts = 100
		c.Retry.MaxAge = 2 * time.Minute
		sink := &scripted{name: "t", errs: []error{retryable, retryable, retryable}}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, c, dlq, quiet)
		start := time.Now()
		if err := p.Deliver(context.Background(), delivery()); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
		if sink.calls.Load() != 1 || dlq.calls.Load() != 1 {
			t.Errorf("calls %d, dead letters %d", sink.calls.Load(), dlq.calls.Load())
		}
		if took := time.Since(start); took < 2*time.Minute || took > 2*time.Minute+time.Second {
			t.Errorf("dead-lettered after %v, want max_age = 2m", took)
		}
	})
}

func TestPolicy_ConcurrencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 4
		var now, most, gauge atomic.Int64
		var p *Policy
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			if g := p.Stats().InFlight.Load(); g > gauge.Load() {
				gauge.Store(g)
			}
			n := now.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(time.Second)
			now.Add(-1)
			return nil
		}}
		p = Wrap(sink, c, nil, quiet)
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() { p.Deliver(context.Background(), delivery()) })
		}
		wg.Wait()
		if most.Load() != 4 {
			t.Errorf("at most %d calls at once, want concurrency = 4", most.Load())
		}
		if gauge.Load() != 4 || p.Stats().InFlight.Load() != 0 || p.Stats().Limit.Load() != 4 {
			t.Errorf("in-flight gauge peaked at %d (now %d), limit %d", gauge.Load(), p.Stats().InFlight.Load(), p.Stats().Limit.Load())
		}
	})
}

func TestPolicy_AttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Timeout = time.Second
		c.Retry.Attempts = 2
		sink := &scripted{name: "t", delay: time.Hour}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, c, dlq, quiet)
		start := time.Now()
		p.Deliver(context.Background(), delivery())
		if sink.calls.Load() != 2 || dlq.calls.Load() != 1 {
			t.Errorf("calls %d, dead letters %d", sink.calls.Load(), dlq.calls.Load())
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("two attempts of at most 1s took %v", took)
		}
		if dlq.seen[0].DeadLetter.LastError == "" {
			t.Error("no error recorded")
		}
	})
}

func TestPolicy_CancelLeavesUnresolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &funcSink{"t", func(context.Context, *router.Delivery) error { return retryable }}
		dlq := &scripted{name: "dlq"}
		c := cfg()
		c.Retry.Attempts = 1 << 20
		c.Retry.Initial, c.Retry.Max, c.Retry.MaxAge = time.Hour, time.Hour, 100*time.Hour
		p := Wrap(sink, c, dlq, quiet)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if err := p.Deliver(ctx, delivery()); err == nil {
			t.Fatal("a cancelled delivery resolved")
		}
		if dlq.calls.Load() != 0 || p.Stats().Unresolved.Load() != 1 {
			t.Errorf("dead letters %d, unresolved %d", dlq.calls.Load(), p.Stats().Unresolved.Load())
		}
	})
}

func TestPolicy_Rate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Rate = Rate{N: 10, Per: time.Second}
		sink := &scripted{name: "t"}
		p := Wrap(sink, c, nil, quiet)
		start := time.Now()
		var wg sync.WaitGroup
		for range 51 {
			wg.Go(func() { p.Deliver(context.Background(), delivery()) })
		}
		wg.Wait()
		if took := time.Since(start); took < 4*time.Second || took > 6*time.Second {
			t.Errorf("51 calls at 10/s took %v, want about 5s", took)
		}
	})
}

type funcSink struct {
	name string
	fn   func(context.Context, *router.Delivery) error
}

func (s *funcSink) Name() string                                          { return s.name }
func (s *funcSink) Deliver(ctx context.Context, d *router.Delivery) error { return s.fn(ctx, d) }

// A target that throttles above 4 calls at once: the effective concurrency
// settles near it, throttles stay a small share of the calls, nothing is
// dead-lettered, and the limit recovers when the throttle lifts.
func TestPolicy_ThrottlesLowerConcurrencyThenRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 16
		c.Retry.MaxAge = time.Hour
		c.Breaker.Failures = 3 // throttles must not trip it
		var inFlight, most, calls, throttles atomic.Int64
		var ceiling atomic.Int64
		ceiling.Store(4)
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			calls.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			if n > ceiling.Load() {
				throttles.Add(1)
				return router.ThrottledError(errors.New("429"), 0)
			}
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Millisecond)
			return nil
		}}
		dlq := &scripted{name: "dlq"}
		p := Wrap(sink, c, dlq, quiet)
		run := func(n int) {
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if err := p.Deliver(context.Background(), delivery()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		run(400)
		if lim := p.Stats().Limit.Load(); lim > 8 {
			t.Errorf("effective concurrency %d while the target takes 4, want it near 4", lim)
		}
		if share := float64(throttles.Load()) / float64(calls.Load()); share > 0.35 {
			t.Errorf("%d of %d calls throttled (%.0f%%): the policy did not settle", throttles.Load(), calls.Load(), share*100)
		}
		if dlq.calls.Load() != 0 || p.Stats().Delivered.Load() != 400 {
			t.Errorf("dead letters %d, delivered %d", dlq.calls.Load(), p.Stats().Delivered.Load())
		}
		if p.BreakerState() != "closed" {
			t.Errorf("breaker %s after throttles only", p.BreakerState())
		}
		t.Logf("throttled: %d calls for 400 deliveries, %d throttled, effective concurrency %d", calls.Load(), throttles.Load(), p.Stats().Limit.Load())

		// The throttle lifts: the limit climbs back to 16.
		ceiling.Store(1000)
		for range 20 {
			run(200)
			if p.Stats().Limit.Load() == 16 {
				break
			}
		}
		if lim := p.Stats().Limit.Load(); lim != 16 {
			t.Errorf("effective concurrency %d after the throttle lifted, want back to 16", lim)
		}
		if most.Load() < 12 {
			t.Errorf("at most %d calls at once after recovery", most.Load())
		}
	})
}

func TestLimiter_WaitersInOrderAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(1, func(int) {})
		if err := l.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		var order []int
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				c := context.Background()
				if i == 1 {
					c = ctx
				}
				if err := l.acquire(c); err != nil {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				l.release(false)
			})
			synctest.Wait()
		}
		cancel()
		synctest.Wait()
		l.release(false)
		wg.Wait()
		if len(order) != 2 || order[0] != 0 || order[1] != 2 {
			t.Errorf("order %v, want [0 2] (1 cancelled)", order)
		}
		if l.inUse != 0 {
			t.Errorf("%d slots still in use", l.inUse)
		}
	})
}

// The breaker opens within `failures` calls, plus the calls already in
// flight (concurrency - 1), however many deliveries are waiting: the gate
// is passed only with a concurrency slot in hand.
func TestPolicy_BreakerOpensWithinFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 4
		c.Breaker = Breaker{Failures: 5, Open: time.Second, HalfOpen: 1}
		c.Retry = Retry{Attempts: 1000, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, MaxAge: time.Hour}
		var calls atomic.Int64
		p := Wrap(&funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			return retryable
		}}, c, nil, quiet)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { p.Deliver(ctx, delivery()) })
		}
		for p.BreakerState() != "open" {
			time.Sleep(time.Millisecond)
		}
		synctest.Wait()
		if n := calls.Load(); n > 5+3 {
			t.Errorf("%d calls before the breaker opened, want at most failures (5) + concurrency-1 (3)", n)
		}
		cancel()
		wg.Wait()
	})
}

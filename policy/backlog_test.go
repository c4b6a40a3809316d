package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// memBacklog records what is pushed to it; it can be made to fail.
type memBacklog struct {
	mu     sync.Mutex
	pushed []*router.Delivery
	fail   error
}

func (b *memBacklog) Push(_ context.Context, d *router.Delivery) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	cp := *d
	b.pushed = append(b.pushed, &cp)
	return nil
}

func (b *memBacklog) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pushed)
}

func (b *memBacklog) Name() string                                            { return "backlog" }
func (b *memBacklog) Receive(context.Context, int) ([]*router.Message, error) { return nil, nil }
func (b *memBacklog) Close(context.Context) error                             { return nil }
func (b *memBacklog) String() string                                          { return "memory" }

// down is a sink that fails every call while down is set.
func down(calls *atomic.Int64, isDown *atomic.Bool) *funcSink {
	return &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
		calls.Add(1)
		if isDown.Load() {
			return retryable
		}
		return nil
	}}
}

// With a backlog, an open breaker sends deliveries there at once: Deliver
// returns nil with the delivery Backlogged, no attempt is spent, and
// nothing waits in memory.
func TestPolicy_OpenBreakerMovesDeliveriesToTheBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 3, Open: time.Minute, HalfOpen: 1}
		c.Retry.Attempts = 100
		var calls atomic.Int64
		var isDown atomic.Bool
		isDown.Store(true)
		b := &memBacklog{}
		p := Wrap(down(&calls, &isDown), c, &scripted{name: "dlq"}, quiet, WithBacklog(b, 1000))
		var wg sync.WaitGroup
		ds := make([]*router.Delivery, 20)
		for i := range ds {
			ds[i] = delivery()
			wg.Go(func() {
				if err := p.Deliver(context.Background(), ds[i]); err != nil {
					t.Errorf("Deliver = %v", err)
				}
			})
		}
		wg.Wait() // all return within the breaker's opening, without waiting for it to close
		if p.BreakerState() != "open" {
			t.Fatalf("breaker %s", p.BreakerState())
		}
		if b.count() != 20 || p.Stats().Backlogged.Load() != 20 {
			t.Fatalf("backlogged %d (stat %d), want all 20", b.count(), p.Stats().Backlogged.Load())
		}
		for _, d := range ds {
			if d.State != router.Backlogged {
				t.Errorf("state %s, want backlogged", d.State)
			}
		}
		if calls.Load() > 3+20 || p.Stats().Delivered.Load() != 0 || p.Stats().DeadLettered.Load() != 0 {
			t.Errorf("calls %d, delivered %d, dead-lettered %d", calls.Load(), p.Stats().Delivered.Load(), p.Stats().DeadLettered.Load())
		}
		// Later deliveries go straight there, with no call.
		before := calls.Load()
		if err := p.Deliver(context.Background(), delivery()); err != nil || calls.Load() != before || b.count() != 21 {
			t.Errorf("while open: %v, %d calls, %d backlogged", err, calls.Load()-before, b.count())
		}
		if p.Room() != 0 {
			t.Errorf("room %d while open, want 0", p.Room())
		}
	})
}

// Beyond max_waiting deliveries waiting in memory (here, for a
// concurrency slot), the next ones go to the backlog.
func TestPolicy_TooManyWaitingGoToTheBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 2
		release := make(chan struct{})
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error { <-release; return nil }}
		b := &memBacklog{}
		p := Wrap(sink, c, nil, quiet, WithBacklog(b, 3))
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { p.Deliver(context.Background(), delivery()) })
		}
		synctest.Wait()
		// 2 in calls, at most 3 waiting for a slot, the rest in the
		// backlog. (Exactly 3 wait unless a delivery looked before the
		// first two had their calls under way.)
		waiting := 10 - b.count() - int(p.Stats().InFlight.Load())
		if p.Stats().InFlight.Load() != 2 || waiting > 3 || waiting < 0 {
			t.Errorf("%d backlogged, %d in flight, %d waiting; want 2 in flight and at most 3 waiting", b.count(), p.Stats().InFlight.Load(), waiting)
		}
		if p.Room() != 0 {
			t.Errorf("room %d with every slot taken, want 0", p.Room())
		}
		close(release)
		wg.Wait()
		if got := p.Stats().Delivered.Load(); got != int64(10-b.count()) {
			t.Errorf("delivered %d, want the %d that did not go to the backlog", got, 10-b.count())
		}
		if p.Room() != 2 {
			t.Errorf("room %d when idle, want the concurrency, 2", p.Room())
		}
	})
}

// A delivery in backoff moves to the backlog when the breaker opens, not
// when its backoff ends.
func TestPolicy_BackoffWakesWhenTheBreakerOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 2, Open: time.Minute, HalfOpen: 1}
		c.Retry = Retry{Attempts: 100, Initial: 10 * time.Minute, Max: 10 * time.Minute, MaxAge: time.Hour}
		var calls atomic.Int64
		var isDown atomic.Bool
		isDown.Store(true)
		b := &memBacklog{}
		p := Wrap(down(&calls, &isDown), c, nil, quiet, WithBacklog(b, 100))
		start := time.Now()
		first := make(chan struct{})
		go func() { p.Deliver(context.Background(), delivery()); close(first) }()
		synctest.Wait() // the first failed and backs off for up to 10 minutes
		p.Deliver(context.Background(), delivery())
		<-first
		if took := time.Since(start); took >= 10*time.Minute || b.count() != 2 {
			t.Errorf("backlogged %d after %v; want both, as soon as the breaker opened", b.count(), took)
		}
	})
}

// Deliveries of an ordered group never go to a backlog: they wait.
func TestPolicy_GroupedDeliveriesWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 1, Open: 10 * time.Second, HalfOpen: 1}
		c.Retry.Attempts = 100
		var calls atomic.Int64
		var isDown atomic.Bool
		isDown.Store(true)
		b := &memBacklog{}
		p := Wrap(down(&calls, &isDown), c, nil, quiet, WithBacklog(b, 0))
		d := delivery()
		d.Message.Group = "g1"
		done := make(chan error)
		go func() { done <- p.Deliver(context.Background(), d) }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if b.count() != 0 || p.Stats().Waiting.Load() != 1 {
			t.Errorf("a grouped delivery: %d backlogged, %d waiting; want it waiting", b.count(), p.Stats().Waiting.Load())
		}
		isDown.Store(false)
		if err := <-done; err != nil || d.State != router.Delivered {
			t.Errorf("after recovery: %v, state %s", err, d.State)
		}
	})
}

// A backlog that fails leaves deliveries waiting in memory, as without
// one: counted, and not tried again for a while.
func TestPolicy_BacklogFailureWaitsInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 1, Open: 2 * time.Second, HalfOpen: 1}
		c.Retry.Attempts = 100
		var calls atomic.Int64
		var isDown atomic.Bool
		isDown.Store(true)
		b := &memBacklog{fail: errors.New("stream unavailable")}
		p := Wrap(down(&calls, &isDown), c, nil, quiet, WithBacklog(b, 0))
		d := delivery()
		done := make(chan error)
		go func() { done <- p.Deliver(context.Background(), d) }()
		time.Sleep(backlogPause / 2)
		synctest.Wait()
		if p.Stats().BacklogErrors.Load() != 1 || p.Stats().LastBacklogError.Load() == nil {
			t.Errorf("backlog errors %d within the pause, want 1", p.Stats().BacklogErrors.Load())
		}
		isDown.Store(false)
		if err := <-done; err != nil || d.State != router.Delivered {
			t.Errorf("Deliver = %v, state %s; want delivered from memory", err, d.State)
		}
	})
}

// A drained delivery goes back only while the breaker is open, never
// because others wait: it would go round.
func TestPolicy_DrainedDeliveriesWaitTheirTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 1
		release := make(chan struct{})
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error { <-release; return nil }}
		b := &memBacklog{}
		p := Wrap(sink, c, nil, quiet, WithBacklog(b, 0))
		var wg sync.WaitGroup
		for range 3 {
			d := delivery()
			d.Drained = true
			wg.Go(func() { p.Deliver(context.Background(), d) })
		}
		synctest.Wait()
		if b.count() != 0 {
			t.Errorf("%d drained deliveries went back to the backlog while waiting for a slot", b.count())
		}
		close(release)
		wg.Wait()
	})
}

// A delivery that comes with its attempts (from the ledger, or a backlog)
// carries on from them: spent attempts and an expired max_age go to the
// dead letter without a call.
func TestPolicy_CarriesOnFromEarlierAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			failures int
			age      time.Duration
			calls    int64
		}{
			{"attempts spent", 3, 0, 0},
			{"max_age passed", 0, 2 * time.Minute, 0},
			{"one attempt left", 2, 0, 1},
		} {
			sink := &scripted{name: "t", errs: []error{retryable, retryable, retryable}}
			dlq := &scripted{name: "dlq"}
			p := Wrap(sink, cfg(), dlq, quiet) // attempts 3, max_age 1m
			d := delivery()
			d.Failures, d.Attempt = tc.failures, tc.failures
			d.FirstAttempt = time.Now().Add(-tc.age)
			d.LastErr = errors.New("503 before")
			if err := p.Deliver(context.Background(), d); err != nil || d.State != router.DeadLettered {
				t.Errorf("%s: %v, state %s; want dead-lettered", tc.name, err, d.State)
			}
			if sink.calls.Load() != tc.calls || dlq.calls.Load() != 1 {
				t.Errorf("%s: %d calls, %d dead letters; want %d and 1", tc.name, sink.calls.Load(), dlq.calls.Load(), tc.calls)
			}
		}
	})
}

// memLedger records what policies write.
type memLedger struct {
	mu   sync.Mutex
	recs map[string][]router.Record
}

func (l *memLedger) Get(context.Context, string) (router.Record, bool, error) {
	return router.Record{}, false, nil
}

func (l *memLedger) Put(_ context.Context, id string, r router.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs[id] = append(l.recs[id], r)
	return nil
}

// A failed attempt is recorded before the retry waits; a new launch
// generation is recorded before the call that uses it.
func TestPolicy_RecordsAttemptsAndGenerations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &memLedger{recs: map[string][]router.Record{}}
		var seenBeforeCall []int
		var calls int
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			calls++
			l.mu.Lock()
			recs := l.recs[d.ID]
			gen := -1
			if len(recs) > 0 {
				gen = recs[len(recs)-1].Generation
			}
			l.mu.Unlock()
			seenBeforeCall = append(seenBeforeCall, gen)
			if calls == 1 {
				d.Generation++ // a launch that definitely did nothing
				return retryable
			}
			return nil
		}}
		p := Wrap(sink, cfg(), nil, quiet)
		d := delivery()
		d.Ledger = router.NewLedgerGuard(l, nil)
		if err := p.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		// Call 1: no record yet. Call 2 runs under generation 1, which was
		// recorded (with the failed attempt) before it.
		if len(seenBeforeCall) != 2 || seenBeforeCall[0] != -1 || seenBeforeCall[1] != 1 {
			t.Errorf("generation on record before each call: %v, want [-1 1]", seenBeforeCall)
		}
		recs := l.recs[d.ID]
		if len(recs) == 0 || recs[0].Attempts != 1 || recs[0].Failures != 1 || recs[0].State != router.Pending {
			t.Errorf("records %+v, want the failed attempt first", recs)
		}
	})
}

// While half-open, the breaker lets half_open calls through in all: the
// room it reports counts those already made, not only those under way.
func TestPolicy_RoomWhileHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Breaker = Breaker{Failures: 1, Open: time.Second, HalfOpen: 2}
		var calls atomic.Int64
		var isDown atomic.Bool
		isDown.Store(true)
		p := Wrap(down(&calls, &isDown), c, &scripted{name: "dlq"}, quiet)
		ctx, cancel := context.WithCancel(context.Background())
		go p.Deliver(ctx, delivery())
		synctest.Wait()
		if p.BreakerState() != "open" || p.Room() != 0 {
			t.Fatalf("breaker %s, room %d; want open, 0", p.BreakerState(), p.Room())
		}
		cancel()
		synctest.Wait()
		time.Sleep(c.Breaker.Open + time.Millisecond)
		isDown.Store(false)
		if p.Room() != 2 {
			t.Errorf("room %d when half-open, want 2", p.Room())
		}
		p.Deliver(context.Background(), delivery()) // the first probe, which succeeds
		if p.BreakerState() != "half-open" || p.Room() != 1 {
			t.Errorf("after one probe of two: breaker %s, room %d; want half-open, 1", p.BreakerState(), p.Room())
		}
	})
}

// queueBacklog is a backlog in memory that hands its entries out again.
type queueBacklog struct {
	memBacklog
	mu      sync.Mutex
	entries [][]byte
	acked   atomic.Int64
}

func (b *queueBacklog) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	b.mu.Lock()
	n := min(max, len(b.entries))
	out := make([]*router.Message, n)
	for i := range n {
		out[i] = &router.Message{Source: "backlog", ID: "e", Body: b.entries[i], Handle: &ackHandle{b}}
	}
	b.entries = b.entries[n:]
	b.mu.Unlock()
	if n == 0 {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return out, nil
}

type ackHandle struct{ b *queueBacklog }

func (h *ackHandle) Ack(context.Context) error                   { h.b.acked.Add(1); return nil }
func (h *ackHandle) Nack(context.Context, time.Duration) error   { return nil }
func (h *ackHandle) Extend(context.Context, time.Duration) error { return nil }

// A backlog drains into its target up to the target's concurrency, not a
// part of it: each drained delivery is counted once.
func TestPolicy_BacklogDrainsAtFullConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cfg()
		c.Concurrency = 4
		release := make(chan struct{})
		var most, now atomic.Int64
		sink := &funcSink{"t", func(ctx context.Context, d *router.Delivery) error {
			n := now.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			now.Add(-1)
			return nil
		}}
		b := &queueBacklog{}
		for i := range 20 {
			b.entries = append(b.entries, router.EncodeEntry(&router.Delivery{ID: fmt.Sprint(i), Target: "t", Payload: []byte(`{}`), Message: &router.Message{Source: "s", ID: "m"}}))
		}
		p := Wrap(sink, c, nil, quiet, WithBacklog(b, 10))
		pattern, _ := router.ParsePattern([]byte(`{"source":["x"]}`))
		tb, _ := router.NewTable([]router.Rule{{Name: "r", Pattern: pattern, Targets: []string{"t"}}})
		d, err := router.NewDispatcher(router.DispatcherConfig{Table: tb, Sinks: map[string]router.Sink{"t": p}, Backlogs: map[string]router.Backlog{"t": b},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- d.Run(ctx, time.Minute) }()
		time.Sleep(time.Second)
		synctest.Wait()
		if most.Load() != 4 {
			t.Errorf("%d drained deliveries at once, want the target's concurrency, 4", most.Load())
		}
		close(release)
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		<-done
		if b.acked.Load() != 20 {
			t.Errorf("%d entries acked, want 20", b.acked.Load())
		}
	})
}

package router

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// memLedger is a Ledger in a map, merging as the JetStream one does. It
// can be made to fail.
type memLedger struct {
	mu      sync.Mutex
	recs    map[string]Record
	gets    atomic.Int64
	puts    atomic.Int64
	failing atomic.Bool
}

func newMemLedger() *memLedger { return &memLedger{recs: map[string]Record{}} }

var errStoreDown = errors.New("store down")

func (l *memLedger) Get(_ context.Context, id string) (Record, bool, error) {
	l.gets.Add(1)
	if l.failing.Load() {
		return Record{}, false, errStoreDown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.recs[id]
	return r, ok, nil
}

func (l *memLedger) Put(_ context.Context, id string, r Record) error {
	l.puts.Add(1)
	if l.failing.Load() {
		return errStoreDown
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs[id] = l.recs[id].Merge(r)
	return nil
}

func (l *memLedger) get(id string) (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.recs[id]
	return r, ok
}

func TestRecord_MergeNeverGoesBack(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		have, next Record
		want       Record
	}{
		{"pending after delivered stays delivered",
			Record{State: Delivered, Attempts: 2, FirstAttempt: t0},
			Record{State: Pending, Attempts: 1, FirstAttempt: t0.Add(time.Minute), LastError: "late"},
			Record{State: Delivered, Attempts: 2, FirstAttempt: t0, LastError: "late"}},
		{"a drain's attempts add to a backlogged record",
			Record{State: Backlogged, Attempts: 1, Failures: 1, FirstAttempt: t0},
			Record{State: Pending, Attempts: 3, Failures: 2, Generation: 1},
			Record{State: Backlogged, Attempts: 3, Failures: 2, Generation: 1, FirstAttempt: t0}},
		{"the earliest first attempt wins",
			Record{FirstAttempt: t0.Add(time.Hour)},
			Record{FirstAttempt: t0},
			Record{FirstAttempt: t0}},
		{"a zero first attempt is no attempt",
			Record{FirstAttempt: t0},
			Record{State: DeadLettered},
			Record{State: DeadLettered, FirstAttempt: t0}},
		{"delivered after dead-lettered (a redrive) is delivered",
			Record{State: DeadLettered, Attempts: 5, FirstAttempt: t0, LastError: "503"},
			Record{State: Delivered, Attempts: 6},
			Record{State: Delivered, Attempts: 6, FirstAttempt: t0, LastError: "503"}},
		{"dead-lettered after delivered stays delivered",
			Record{State: Delivered, Attempts: 6},
			Record{State: DeadLettered, Attempts: 5},
			Record{State: Delivered, Attempts: 6}},
		{"an empty error keeps the last one",
			Record{LastError: "503"},
			Record{Attempts: 4},
			Record{Attempts: 4, LastError: "503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.have.Merge(tc.next); got != tc.want {
				t.Errorf("merge = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// fanout is a dispatcher with one rule to targets a and b, on a ledger.
func fanout(t *testing.T, l Ledger, a, b Sink) (*Dispatcher, *memSource) {
	t.Helper()
	src := newMemSource("jobs")
	d, err := NewDispatcher(DispatcherConfig{
		Table:   table(t, Rule{Name: "r", Targets: []string{"a", "b"}}),
		Sinks:   map[string]Sink{"a": a, "b": b},
		Sources: []Source{src}, Logger: quiet, Ledger: NewLedgerGuard(l, quiet),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, src
}

const fanoutEvent = `{"id":"e1","source":"s","detail-type":"x","detail":{}}`

// A message that comes back skips the delivery that succeeded, and the
// failed one carries its attempts and first attempt on.
func TestDispatcher_RedeliveredMessageSkipsWhatResolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		var aCalls, bCalls atomic.Int64
		var firstB time.Time
		a := &funcSink{"a", func(context.Context, *Delivery) error { aCalls.Add(1); return nil }}
		b := &funcSink{"b", func(_ context.Context, d *Delivery) error {
			if bCalls.Add(1) == 1 {
				d.FirstAttempt, firstB = time.Now(), time.Now()
				d.Attempt, d.Failures = 3, 3
				d.LastErr = errors.New("503 from b")
				return errors.New("503 from b") // unresolved: no dead letter
			}
			if d.Attempt != 3 || d.Failures != 3 || !d.FirstAttempt.Equal(firstB) || d.LastErr == nil || d.LastErr.Error() != "503 from b" {
				t.Errorf("b's second receipt carries attempt %d, failures %d, first %v, last %v; want 3, 3, %v, 503 from b",
					d.Attempt, d.Failures, d.FirstAttempt, d.LastErr, firstB)
			}
			return nil
		}}
		d, src := fanout(t, l, a, b)
		stop := run(t, d, time.Second)
		defer stop()

		m, h := message(t, "jobs", "m1", "", fanoutEvent)
		src.put(m)
		synctest.Wait()
		if s, _ := h.state(); s != "nack" {
			t.Fatalf("first receipt: %q, want nack (b failed)", s)
		}
		if r, _ := l.get(DeliveryID("e1", "r", "a")); r.State != Delivered {
			t.Errorf("a's record before the nack: %+v, want delivered", r)
		}
		if r, _ := l.get(DeliveryID("e1", "r", "b")); r.State != Pending || r.Attempts != 3 || r.Failures != 3 || r.LastError != "503 from b" {
			t.Errorf("b's record before the nack: %+v, want pending with 3 attempts", r)
		}

		m2, h2 := message(t, "jobs", "m1", "", fanoutEvent)
		m2.Redelivered = true
		src.put(m2)
		synctest.Wait()
		if s, _ := h2.state(); s != "ack" {
			t.Errorf("second receipt: %q, want ack", s)
		}
		if aCalls.Load() != 1 || bCalls.Load() != 2 {
			t.Errorf("calls: a %d, b %d; want a 1 (it had succeeded), b 2", aCalls.Load(), bCalls.Load())
		}
		if st := d.LedgerStats(); st.Hits.Load() != 1 || st.HitsOf("a") != 1 || st.HitsOf("b") != 0 {
			t.Errorf("ledger hits = %d (a %d, b %d), want 1, of a", st.Hits.Load(), st.HitsOf("a"), st.HitsOf("b"))
		}
	})
}

// A message its source has never handed out before costs no lookup, and
// one whose deliveries all resolve together costs no write.
func TestDispatcher_FreshMessagesCostTheLedgerNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		ok := &funcSink{"ok", func(context.Context, *Delivery) error { return nil }}
		d, src := fanout(t, l, ok, ok)
		stop := run(t, d, time.Second)
		defer stop()
		for i := range 20 {
			m, _ := message(t, "jobs", "m", "", fanoutEvent)
			m.ID = string(rune('a' + i))
			src.put(m)
		}
		synctest.Wait()
		if d.Stats().Acked.Load() != 20 {
			t.Fatalf("acked %d of 20", d.Stats().Acked.Load())
		}
		if g, p := l.gets.Load(), l.puts.Load(); g != 0 || p != 0 {
			t.Errorf("ledger calls for fresh messages resolving together: %d lookups, %d writes; want none", g, p)
		}
	})
}

// While one delivery of a message still runs, the one that succeeded is
// recorded: a crash then repeats only what was unfinished.
func TestDispatcher_RecordsAResolvedDeliveryWhileOthersRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		release := make(chan struct{})
		a := &funcSink{"a", func(context.Context, *Delivery) error { return nil }}
		b := &funcSink{"b", func(context.Context, *Delivery) error { <-release; return nil }}
		d, src := fanout(t, l, a, b)
		stop := run(t, d, time.Second)
		defer stop()
		m, h := message(t, "jobs", "m1", "", fanoutEvent)
		src.put(m)
		synctest.Wait()
		if r, ok := l.get(DeliveryID("e1", "r", "a")); ok {
			t.Fatalf("a recorded at once (%+v): it should wait recordAfter for b", r)
		}
		time.Sleep(recordAfter)
		synctest.Wait()
		if r, _ := l.get(DeliveryID("e1", "r", "a")); r.State != Delivered {
			t.Errorf("a's record while b runs: %+v, want delivered", r)
		}
		close(release)
		synctest.Wait()
		if s, _ := h.state(); s != "ack" {
			t.Errorf("message: %q, want ack", s)
		}
		if _, ok := l.get(DeliveryID("e1", "r", "b")); ok {
			t.Error("b was recorded, though the message was acked as it ended")
		}
	})
}

// A ledger that fails costs deliveries nothing but its protection: they go
// on, failures are counted, and after a few in a row it is left alone for
// a while.
func TestDispatcher_LedgerDownDeliversAnyway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		l.failing.Store(true)
		var calls atomic.Int64
		ok := &funcSink{"ok", func(context.Context, *Delivery) error { calls.Add(1); return nil }}
		d, src := fanout(t, l, ok, ok)
		stop := run(t, d, time.Second)
		defer stop()
		for i := range 10 {
			m, _ := message(t, "jobs", "m", "", fanoutEvent)
			m.ID, m.Redelivered = string(rune('a'+i)), true
			src.put(m)
		}
		synctest.Wait()
		st := d.LedgerStats()
		if d.Stats().Acked.Load() != 10 || calls.Load() != 20 {
			t.Errorf("acked %d of 10, %d calls of 20: a failing ledger must not stop deliveries", d.Stats().Acked.Load(), calls.Load())
		}
		// A message's two deliveries look up at once: the one that fails
		// with the third may already be on its way, and fails too.
		if e := st.Errors.Load(); e < ledgerFailures || e > ledgerFailures+1 || e+st.Skipped.Load() != 20 {
			t.Errorf("errors %d, skipped %d; want %d (or, with a lookup already on its way, %d) failed lookups, then the rest skipped", e, st.Skipped.Load(), ledgerFailures, ledgerFailures+1)
		}
		if st.LastError.Load() == nil {
			t.Error("no last error kept")
		}
		// After the pause it is tried again.
		l.failing.Store(false)
		time.Sleep(ledgerPause)
		m, _ := message(t, "jobs", "z", "", fanoutEvent)
		m.Redelivered = true
		src.put(m)
		synctest.Wait()
		if st.Lookups.Load() != 2 {
			t.Errorf("lookups after the pause = %d, want 2 (one per delivery)", st.Lookups.Load())
		}
	})
}

// A corrupt record is counted and logged; the delivery goes on as if it
// had none, and a corrupt record does not take the store for down.
func TestLedgerGuard_CorruptRecordIsNotAnOutage(t *testing.T) {
	g := NewLedgerGuard(corruptLedger{}, quiet)
	for range ledgerFailures + 2 {
		if _, found := g.Get(context.Background(), "d"); found {
			t.Fatal("a corrupt record was found")
		}
	}
	if g.Stats().Errors.Load() != ledgerFailures+2 || g.Stats().Skipped.Load() != 0 {
		t.Errorf("errors %d, skipped %d: corrupt records must not pause the ledger", g.Stats().Errors.Load(), g.Stats().Skipped.Load())
	}
}

type corruptLedger struct{}

func (corruptLedger) Get(context.Context, string) (Record, bool, error) {
	return Record{}, false, ErrCorruptRecord
}
func (corruptLedger) Put(context.Context, string, Record) error { return nil }

// Backlogged and dead-lettered deliveries are skipped like delivered ones.
func TestDispatcher_SkipsBackloggedAndDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		l.recs[DeliveryID("e1", "r", "a")] = Record{State: Backlogged}
		l.recs[DeliveryID("e1", "r", "b")] = Record{State: DeadLettered}
		var calls atomic.Int64
		sink := &funcSink{"x", func(context.Context, *Delivery) error { calls.Add(1); return nil }}
		d, src := fanout(t, l, sink, sink)
		stop := run(t, d, time.Second)
		defer stop()
		m, h := message(t, "jobs", "m1", "", fanoutEvent)
		m.Redelivered = true
		src.put(m)
		synctest.Wait()
		if s, _ := h.state(); s != "ack" || calls.Load() != 0 {
			t.Errorf("message %q after %d calls; want ack after none", s, calls.Load())
		}
	})
}

// A record of another message under the same delivery id (a producer that
// used an event id again) does not make the new one skip its delivery.
func TestDispatcher_RecordOfAnotherMessageIsNotTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLedger()
		var calls atomic.Int64
		sink := &funcSink{"x", func(context.Context, *Delivery) error { calls.Add(1); return nil }}
		d, src := fanout(t, l, sink, sink)
		old, _ := message(t, "jobs", "m0", "", `{"id":"e1","source":"s","detail-type":"x","detail":{"v":1}}`)
		old.Body = old.Event.JSON
		for _, target := range []string{"a", "b"} {
			l.recs[DeliveryID("e1", "r", target)] = Record{State: Delivered, Digest: digest(&Delivery{Message: old})}
		}
		stop := run(t, d, time.Second)
		defer stop()
		m, h := message(t, "jobs", "m1", "", `{"id":"e1","source":"s","detail-type":"x","detail":{"v":2}}`)
		m.Body, m.Redelivered = m.Event.JSON, true
		src.put(m)
		synctest.Wait()
		if s, _ := h.state(); s != "ack" || calls.Load() != 2 {
			t.Errorf("message %q after %d calls; want both deliveries made", s, calls.Load())
		}
		// The same message again is skipped.
		again, h2 := message(t, "jobs", "m1", "", `{"id":"e1","source":"s","detail-type":"x","detail":{"v":1}}`)
		again.Body, again.Redelivered = again.Event.JSON, true
		src.put(again)
		synctest.Wait()
		if s, _ := h2.state(); s != "ack" || calls.Load() != 2 {
			t.Errorf("the recorded message again: %q after %d calls in all; want it skipped", s, calls.Load())
		}
	})
}

package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// memSource is an in-memory Source: messages are queued with put and
// handed out by Receive; their handles record how they were settled.
type memSource struct {
	name    string
	batch   int
	pollers int
	mu      sync.Mutex
	queue   []*Message
	ready   chan struct{} // signalled when queue gains messages
	maxAsk  atomic.Int64  // the largest max Receive was called with
}

func newMemSource(name string) *memSource {
	return &memSource{name: name, batch: 10, pollers: 1, ready: make(chan struct{}, 1)}
}

func (s *memSource) Name() string   { return s.name }
func (s *memSource) Pollers() int   { return s.pollers }
func (s *memSource) BatchSize() int { return s.batch }

func (s *memSource) put(ms ...*Message) {
	s.mu.Lock()
	s.queue = append(s.queue, ms...)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *memSource) Receive(ctx context.Context, max int) ([]*Message, error) {
	for {
		if n := s.maxAsk.Load(); int64(max) > n {
			s.maxAsk.CompareAndSwap(n, int64(max))
		}
		s.mu.Lock()
		if len(s.queue) > 0 {
			n := min(max, len(s.queue))
			out := slices.Clone(s.queue[:n])
			s.queue = s.queue[n:]
			more := len(s.queue) > 0
			s.mu.Unlock()
			if more {
				select {
				case s.ready <- struct{}{}:
				default:
				}
			}
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *memSource) Close(context.Context) error { return nil }

// memHandle records the first settlement of a message.
type memHandle struct {
	mu      sync.Mutex
	settled string // "ack", "nack"
	after   time.Duration
	at      int64 // settlement order
	ackErr  error
}

var settleSeq atomic.Int64

func (h *memHandle) Ack(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ackErr != nil {
		return h.ackErr
	}
	if h.settled == "" {
		h.settled, h.at = "ack", settleSeq.Add(1)
	}
	return nil
}

func (h *memHandle) Nack(_ context.Context, after time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settled == "" {
		h.settled, h.after, h.at = "nack", after, settleSeq.Add(1)
	}
	return nil
}

func (h *memHandle) Extend(context.Context, time.Duration) error { return nil }

func (h *memHandle) state() (string, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settled, h.after
}

func message(t testing.TB, source, id, group, event string) (*Message, *memHandle) {
	t.Helper()
	ev, err := ParseEvent([]byte(event), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := &memHandle{}
	return &Message{Event: ev, Handle: h, Source: source, ID: id, Group: group}, h
}

// funcSink delivers with a function.
type funcSink struct {
	name string
	fn   func(ctx context.Context, d *Delivery) error
}

func (s *funcSink) Name() string                                   { return s.name }
func (s *funcSink) Deliver(ctx context.Context, d *Delivery) error { return s.fn(ctx, d) }

func table(t testing.TB, rules ...Rule) *Table {
	t.Helper()
	for i := range rules {
		if rules[i].Pattern == nil {
			rules[i].Pattern = mustPattern(t, `{"source":[{"prefix":""}]}`)
		}
	}
	tb, err := NewTable(rules)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func mustPattern(t testing.TB, s string) *Pattern {
	t.Helper()
	p, err := ParsePattern([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// run starts the dispatcher and returns a stop function that cancels it
// and waits for Run to return.
func run(t testing.TB, d *Dispatcher, grace time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, grace) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestDispatcher_RoutesAcksAndCountsUnmatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		var got sync.Map
		sink := &funcSink{"t", func(_ context.Context, d *Delivery) error {
			got.Store(d.Message.ID, string(d.Payload))
			return nil
		}}
		d, err := NewDispatcher(DispatcherConfig{
			Table:   table(t, Rule{Name: "r", Pattern: mustPattern(t, `{"source":["app"]}`), Targets: []string{"t"}}),
			Sinks:   map[string]Sink{"t": sink},
			Sources: []Source{src},
			Logger:  quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d, time.Second)
		m1, h1 := message(t, "jobs", "m1", "", `{"id":"e1","source":"app","detail-type":"x","detail":{}}`)
		m2, h2 := message(t, "jobs", "m2", "", `{"id":"e2","source":"other","detail-type":"x","detail":{}}`)
		src.put(m1, m2)
		synctest.Wait()
		stop()
		if s, _ := h1.state(); s != "ack" {
			t.Errorf("matched message: %q, want ack", s)
		}
		if s, _ := h2.state(); s != "ack" {
			t.Errorf("unmatched message: %q, want ack", s)
		}
		if p, _ := got.Load("m1"); p != `{"id":"e1","source":"app","detail-type":"x","detail":{}}` {
			t.Errorf("payload = %v, want the whole event", p)
		}
		if _, ok := got.Load("m2"); ok {
			t.Error("the unmatched message was delivered")
		}
		st := d.Stats()
		if st.Received.Load() != 2 || st.Acked.Load() != 2 || st.Unmatched.Load() != 1 || st.Delivered.Load() != 1 {
			t.Errorf("stats: received %d acked %d unmatched %d delivered %d", st.Received.Load(), st.Acked.Load(), st.Unmatched.Load(), st.Delivered.Load())
		}
		ss := d.SourceStats("jobs")
		if ss.Received.Load() != 2 || ss.Acked.Load() != 2 || ss.Unmatched.Load() != 1 || ss.Nacked.Load() != 0 {
			t.Errorf("source stats: received %d acked %d unmatched %d nacked %d", ss.Received.Load(), ss.Acked.Load(), ss.Unmatched.Load(), ss.Nacked.Load())
		}
	})
}

func TestDispatcher_AcksOnlyWhenEveryDeliveryResolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		release := make(chan struct{})
		var calls sync.Map
		slow := &funcSink{"slow", func(ctx context.Context, d *Delivery) error {
			calls.Store("slow/"+d.Rule, d.ID)
			<-release
			return nil
		}}
		failing := &funcSink{"failing", func(ctx context.Context, d *Delivery) error {
			calls.Store("failing/"+d.Rule, d.ID)
			return ThrottledError(errors.New("slow down"), 7*time.Second)
		}}
		ok := &funcSink{"ok", func(ctx context.Context, d *Delivery) error { return nil }}
		d, _ := NewDispatcher(DispatcherConfig{
			Table: table(t,
				Rule{Name: "both", Pattern: mustPattern(t, `{"detail":{"k":["both"]}}`), Targets: []string{"slow", "ok"}},
				Rule{Name: "fails", Pattern: mustPattern(t, `{"detail":{"k":["fails"]}}`), Targets: []string{"ok", "failing"}},
			),
			Sinks:   map[string]Sink{"slow": slow, "ok": ok, "failing": failing},
			Sources: []Source{src},
			Logger:  quiet,
		})
		stop := run(t, d, time.Minute)
		m1, h1 := message(t, "jobs", "m1", "", `{"id":"e1","source":"s","detail-type":"x","detail":{"k":"both"}}`)
		m2, h2 := message(t, "jobs", "m2", "", `{"id":"e2","source":"s","detail-type":"x","detail":{"k":"fails"}}`)
		src.put(m1, m2)
		synctest.Wait()
		if s, _ := h1.state(); s != "" {
			t.Errorf("message settled (%q) while a delivery is still running", s)
		}
		close(release)
		synctest.Wait()
		if s, _ := h1.state(); s != "ack" {
			t.Errorf("after both deliveries: %q, want ack", s)
		}
		if s, after := h2.state(); s != "nack" || after != 7*time.Second {
			t.Errorf("one delivery unresolved: %q after %v, want nack after the target's hint of 7s", s, after)
		}
		if ss := d.SourceStats("jobs"); ss.Nacked.Load() != 1 || ss.Acked.Load() != 1 {
			t.Errorf("source stats: acked %d nacked %d", ss.Acked.Load(), ss.Nacked.Load())
		}
		stop()
		// Delivery ids are stable per (event, rule, target).
		if id, _ := calls.Load("slow/both"); id != DeliveryID("e1", "both", "slow") {
			t.Errorf("delivery id %v", id)
		}
	})
}

// The dispatcher never asks a source for more messages than it has room
// for, and never holds more than MaxInFlight.
func TestDispatcher_BackpressureBoundsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		src.pollers = 3
		var inSink, maxInSink atomic.Int64
		release := make(chan struct{})
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			n := inSink.Add(1)
			for m := maxInSink.Load(); n > m && !maxInSink.CompareAndSwap(m, n); m = maxInSink.Load() {
			}
			<-release
			inSink.Add(-1)
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table:       table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:       map[string]Sink{"t": sink},
			Sources:     []Source{src},
			MaxInFlight: 25,
			Logger:      quiet,
		})
		stop := run(t, d, time.Minute)
		var handles []*memHandle
		for i := range 100 {
			m, h := message(t, "jobs", fmt.Sprint(i), "", `{"id":"e`+fmt.Sprint(i)+`","source":"s","detail-type":"x","detail":{}}`)
			src.put(m)
			handles = append(handles, h)
		}
		synctest.Wait()
		if got := d.Stats().InFlight.Load(); got != 25 {
			t.Errorf("in flight = %d, want MaxInFlight = 25", got)
		}
		if got := maxInSink.Load(); got != 25 {
			t.Errorf("deliveries at once = %d, want 25", got)
		}
		if got := src.maxAsk.Load(); got > 10 {
			t.Errorf("Receive asked for %d messages, more than a batch", got)
		}
		src.mu.Lock()
		left := len(src.queue)
		src.mu.Unlock()
		if left != 75 {
			t.Errorf("%d messages left at the source, want 75: the rest must stay there", left)
		}
		// The source is paused while the budget is full (counted when the
		// pause ends).
		time.Sleep(3 * time.Second)
		close(release)
		synctest.Wait()
		if paused := time.Duration(d.SourceStats("jobs").Paused.Load()); paused < 3*time.Second {
			t.Errorf("source paused %v while max_in_flight was full for 3s", paused)
		}
		stop()
		for i, h := range handles {
			if s, _ := h.state(); s != "ack" {
				t.Fatalf("message %d: %q, want ack", i, s)
			}
		}
	})
}

// Messages of one group are delivered one at a time, in order; a failed
// one holds back the rest of its group; other groups go on.
func TestDispatcher_GroupsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("fifo")
		var mu sync.Mutex
		var order []string
		var active sync.Map // group → busy
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			g := d.Message.Group
			if _, busy := active.LoadOrStore(g, true); busy {
				t.Errorf("two messages of group %s at once", g)
			}
			time.Sleep(time.Millisecond)
			mu.Lock()
			order = append(order, d.Message.ID)
			mu.Unlock()
			active.Delete(g)
			if d.Message.ID == "b2" {
				return errors.New("b2 fails")
			}
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table:   table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:   map[string]Sink{"t": sink},
			Sources: []Source{src},
			Logger:  quiet,
		})
		stop := run(t, d, time.Minute)
		hs := map[string]*memHandle{}
		for _, id := range []string{"a1", "b1", "a2", "b2", "a3", "b3", "a4"} {
			m, h := message(t, "fifo", id, id[:1], `{"id":"`+id+`","source":"s","detail-type":"x","detail":{}}`)
			src.put(m)
			hs[id] = h
		}
		synctest.Wait()
		stop()
		var as, bs []string
		for _, id := range order {
			if id[0] == 'a' {
				as = append(as, id)
			} else {
				bs = append(bs, id)
			}
		}
		if !slices.Equal(as, []string{"a1", "a2", "a3", "a4"}) {
			t.Errorf("group a delivered %v, want in order", as)
		}
		if !slices.Equal(bs, []string{"b1", "b2"}) {
			t.Errorf("group b delivered %v, want b1, b2 and then nothing after the failure", bs)
		}
		for id, want := range map[string]string{"a1": "ack", "a4": "ack", "b1": "ack", "b2": "nack", "b3": "nack"} {
			if s, _ := hs[id].state(); s != want {
				t.Errorf("%s: %q, want %q", id, s, want)
			}
		}
		if hs["a1"].at > hs["a2"].at || hs["a2"].at > hs["a3"].at {
			t.Error("group a settled out of order")
		}
	})
}

// A group's order holds within one batch whatever the timing: the first
// message of a group fails at once, and the next one of its group, later
// in the same batch, must not be delivered, even when the first was
// settled before the loop got to the second (here helped by many other
// messages between them). Across batches the source keeps the order: an
// SQS FIFO queue hands out nothing of a group with a message in flight.
func TestDispatcher_GroupOrderHoldsWithinABatch(t *testing.T) {
	const rounds, fillers = 20, 200
	src := newMemSource("fifo")
	src.batch = fillers + 2
	var delivered sync.Map // ids of group messages delivered
	sink := &funcSink{"t", func(_ context.Context, d *Delivery) error {
		if d.Message.Group == "" {
			return nil
		}
		if d.Message.ID[0] == '0' {
			return errors.New("the first of its group fails")
		}
		delivered.Store(d.Message.ID, true)
		return nil
	}}
	d, err := NewDispatcher(DispatcherConfig{
		Table: table(t, Rule{Name: "r", Targets: []string{"t"}}), Sinks: map[string]Sink{"t": sink},
		Sources: []Source{src}, Logger: quiet, MaxInFlight: 10 * (fillers + 2), // room for a whole batch
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, d, time.Second)
	defer stop()
	event := `{"source":"s","detail-type":"x","detail":{}}`
	for r := range rounds {
		g := fmt.Sprint("g", r)
		first, _ := message(t, "fifo", "0"+g, g, event)
		second, h := message(t, "fifo", "1"+g, g, event)
		batch := []*Message{first}
		for i := range fillers {
			m, _ := message(t, "fifo", fmt.Sprint("f", r, "-", i), "", event)
			batch = append(batch, m)
		}
		src.put(append(batch, second)...)
		deadline := time.Now().Add(10 * time.Second)
		for s, _ := h.state(); s == ""; s, _ = h.state() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the second message of its group was not settled within 10s", r)
			}
			time.Sleep(time.Millisecond)
		}
		if _, ok := delivered.Load("1" + g); ok {
			t.Fatalf("round %d: the second message of group %s was delivered although the first failed", r, g)
		}
		if s, _ := h.state(); s != "nack" {
			t.Fatalf("round %d: the second message of group %s was %s, want nack", r, g, s)
		}
	}
}

// On shutdown the dispatcher stops receiving, lets in-flight work finish
// within the grace period, and nacks what is still running after it.
func TestDispatcher_ShutdownDrainsThenNacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			wait := time.Second
			if d.Message.ID == "slow" {
				wait = time.Hour
			}
			select {
			case <-time.After(wait):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table:   table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:   map[string]Sink{"t": sink},
			Sources: []Source{src},
			Logger:  quiet,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		go func() { d.Run(ctx, 5*time.Second); close(done) }()
		fast, hf := message(t, "jobs", "fast", "", `{"id":"f","source":"s","detail-type":"x","detail":{}}`)
		slow, hs := message(t, "jobs", "slow", "", `{"id":"s","source":"s","detail-type":"x","detail":{}}`)
		src.put(fast, slow)
		synctest.Wait()
		cancel()
		late, hl := message(t, "jobs", "late", "", `{"id":"l","source":"s","detail-type":"x","detail":{}}`)
		src.put(late)
		<-done
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("Run returned after %v, want the 5s grace", took)
		}
		if s, _ := hf.state(); s != "ack" {
			t.Errorf("fast message: %q, want ack (finished within the grace period)", s)
		}
		if s, after := hs.state(); s != "nack" || after != 0 {
			t.Errorf("slow message: %q after %v, want nack after 0 (redeliver now)", s, after)
		}
		if s, _ := hl.state(); s != "" {
			t.Errorf("message sent after shutdown was received (%q)", s)
		}
	})
}

func TestDispatcher_AckFailureIsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		d, _ := NewDispatcher(DispatcherConfig{
			Table:   table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:   map[string]Sink{"t": &funcSink{"t", func(context.Context, *Delivery) error { return nil }}},
			Sources: []Source{src},
			Logger:  quiet,
		})
		stop := run(t, d, time.Second)
		m, h := message(t, "jobs", "m", "", `{"id":"e","source":"s","detail-type":"x","detail":{}}`)
		h.ackErr = errors.New("delete failed")
		src.put(m)
		synctest.Wait()
		stop()
		if d.Stats().SettleErrors.Load() != 1 || d.Stats().Acked.Load() != 0 {
			t.Errorf("settle errors %d, acked %d", d.Stats().SettleErrors.Load(), d.Stats().Acked.Load())
		}
	})
}

func TestNewDispatcher_MissingSink(t *testing.T) {
	_, err := NewDispatcher(DispatcherConfig{Table: table(t, Rule{Name: "r", Targets: []string{"nope"}}), Sinks: map[string]Sink{}})
	if err == nil {
		t.Error("a rule naming a target without a sink was accepted")
	}
}

// drainSource records when it is told to drain.
type drainSource struct {
	*memSource
	drained chan time.Time
}

func (s *drainSource) Drain() { s.drained <- time.Now() }

// Sources that have work pushed to them are told to turn it away as soon
// as receiving stops, before the in-flight work has drained.
func TestDispatcher_DrainsPushSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &drainSource{newMemSource("ingest"), make(chan time.Time, 2)}
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			time.Sleep(3 * time.Second)
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table: table(t, Rule{Name: "r", Targets: []string{"t"}}), Sinks: map[string]Sink{"t": sink},
			Sources: []Source{src}, Logger: quiet,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx, 10*time.Second); close(done) }()
		m, h := message(t, "ingest", "m", "", `{"id":"e","source":"s","detail-type":"x","detail":{}}`)
		src.put(m)
		synctest.Wait()
		stopped := time.Now()
		cancel()
		<-done
		if len(src.drained) != 1 {
			t.Fatalf("Drain called %d times, want once", len(src.drained))
		}
		if at := <-src.drained; at != stopped {
			t.Errorf("Drain called %v after the stop, want at once", at.Sub(stopped))
		}
		if s, _ := h.state(); s != "ack" {
			t.Errorf("in-flight message %q, want ack", s)
		}
	})
}

// An idle source waiting in Receive holds at most its share of the
// in-flight budget: a busy source next to it is not starved.
func TestDispatcher_IdleSourceDoesNotStarveOthers(t *testing.T) {
	// Both orders: whichever receive loop starts first must not take it all.
	for _, idleFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("idle first ", idleFirst), func(t *testing.T) { testIdleSource(t, idleFirst) })
	}
}

func testIdleSource(t *testing.T, idleFirst bool) {
	synctest.Test(t, func(t *testing.T) {
		idle, busy := newMemSource("idle"), newMemSource("busy")
		idle.batch, busy.batch = 100, 100
		var delivered atomic.Int64
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			time.Sleep(10 * time.Millisecond)
			delivered.Add(1)
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table: table(t, Rule{Name: "r", Targets: []string{"t"}}), Sinks: map[string]Sink{"t": sink},
			Sources: []Source{idle, busy}, MaxInFlight: 4, Logger: quiet,
		})
		if !idleFirst {
			d.cfg.Sources = []Source{busy, idle}
		}
		stop := run(t, d, time.Minute)
		for i := range 20 {
			m, _ := message(t, "busy", fmt.Sprint(i), "", `{"id":"e`+fmt.Sprint(i)+`","source":"s","detail-type":"x","detail":{}}`)
			busy.put(m)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := delivered.Load(); n != 20 {
			t.Errorf("delivered %d of 20 from the busy source while the idle one waited", n)
		}
		if n := idle.maxAsk.Load(); n > 2 {
			t.Errorf("the idle source was asked for %d messages, more than its share (2 of 4)", n)
		}
		stop()
	})
}

// Receiving also stops while the bodies in flight hold max_in_flight_bytes:
// a receive cannot know how large its messages will be, so it may go over
// by one batch, and then waits for room; the messages' bytes are given back
// as they are settled.
func TestDispatcher_BackpressureBoundsInFlightBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		src.batch = 2
		release := make(chan struct{})
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			<-release
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table:            table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:            map[string]Sink{"t": sink},
			Sources:          []Source{src},
			MaxInFlight:      100,
			MaxInFlightBytes: 10 << 10,
			Logger:           quiet,
		})
		stop := run(t, d, time.Minute)
		var handles []*memHandle
		for i := range 20 {
			m, h := message(t, "jobs", fmt.Sprint(i), "", `{"id":"e`+fmt.Sprint(i)+`","source":"s","detail-type":"x","detail":{}}`)
			m.Body = make([]byte, 3<<10)
			src.put(m)
			handles = append(handles, h)
		}
		synctest.Wait()
		// 3KiB each, two a receive: 6, then 12KiB ≥ 10KiB, and no more.
		if got := d.Stats().InFlight.Load(); got != 4 {
			t.Errorf("in flight = %d messages, want 4: receives stop once 10KiB is held", got)
		}
		if got := d.Bytes().Used(); got != 12<<10 {
			t.Errorf("bytes in flight = %d, want %d", got, 12<<10)
		}
		close(release)
		synctest.Wait()
		stop()
		for i, h := range handles {
			if s, _ := h.state(); s != "ack" {
				t.Fatalf("message %d: %q, want ack", i, s)
			}
		}
		if got := d.Bytes().Used(); got != 0 {
			t.Errorf("bytes in flight after every message settled = %d", got)
		}
	})
}

// A source that reserves its messages' bytes itself (an HTTP listener,
// which must not read a body it has no room for) is received from even
// when the budget is full of them, and its bytes are released once each
// message is settled, not charged twice.
func TestDispatcher_ReservedBytesAreReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &reservingSource{memSource: newMemSource("ingest")}
		release := make(chan struct{})
		sink := &funcSink{"t", func(ctx context.Context, d *Delivery) error {
			<-release
			return nil
		}}
		d, _ := NewDispatcher(DispatcherConfig{
			Table:            table(t, Rule{Name: "r", Targets: []string{"t"}}),
			Sinks:            map[string]Sink{"t": sink},
			Sources:          []Source{src},
			MaxInFlightBytes: 8 << 10,
			Logger:           quiet,
		})
		if src.budget != d.Bytes() {
			t.Fatal("the source was not given the budget")
		}
		stop := run(t, d, time.Minute)
		for i := range 3 {
			m, _ := message(t, "ingest", fmt.Sprint(i), "", `{"id":"e`+fmt.Sprint(i)+`","source":"s","detail-type":"x","detail":{}}`)
			m.Body = make([]byte, 5<<10)
			d.Bytes().Charge(int64(len(m.Body))) // as the source reserved them
			m.Reserved = int64(len(m.Body))
			src.put(m)
			synctest.Wait()
		}
		if got := d.Stats().InFlight.Load(); got != 3 {
			t.Errorf("in flight = %d, want all 3 reserved messages received", got)
		}
		if got := d.Bytes().Used(); got != 15<<10 {
			t.Errorf("bytes in flight = %d, want %d (reserved, not charged again)", got, 15<<10)
		}
		close(release)
		synctest.Wait()
		stop()
		if got := d.Bytes().Used(); got != 0 {
			t.Errorf("bytes in flight after every message settled = %d", got)
		}
	})
}

type reservingSource struct {
	*memSource
	budget *ByteBudget
}

func (s *reservingSource) UseBytes(b *ByteBudget) bool {
	s.budget = b
	return true
}

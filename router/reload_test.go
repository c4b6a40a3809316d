package router

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDispatcher_ReloadSwapsRoutesAndLetsOldDeliveriesFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		release := make(chan struct{})
		var oldCalls, newCalls atomic.Int64
		oldSink := &funcSink{"a", func(ctx context.Context, d *Delivery) error {
			oldCalls.Add(1)
			<-release // in flight across the reload
			return nil
		}}
		newSink := &funcSink{"b", func(ctx context.Context, d *Delivery) error { newCalls.Add(1); return nil }}
		d, err := NewDispatcher(DispatcherConfig{
			Table:   table(t, Rule{Name: "r", Targets: []string{"a"}}),
			Sinks:   map[string]Sink{"a": oldSink},
			Sources: []Source{src},
			Logger:  quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d, time.Second)
		defer stop()
		var handles []*memHandle
		for i := range 3 {
			m, h := message(t, "jobs", "old"+string(rune('0'+i)), "", `{"id":"e","source":"app","detail-type":"x","detail":{}}`)
			src.put(m)
			handles = append(handles, h)
		}
		synctest.Wait()
		if n := oldCalls.Load(); n != 3 {
			t.Fatalf("old sink called %d times before the reload, want 3", n)
		}

		retired, err := d.Reload(Routes{
			Table: table(t, Rule{Name: "r", Targets: []string{"b"}}, Rule{Name: "s", Targets: []string{"b"}}),
			Sinks: map[string]Sink{"b": newSink},
		})
		if err != nil {
			t.Fatal(err)
		}
		m, h := message(t, "jobs", "new", "", `{"id":"e2","source":"app","detail-type":"x","detail":{}}`)
		src.put(m)
		synctest.Wait()
		if s, _ := h.state(); s != "ack" || newCalls.Load() != 2 {
			t.Fatalf("after the reload: message %q, new sink called %d times; want ack and 2 (two rules)", s, newCalls.Load())
		}
		select {
		case <-retired:
			t.Fatal("the old routes were retired while their messages were in flight")
		default:
		}
		for _, h := range handles {
			if s, _ := h.state(); s != "" {
				t.Fatalf("an old message was settled (%s) before its delivery finished", s)
			}
		}

		close(release)
		synctest.Wait()
		select {
		case <-retired:
		default:
			t.Fatal("the old routes were not retired once their messages settled")
		}
		for _, h := range handles {
			if s, _ := h.state(); s != "ack" {
				t.Errorf("old message settled %q, want ack", s)
			}
		}
		counts := map[string]int64{}
		d.EachRule(func(name string, st *RuleStats) { counts[name] = st.Matched.Load() })
		if counts["r"] != 4 || counts["s"] != 1 || len(counts) != 2 {
			t.Errorf("rule counters %v, want r:4 (carried over) s:1", counts)
		}
	})
}

func TestDispatcher_ReloadRefusesAMissingSink(t *testing.T) {
	d, err := NewDispatcher(DispatcherConfig{
		Table:  table(t, Rule{Name: "r", Targets: []string{"a"}}),
		Sinks:  map[string]Sink{"a": &funcSink{"a", nil}},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(Routes{Table: table(t, Rule{Name: "r", Targets: []string{"gone"}}), Sinks: map[string]Sink{}}); err == nil {
		t.Fatal("Reload accepted a rule whose target has no sink")
	}
	var names []string
	d.EachRule(func(name string, _ *RuleStats) { names = append(names, name) })
	if len(names) != 1 || names[0] != "r" {
		t.Errorf("rules after a refused reload: %v, want the old [r]", names)
	}
}

func TestDispatcher_ReloadUnderLoadLosesNothing(t *testing.T) {
	src := newMemSource("jobs")
	src.pollers = 2
	var mu sync.Mutex
	seen := map[string]int{}
	mk := func(name string) Sink {
		return &funcSink{name, func(ctx context.Context, d *Delivery) error {
			mu.Lock()
			seen[d.Message.ID]++
			mu.Unlock()
			return nil
		}}
	}
	d, err := NewDispatcher(DispatcherConfig{
		Table: table(t, Rule{Name: "r", Targets: []string{"t0"}}), Sinks: map[string]Sink{"t0": mk("t0")},
		Sources: []Source{src}, Logger: quiet, MaxInFlight: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, 5*time.Second) }()
	const n = 2000
	var handles []*memHandle
	for i := range n {
		m, h := message(t, "jobs", string(rune(0x4e00+i)), "", `{"id":"e","source":"app","detail-type":"x","detail":{}}`)
		handles = append(handles, h)
		src.put(m)
		if i%100 == 99 {
			name := "t" + string(rune('a'+i/100))
			if _, err := d.Reload(Routes{Table: table(t, Rule{Name: "r", Targets: []string{name}}), Sinks: map[string]Sink{name: mk(name)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for d.Stats().Acked.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, h := range handles {
		if s, _ := h.state(); s != "ack" {
			t.Fatalf("message %d settled %q, want ack", i, s)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d messages delivered", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("message %q delivered %d times", id, c)
		}
	}
}

// Two reloads in a row: a sink kept by the first and dropped by the second
// is still called by messages of the routes before the first. The second
// reload's channel waits for them too.
func TestDispatcher_ChainedReloadsRetireInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("jobs")
		release := make(chan struct{})
		x := &funcSink{"x", func(ctx context.Context, d *Delivery) error {
			if d.Message.ID == "first" {
				<-release
			}
			return nil
		}}
		y := &funcSink{"y", func(ctx context.Context, d *Delivery) error { return nil }}
		d, err := NewDispatcher(DispatcherConfig{
			Table: table(t, Rule{Name: "r", Targets: []string{"x"}}), Sinks: map[string]Sink{"x": x},
			Sources: []Source{src}, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, d, time.Second)
		defer stop()
		m, h := message(t, "jobs", "first", "", `{"id":"e","source":"app","detail-type":"x","detail":{}}`)
		src.put(m)
		synctest.Wait()
		// Routes A → B (x kept) → C (x removed).
		retiredA, err := d.Reload(Routes{Table: table(t, Rule{Name: "r", Targets: []string{"x"}}), Sinks: map[string]Sink{"x": x}})
		if err != nil {
			t.Fatal(err)
		}
		retiredB, err := d.Reload(Routes{Table: table(t, Rule{Name: "r", Targets: []string{"y"}}), Sinks: map[string]Sink{"y": y}})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for name, ch := range map[string]<-chan struct{}{"A": retiredA, "B": retiredB} {
			select {
			case <-ch:
				t.Errorf("routes %s retired while a message of A still calls x", name)
			default:
			}
		}
		close(release)
		synctest.Wait()
		<-retiredA
		<-retiredB
		if s, _ := h.state(); s != "ack" {
			t.Errorf("message settled %q, want ack", s)
		}
	})
}

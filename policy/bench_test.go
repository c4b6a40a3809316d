package policy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// benchSource hands out n messages, all carrying one event, as fast as the
// dispatcher asks; then it blocks until ctx ends.
type benchSource struct {
	event *router.Event
	left  atomic.Int64
	acked atomic.Int64
	done  chan struct{} // closed when every message is acked
}

func (s *benchSource) Name() string   { return "bench" }
func (s *benchSource) Pollers() int   { return 2 }
func (s *benchSource) BatchSize() int { return 10 }

func (s *benchSource) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	n := min(int64(max), s.left.Add(-int64(max))+int64(max))
	if n <= 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	msgs := make([]*router.Message, n)
	for i := range msgs {
		ev := *s.event
		msgs[i] = &router.Message{Event: &ev, Handle: (*benchHandle)(s), Source: "bench", ID: "m"}
	}
	return msgs, nil
}

func (s *benchSource) Close(context.Context) error { return nil }

// benchHandle counts acks for its source.
type benchHandle benchSource

func (h *benchHandle) Ack(context.Context) error {
	s := (*benchSource)(h)
	if s.acked.Add(1) == 0 {
		close(s.done)
	}
	return nil
}
func (h *benchHandle) Nack(context.Context, time.Duration) error         { panic("nack in a benchmark") }
func (h *benchHandle) Extend(context.Context, time.Duration) error       { return nil }
func (s *benchSink) Deliver(_ context.Context, d *router.Delivery) error { s.n.Add(1); return nil }
func (s *benchSink) Name() string                                        { return s.name }

// benchSink is an in-memory sink: it counts deliveries.
type benchSink struct {
	name string
	n    atomic.Int64
}

// BenchmarkDispatch measures what switchyard does per message between a
// source and a sink: matching one rule of a table, rendering, a delivery
// through the default policy (concurrency slot, breaker, timeout) into an
// in-memory sink, and the ack. One op is one message; targets is how many
// targets the rule names.
func BenchmarkDispatch(b *testing.B) {
	data, err := os.ReadFile("../router/testdata/bench/events.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	ev, err := router.ParseEvent(line, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, targets := range []int{1, 3} {
		b.Run("targets="+string(rune('0'+targets)), func(b *testing.B) {
			pattern, err := router.ParsePattern([]byte(`{"source":[{"prefix":""}]}`))
			if err != nil {
				b.Fatal(err)
			}
			sinks := map[string]router.Sink{}
			var names []string
			for i := range targets {
				name := string(rune('a' + i))
				names = append(names, name)
				sinks[name] = Wrap(&benchSink{name: name}, Default(), nil, WithLogger(quiet))
			}
			table, err := router.NewTable([]router.Rule{{Name: "all", Pattern: pattern, Targets: names}})
			if err != nil {
				b.Fatal(err)
			}
			src := &benchSource{event: ev, done: make(chan struct{})}
			src.left.Store(int64(b.N))
			src.acked.Store(-int64(b.N))
			d, err := router.NewDispatcher(router.DispatcherConfig{Table: table, Sinks: sinks, Sources: []router.Source{src}, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			wg.Go(func() { _ = d.Run(ctx, time.Second) })
			<-src.done
			b.StopTimer()
			cancel()
			wg.Wait()
		})
	}
}

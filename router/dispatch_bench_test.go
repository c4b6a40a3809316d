package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countHandle acks into a counter and signals when it reaches its total.
type countHandle struct {
	n     *atomic.Int64
	total int64
	done  chan struct{}
}

func (h *countHandle) Ack(context.Context) error {
	if h.n.Add(1) == h.total {
		close(h.done)
	}
	return nil
}
func (h *countHandle) Nack(context.Context, time.Duration) error   { return nil }
func (h *countHandle) Extend(context.Context, time.Duration) error { return nil }

// BenchmarkDispatch measures one message through the dispatcher: receive,
// match, render, one delivery to a sink that does nothing, ack.
func BenchmarkDispatch(b *testing.B) {
	src := newMemSource("s")
	src.batch = 100
	var acked atomic.Int64
	done := make(chan struct{})
	msgs := make([]*Message, b.N)
	for i := range msgs {
		ev, err := ParseEvent([]byte(`{"id":"e","source":"app","detail-type":"x","detail":{"k":1}}`), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = &Message{Event: ev, Source: "s", ID: "m", Handle: &countHandle{n: &acked, total: int64(b.N), done: done}}
	}
	sink := &funcSink{name: "t", fn: func(context.Context, *Delivery) error { return nil }}
	d, err := NewDispatcher(DispatcherConfig{
		Table: table(b, Rule{Name: "r", Pattern: mustPattern(b, `{"source":["app"]}`), Targets: []string{"t"}}),
		Sinks: map[string]Sink{"t": sink}, Sources: []Source{src}, MaxInFlight: 1000, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	go func() { d.Run(ctx, time.Second); close(ran) }()
	src.put(msgs...)
	<-done
	b.StopTimer()
	cancel()
	<-ran
}

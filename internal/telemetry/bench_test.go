package telemetry_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
)

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkDeliver is one delivery through a target's policy to a sink
// that does nothing, with tracing off (nothing wrapped), on and sampled
// (spans batched to an exporter that drops them), and on but not sampled.
func BenchmarkDeliver(b *testing.B) {
	ev, _ := router.ParseEvent([]byte(`{"id":"ev-1","source":"app","detail-type":"x","detail":{}}`), time.Now())
	msg := &router.Message{Event: ev, Source: "jobs", ID: "m-1",
		Trace: router.TraceContext{XRay: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}
	for _, bc := range []struct {
		name string
		tr   *telemetry.Tracer
	}{
		{"off", telemetry.Off()},
		{"on", telemetry.NewTracerFrom(sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))))},
		{"on_unsampled", telemetry.NewTracerFrom(sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.NeverSample())))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer bc.tr.Close(context.Background())
			m := *msg
			if bc.name == "on_unsampled" {
				m.Trace = router.TraceContext{} // a new root, which the sampler drops
			}
			sink := bc.tr.Sink(policy.Wrap(bc.tr.Attempts(nopSink{"t"}), policy.Default(), nil))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d := &router.Delivery{ID: "d", Message: &m, Rule: "r", Target: "t"}
				if err := sink.Deliver(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Package telemetry is switchyard's observability: logs, traces, metrics.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-dev/switchyard/internal/redact"
	"github.com/switchyard-dev/switchyard/router"
)

// TracingConfig is the `tracing:` block of the config file.
type TracingConfig struct {
	// OTLPEndpoint is the OTLP/HTTP collector's base URL
	// (http://127.0.0.1:4318); spans go to its /v1/traces. Empty means the
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
	// variables, and with neither, tracing is off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces recorded, above 0 and at most
	// 1; a delivery continuing an inbound trace follows its sampled flag.
	// Default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of the spans. Default
	// OTEL_SERVICE_NAME, then switchyard.
	ServiceName string `yaml:"service_name"`
}

// SetDefaults fills zero fields.
func (c *TracingConfig) SetDefaults() {
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
}

// Validate checks the fields, returning router.FieldErrors.
func (c *TracingConfig) Validate() error {
	var errs []error
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		var ue *url.Error
		switch {
		case errors.As(err, &ue):
			// ue quotes the URL whole, credentials included: not shown.
			errs = append(errs, router.Fieldf("otlp_endpoint", "%q is not a URL: %v", redact.URL(c.OTLPEndpoint), ue.Err))
		case err != nil:
			errs = append(errs, router.Fieldf("otlp_endpoint", "%q is not a URL", redact.URL(c.OTLPEndpoint)))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, router.Fieldf("otlp_endpoint", "%q: want an http:// or https:// URL of an OTLP/HTTP collector, such as http://127.0.0.1:4318", redact.URL(c.OTLPEndpoint)))
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, router.Fieldf("sample_ratio", "%s is not a ratio: write a number above 0 and at most 1 (0.1 records one trace in ten)",
			strconv.FormatFloat(c.SampleRatio, 'g', -1, 64)))
	}
	return errors.Join(errs...)
}

// Tracer records one span per delivery and sets the delivery's outbound
// trace context from it. A Tracer that is off wraps nothing: Sink and
// Attempts return their argument, so tracing costs nothing when off. It is
// safe for concurrent use.
type Tracer struct {
	provider *sdktrace.TracerProvider // nil when off
	tracer   trace.Tracer
}

// Off is a Tracer that traces nothing.
func Off() *Tracer { return &Tracer{tracer: noop.NewTracerProvider().Tracer("")} }

// NewTracer returns a Tracer exporting to cfg's endpoint over OTLP/HTTP, or
// Off when tracing is not configured. getenv reads OTEL_* variables (nil:
// none): OTEL_SDK_DISABLED=true turns tracing off; the OTLP exporter also
// reads OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, _TIMEOUT and _COMPRESSION, and
// the resource OTEL_RESOURCE_ATTRIBUTES. It starts nothing but the span
// batcher; Close flushes and stops it.
func NewTracer(cfg TracingConfig, getenv func(string) string, version string) (*Tracer, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg.SetDefaults()
	endpoint := cfg.OTLPEndpoint
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") ||
		endpoint == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return Off(), nil
	}
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "switchyard"
	}
	res, err := resource.New(context.Background(), resource.WithFromEnv(),
		resource.WithAttributes(attribute.String("service.name", name), attribute.String("service.version", version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return NewTracerFrom(tp), nil
}

// NewTracerFrom returns a Tracer recording with tp (for tests and
// benchmarks); Close shuts tp down.
func NewTracerFrom(tp *sdktrace.TracerProvider) *Tracer {
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/switchyard-dev/switchyard")}
}

// Enabled reports whether the Tracer records spans.
func (t *Tracer) Enabled() bool { return t != nil && t.provider != nil }

// Close exports the spans still buffered and stops, within ctx. It is
// idempotent; an Off tracer has nothing to do.
func (t *Tracer) Close(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}

// Span attribute keys.
const (
	AttrRule       = "switchyard.rule"
	AttrTarget     = "switchyard.target"
	AttrDeliveryID = "switchyard.delivery_id"
	AttrEventID    = "switchyard.event_id"
	AttrSource     = "switchyard.source"
	AttrMessageID  = "switchyard.message_id"
	AttrAttempts   = "switchyard.attempts"
	AttrOutcome    = "switchyard.outcome"
	AttrDeadLetter = "switchyard.dead_letter"
)

// Outcomes of a delivery span.
const (
	OutcomeDelivered    = "delivered"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeUnresolved   = "unresolved"
	OutcomeBacklogged   = "backlogged"
)

// Sink wraps a target's policy (which wraps its sink, see Attempts) so
// that each delivery is one span, "deliver <target>", of kind producer: a
// child of the span in ctx (a dead letter's is the failed delivery's), or
// else of the message's inbound trace context, or else a new root. The
// delivery's Trace is set to the span's context, so the target sees
// switchyard's span as its parent. Off, it returns next.
func (t *Tracer) Sink(next router.Sink) router.Sink {
	if !t.Enabled() {
		return next
	}
	return &tracedSink{next: next, t: t}
}

// Attempts wraps a target's sink, inside its policy, so that each failed
// attempt is an event on the delivery's span and the span knows how the
// last attempt went. Off, it returns next.
func (t *Tracer) Attempts(next router.Sink) router.Sink {
	if !t.Enabled() {
		return next
	}
	return &attemptSink{next: next}
}

type tracedSink struct {
	next router.Sink
	t    *Tracer
}

var _ router.Sink = (*tracedSink)(nil)

func (s *tracedSink) Name() string { return s.next.Name() }

// Unwrap returns the wrapped sink (the target's policy).
func (s *tracedSink) Unwrap() router.Sink { return s.next }

func (s *tracedSink) Deliver(ctx context.Context, d *router.Delivery) error {
	if !trace.SpanContextFromContext(ctx).IsValid() && d.Message != nil {
		if sc, ok := remoteParent(d.Message.Trace); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	ctx, span := s.t.tracer.Start(ctx, "deliver "+s.next.Name(), trace.WithSpanKind(trace.SpanKindProducer))
	sc := span.SpanContext()
	d.Trace = router.TraceContext{
		TraceParent: router.FormatTraceParent(sc.TraceID().String(), sc.SpanID().String(), byte(sc.TraceFlags())),
		TraceState:  sc.TraceState().String(),
	}
	if !span.IsRecording() {
		// Not sampled: the context still travels (flag 00), nothing else.
		err := s.next.Deliver(ctx, d)
		span.End()
		return err
	}
	span.SetAttributes(deliveryAttrs(d)...)
	err := s.next.Deliver(ctx, d)
	outcome := OutcomeDelivered
	switch {
	case err != nil:
		outcome = OutcomeUnresolved
		span.SetStatus(codes.Error, err.Error())
	case d.State == router.Backlogged:
		outcome = OutcomeBacklogged
	case d.State == router.DeadLettered:
		outcome = OutcomeDeadLettered
		if d.LastErr != nil {
			span.SetStatus(codes.Error, d.LastErr.Error())
		}
	}
	span.SetAttributes(attribute.Int(AttrAttempts, d.Attempt), attribute.String(AttrOutcome, outcome))
	span.End()
	return err
}

func deliveryAttrs(d *router.Delivery) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(AttrTarget, d.Target), attribute.String(AttrDeliveryID, d.ID),
	}
	if d.Rule != "" {
		attrs = append(attrs, attribute.String(AttrRule, d.Rule))
	}
	if d.DeadLetter != nil {
		attrs = append(attrs, attribute.Bool(AttrDeadLetter, true))
	}
	if m := d.Message; m != nil {
		attrs = append(attrs, attribute.String(AttrSource, m.Source), attribute.String(AttrMessageID, m.ID))
		if m.Event != nil && m.Event.ID != "" {
			attrs = append(attrs, attribute.String(AttrEventID, m.Event.ID))
		}
	}
	return attrs
}

// remoteParent is the span context of an inbound trace (its traceparent,
// or its X-Ray header converted).
func remoteParent(tc router.TraceContext) (trace.SpanContext, bool) {
	tp := tc.W3C()
	if tp == "" {
		return trace.SpanContext{}, false
	}
	traceID, parentID, flags, ok := router.ParseTraceParent(tp)
	if !ok {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(traceID)
	sid, err2 := trace.SpanIDFromHex(parentID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}, false
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags) & trace.FlagsSampled, Remote: true}
	if tc.TraceParent != "" && tc.TraceState != "" {
		if ts, err := trace.ParseTraceState(tc.TraceState); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.NewSpanContext(cfg), true
}

type attemptSink struct{ next router.Sink }

var _ router.Sink = (*attemptSink)(nil)

func (s *attemptSink) Name() string { return s.next.Name() }

// Unwrap returns the wrapped sink.
func (s *attemptSink) Unwrap() router.Sink { return s.next }

func (s *attemptSink) Deliver(ctx context.Context, d *router.Delivery) error {
	err := s.next.Deliver(ctx, d)
	if err != nil {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("attempt failed", trace.WithAttributes(
				attribute.Int("switchyard.attempt", d.Attempt),
				attribute.String("switchyard.class", router.ClassOf(err).String()),
				attribute.String("exception.message", err.Error()),
			))
		}
	}
	return err
}

package telemetry_test

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	"github.com/switchyard-dev/switchyard/sinks/lambda"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// collector is an OTLP/HTTP receiver: it decodes each export request.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export to %s as %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("export request: %v", err)
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) all() []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tracepb.Span(nil), c.spans...)
}

func attrs(s *tracepb.Span) map[string]any {
	out := map[string]any{}
	for _, kv := range s.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = v.BoolValue
		}
	}
	return out
}

// pipeline is an SQS source feeding a dispatcher whose one rule delivers
// to a Lambda function through its policy, with tr tracing, all through
// the real SDK clients against awstest.
func pipeline(t *testing.T, tr *telemetry.Tracer, fn awstest.Function, pc policy.Config, dl router.Sink) (*awstest.Server, func(awstest.Message) int) {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, err := srv.SQS().CreateQueue("jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Lambda().Register(fn)
	quiet := slog.New(slog.DiscardHandler)
	src := sqssource.New("jobs", sqssource.Config{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		MaxMessages: 10, Pollers: 1, Envelope: router.EnvelopeAuto}, srv.SQSClient(), quiet)
	if err := src.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	lcfg := lambda.Config{Function: fn.Name}
	lcfg.SetDefaults()
	sink := tr.Sink(policy.Wrap(tr.Attempts(lambda.New("fn", lcfg, srv.LambdaClient())), pc, dl, policy.WithLogger(quiet)))
	pat, _ := router.ParsePattern([]byte(`{"source":[{"prefix":""}]}`))
	table, err := router.NewTable([]router.Rule{{Name: "all", Pattern: pat, Targets: []string{"fn"}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := router.NewDispatcher(router.DispatcherConfig{Table: table, Sinks: map[string]router.Sink{"fn": sink},
		Sources: []router.Source{src}, Logger: quiet, RetryLater: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, 5*time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	send := func(m awstest.Message) int {
		before := d.Stats().Acked.Load() + d.Stats().Nacked.Load()
		if _, err := srv.SQS().Send("jobs", m); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for d.Stats().Acked.Load()+d.Stats().Nacked.Load() == before {
			if time.Now().After(deadline) {
				t.Fatal("the message was not settled")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return len(srv.Lambda().Invocations(fn.Name))
	}
	return srv, send
}

const inboundXRay = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

// An SQS message with an AWSTraceHeader reaches Lambda with an
// X-Amzn-Trace-Id of the same trace whose parent is switchyard's delivery
// span, and that span is exported over OTLP/HTTP as a child of the
// inbound parent, with the delivery's attributes; a failed attempt is an
// event on it.
func TestTracing_SQSToLambdaPropagatesAndExports(t *testing.T) {
	col := newCollector(t)
	tr, err := telemetry.NewTracer(telemetry.TracingConfig{OTLPEndpoint: col.URL}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var mu sync.Mutex
	fn := awstest.Function{Name: "thumb", Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return awstest.ErrorResult("Boom", "first call fails")
		}
		return awstest.Result{Payload: []byte("{}")}
	}}
	pc := policy.Default()
	pc.Retry.Initial, pc.Retry.Max = time.Millisecond, time.Millisecond
	srv, send := pipeline(t, tr, fn, pc, nil)
	if n := send(awstest.Message{Body: `{"id":"ev-1","source":"app","detail-type":"x","detail":{}}`, TraceHeader: inboundXRay}); n != 2 {
		t.Fatalf("%d invocations, want 2 (one failure, one retry)", n)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := col.all()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1", len(spans))
	}
	sp := spans[0]
	traceID, spanID, parent := hex.EncodeToString(sp.TraceId), hex.EncodeToString(sp.SpanId), hex.EncodeToString(sp.ParentSpanId)
	if traceID != "5759e988bd862e3fe1be46a994272793" || parent != "53995c3f42cd8ad8" {
		t.Errorf("span trace %s parent %s, want the inbound trace and parent", traceID, parent)
	}
	if sp.Name != "deliver fn" || sp.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Errorf("span %q kind %v", sp.Name, sp.Kind)
	}
	a := attrs(sp)
	for k, v := range map[string]any{"switchyard.rule": "all", "switchyard.target": "fn", "switchyard.event_id": "ev-1",
		"switchyard.source": "jobs", "switchyard.attempts": int64(2), "switchyard.outcome": "delivered"} {
		if a[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, a[k], v)
		}
	}
	if id, _ := a["switchyard.delivery_id"].(string); len(id) != 32 {
		t.Errorf("delivery id %q", id)
	}
	if len(sp.Events) != 1 || sp.Events[0].Name != "attempt failed" {
		t.Errorf("events %v, want one failed attempt", sp.Events)
	}
	want := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=" + spanID + ";Sampled=1"
	for _, inv := range srv.Lambda().Invocations("thumb") {
		if inv.TraceHeader != want {
			t.Errorf("Lambda got X-Amzn-Trace-Id %q, want %q", inv.TraceHeader, want)
		}
	}
}

// With tracing off nothing is wrapped or exported, and the inbound trace
// header reaches Lambda unchanged.
func TestTracing_OffPassesThrough(t *testing.T) {
	col := newCollector(t)
	tr := telemetry.Off()
	if tr.Enabled() {
		t.Fatal("Off is enabled")
	}
	srv, send := pipeline(t, tr, awstest.Function{Name: "thumb"}, policy.Default(), nil)
	send(awstest.Message{Body: `{"k":1}`, TraceHeader: inboundXRay})
	tr.Close(context.Background())
	if inv := srv.Lambda().Invocations("thumb"); len(inv) != 1 || inv[0].TraceHeader != inboundXRay {
		t.Errorf("invocations %+v, want one with the inbound header", inv)
	}
	if n := len(col.all()); n != 0 {
		t.Errorf("%d spans exported with tracing off", n)
	}
	if off, _ := telemetry.NewTracer(telemetry.TracingConfig{}, func(string) string { return "" }, ""); off.Enabled() {
		t.Error("a tracer with no endpoint is on")
	}
	on := func(k string) string { return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": col.URL}[k] }
	if tr, _ := telemetry.NewTracer(telemetry.TracingConfig{}, on, ""); !tr.Enabled() {
		t.Error("OTEL_EXPORTER_OTLP_ENDPOINT does not turn tracing on")
	} else {
		tr.Close(context.Background())
	}
	disabled := func(k string) string { return map[string]string{"OTEL_SDK_DISABLED": "true"}[k] }
	if tr, _ := telemetry.NewTracer(telemetry.TracingConfig{OTLPEndpoint: col.URL}, disabled, ""); tr.Enabled() {
		t.Error("OTEL_SDK_DISABLED=true does not turn tracing off")
	}
}

// A delivery that fails for good: its span says dead_lettered, and the
// dead letter's span is its child; a message without a trace starts one.
func TestTracing_DeadLetterSpanIsChild(t *testing.T) {
	col := newCollector(t)
	tr, err := telemetry.NewTracer(telemetry.TracingConfig{OTLPEndpoint: col.URL}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	dl := tr.Sink(policy.Wrap(tr.Attempts(nopSink{"dlq"}), policy.Default(), nil))
	fn := awstest.Function{Name: "bad", Handler: func(context.Context, awstest.Invocation) awstest.Result {
		return awstest.Result{Err: &awstest.APIError{Code: "InvalidRequestContentException", Message: "no", Status: 400}}
	}}
	_, send := pipeline(t, tr, fn, policy.Default(), dl)
	send(awstest.Message{Body: `{"k":1}`})
	tr.Close(context.Background())
	spans := col.all()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	del, letter := byName["deliver fn"], byName["deliver dlq"]
	if del == nil || letter == nil {
		t.Fatalf("spans %v", spans)
	}
	if len(del.ParentSpanId) != 0 {
		t.Errorf("a message without a trace: the delivery span has parent %x", del.ParentSpanId)
	}
	if attrs(del)["switchyard.outcome"] != "dead_lettered" || del.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("delivery span: %v, status %v", attrs(del), del.Status)
	}
	if string(letter.ParentSpanId) != string(del.SpanId) || string(letter.TraceId) != string(del.TraceId) {
		t.Errorf("dead-letter span is not the delivery span's child")
	}
	if attrs(letter)["switchyard.dead_letter"] != true {
		t.Errorf("dead-letter span attributes %v", attrs(letter))
	}
}

type nopSink struct{ name string }

func (s nopSink) Name() string                                  { return s.name }
func (nopSink) Deliver(context.Context, *router.Delivery) error { return nil }

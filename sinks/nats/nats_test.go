package nats

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sink(t *testing.T, srv *natstest.Server, cfg Config) *Sink {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc := srv.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return New("out", cfg, nc, js)
}

func delivery(id, payload string) *router.Delivery {
	return &router.Delivery{
		ID: id, Rule: "orders", Target: "out", Payload: []byte(payload), Attempt: 1,
		Message: &router.Message{Source: "ingest", ID: "m-1", Event: &router.Event{ID: "ev-1"}},
	}
}

func subscribe(t *testing.T, srv *natstest.Server, subject string) *nats.Subscription {
	t.Helper()
	nc := srv.Connect()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	return sub
}

// Core publish: the payload, with headers naming the delivery, to a
// subject filled from the payload.
func TestCorePublish(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "orders.<region>.<switchyard.rule>"})
	sub := subscribe(t, srv, "orders.>")
	if err := s.Deliver(context.Background(), delivery("d-1", `{"region":"eu-west-1","n":1}`)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "orders.eu-west-1.orders" || string(m.Data) != `{"region":"eu-west-1","n":1}` {
		t.Fatalf("got %s %s", m.Subject, m.Data)
	}
	for k, want := range map[string]string{
		HeaderDeliveryID: "d-1", HeaderEventID: "ev-1", HeaderRule: "orders", HeaderSource: "ingest", "Content-Type": "application/json",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if m.Header.Get(nats.MsgIdHdr) != "" {
		t.Errorf("core publish set %s", nats.MsgIdHdr)
	}
}

// A subject that cannot be filled is a permanent failure, named.
func TestSubjectErrors(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "orders.<region>"})
	for payload, want := range map[string]string{
		`{"n":1}`:              `placeholder <region> has no value`,
		`{"region":"eu west"}`: `white space`,
		`{"region":"*"}`:       `wildcards are not allowed`,
		`{"region":""}`:        `empty token`,
		`not json`:             `placeholder <region> has no value`,
	} {
		err := s.Deliver(context.Background(), delivery("d", payload))
		if err == nil || !strings.Contains(err.Error(), want) || router.ClassOf(err) != router.Permanent {
			t.Errorf("%s: err = %v (class %v), want permanent %q", payload, err, router.ClassOf(err), want)
		}
	}
}

// JetStream publish: the stream stores a delivery once, however often it
// is retried.
func TestJetStreamDeduplicatesRetries(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}})
	if err != nil {
		t.Fatal(err)
	}
	s := sink(t, srv, Config{Subject: "audit.events", JetStream: true})
	d := delivery("d-1", `{"a":1}`)
	for attempt := 1; attempt <= 3; attempt++ {
		d.Attempt = attempt
		if err := s.Deliver(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Deliver(context.Background(), delivery("d-2", `{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after 3 tries of d-1 and one of d-2, want 2", info.State.Msgs)
	}
	m, err := st.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(nats.MsgIdHdr) != "d-1" {
		t.Fatalf("Nats-Msg-Id %q", m.Header.Get(nats.MsgIdHdr))
	}
}

// No stream for the subject: retryable, and the error says so.
func TestJetStreamNoStream(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "nowhere", JetStream: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Deliver(ctx, delivery("d", `{}`))
	if err == nil || !strings.Contains(err.Error(), "no JetStream stream answered") || router.ClassOf(err) != router.Retryable {
		t.Fatalf("err = %v (class %v)", err, router.ClassOf(err))
	}
}

// A stream that is full and discards new messages throttles the target.
func TestJetStreamFull(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "SMALL", Subjects: []string{"small"}, MaxMsgs: 1, Discard: jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	s := sink(t, srv, Config{Subject: "small", JetStream: true})
	if err := s.Deliver(context.Background(), delivery("d-1", `{}`)); err != nil {
		t.Fatal(err)
	}
	err := s.Deliver(context.Background(), delivery("d-2", `{}`))
	if err == nil || router.ClassOf(err) != router.Throttled {
		t.Fatalf("err = %v (class %v), want throttled", err, router.ClassOf(err))
	}
}

// A payload over the server's max_payload can never be published.
func TestTooLarge(t *testing.T) {
	srv := natstest.Run(t)
	for _, js := range []bool{false, true} {
		s := sink(t, srv, Config{Subject: "big", JetStream: js})
		err := s.Deliver(context.Background(), delivery("d", `"`+strings.Repeat("x", 2<<20)+`"`))
		if err == nil || router.ClassOf(err) != router.Permanent {
			t.Errorf("jetstream=%v: err = %v (class %v), want permanent", js, err, router.ClassOf(err))
		}
	}
}

// While the server is away, a core publish fails to be retried instead of
// waiting in the client's buffer.
func TestCoreDisconnected(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "x"})
	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for s.nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err := s.Deliver(context.Background(), delivery("d", `{}`))
	if err == nil || router.ClassOf(err) != router.Retryable || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("err = %v (class %v)", err, router.ClassOf(err))
	}
}

// A dead letter is published as its record with the original body.
func TestDeadLetter(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "dlq"})
	sub := subscribe(t, srv, "dlq")
	d := delivery("d-9", `raw body`)
	d.DeadLetter = &router.DeadLetter{Source: "ingest", MessageID: "m-1", Rule: "orders", Target: "app", Attempts: 5, LastError: "boom"}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		DeadLetter router.DeadLetter `json:"dead_letter"`
		Body       string            `json:"body"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Body != "raw body" || doc.DeadLetter.Attempts != 5 || doc.DeadLetter.LastError != "boom" {
		t.Fatalf("dead letter %s", m.Data)
	}
}

// A message over the stream's own size limit is refused for good.
func TestJetStreamMessageTooLargeForStream(t *testing.T) {
	srv := natstest.Run(t)
	if _, err := srv.JetStream().CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "TINY", Subjects: []string{"tiny"}, MaxMsgSize: 64,
	}); err != nil {
		t.Fatal(err)
	}
	s := sink(t, srv, Config{Subject: "tiny", JetStream: true})
	err := s.Deliver(context.Background(), delivery("d", `"`+strings.Repeat("x", 200)+`"`))
	if err == nil || router.ClassOf(err) != router.Permanent {
		t.Fatalf("err = %v (class %v), want permanent", err, router.ClassOf(err))
	}
}

// The delivery's trace context goes as the traceparent and tracestate
// headers (W3C form, converted from X-Ray when needed).
func TestPublishCarriesTraceparent(t *testing.T) {
	srv := natstest.Run(t)
	s := sink(t, srv, Config{Subject: "traced"})
	sub := subscribe(t, srv, "traced")
	w3c := delivery("d-1", `{}`)
	w3c.Trace = router.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "a=b"}
	xray := delivery("d-2", `{}`)
	xray.Message.Trace = router.TraceContext{XRay: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"}
	want := []map[string]string{
		{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b"},
		{"traceparent": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00", "tracestate": ""},
		{"traceparent": "", "tracestate": ""},
	}
	for i, d := range []*router.Delivery{w3c, xray, delivery("d-3", `{}`)} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want[i] {
			if got := m.Header.Get(k); got != v {
				t.Errorf("delivery %d: header %s = %q, want %q", i, k, got, v)
			}
		}
	}
}

package nats

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/jsconsumer"
	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/sourcetest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

func open(t *testing.T, srv *natstest.Server, name string, cfg Config) router.Source {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.JetStream() && cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 100
	}
	nc := srv.Connect()
	js, _ := jetstream.New(nc)
	src, err := Open(context.Background(), name, cfg, nc, js, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

func receiveN(t *testing.T, src router.Source, want int) []*router.Message {
	t.Helper()
	var got []*router.Message
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < want {
		ms, err := src.Receive(ctx, want-len(got))
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(got), want, err)
		}
		got = append(got, ms...)
	}
	return got
}

// With a stream, the source is a JetStream durable consumer: a missing
// stream is created as a work queue on the subject, and acked messages
// leave it.
func TestJetStreamMode(t *testing.T) {
	srv := natstest.Run(t)
	src := open(t, srv, "bus", Config{Subject: "orders.>", Stream: "ORDERS"})
	if _, ok := src.(*jsconsumer.Source); !ok {
		t.Fatalf("source is %T", src)
	}
	js := srv.JetStream()
	st, err := js.Stream(context.Background(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Subjects[0] != "orders.>" {
		t.Fatalf("created stream %+v", info.Config)
	}
	if _, err := js.Publish(context.Background(), "orders.eu", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	m := receiveN(t, src, 1)[0]
	if err := m.Handle.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	info, _ = st.Info(context.Background())
	if info.State.Msgs != 0 {
		t.Fatalf("stream holds %d after the ack", info.State.Msgs)
	}
}

// Without a stream, members of a queue group share the subject's messages:
// each message goes to one of them.
func TestCoreQueueGroup(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, srv, "a", Config{Subject: "feed.*"})
	b := open(t, srv, "b", Config{Subject: "feed.*"})
	pub := srv.Connect()
	bodies := sourcetest.Names("f", 200)
	for _, body := range bodies {
		if err := pub.Publish("feed.x", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	pub.Flush()

	seen := map[string]int{}
	counts := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < len(bodies) && time.Now().Before(deadline) {
		for _, src := range []router.Source{a, b} {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			ms, _ := src.Receive(ctx, 50)
			cancel()
			for _, m := range ms {
				seen[string(m.Body)]++
				counts[src.Name()]++
				if m.Event.DetailType != "NATS Message" || m.System["Subject"] != "feed.x" {
					t.Fatalf("event %s from %v", m.Event.DetailType, m.System)
				}
			}
		}
	}
	if len(seen) != len(bodies) {
		t.Fatalf("received %d distinct of %d", len(seen), len(bodies))
	}
	for body, n := range seen {
		if n != 1 {
			t.Fatalf("%s received %d times across the queue group", body, n)
		}
	}
	if counts["a"] == 0 || counts["b"] == 0 {
		t.Errorf("one member got everything: %v", counts)
	}
}

// Core NATS cannot take a message back: a nack says the message is lost.
func TestCoreNackSaysLost(t *testing.T) {
	srv := natstest.Run(t)
	src := open(t, srv, "feed", Config{Subject: "feed"})
	pub := srv.Connect()
	pub.Publish("feed", []byte("x"))
	pub.Flush()
	m := receiveN(t, src, 1)[0]
	if err := m.Handle.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := m.Handle.Nack(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), "core NATS cannot redeliver") {
		t.Fatalf("nack: %v", err)
	}
}

// Messages beyond max_pending are dropped and counted, never buffered
// without bound.
func TestCoreMaxPending(t *testing.T) {
	srv := natstest.Run(t)
	src := open(t, srv, "feed", Config{Subject: "feed", MaxPending: 10})
	pub := srv.Connect()
	for range 50 {
		pub.Publish("feed", []byte("x"))
	}
	pub.Flush()
	core := src.(*Core)
	deadline := time.Now().Add(5 * time.Second)
	for core.Dropped() < 40 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := core.Dropped(); d != 40 {
		t.Fatalf("dropped %d, want 40", d)
	}
	if got := receiveN(t, src, 10); len(got) != 10 {
		t.Fatalf("got %d", len(got))
	}
}

// A publisher's Nats-Msg-Id is the message id in core mode too.
func TestCoreMessageID(t *testing.T) {
	srv := natstest.Run(t)
	src := open(t, srv, "feed", Config{Subject: "feed"})
	pub := srv.Connect()
	msg := nats.NewMsg("feed")
	msg.Header.Set(nats.MsgIdHdr, "id-1")
	msg.Data = []byte(`{"version":"0","id":"ev","detail-type":"T","source":"s","account":"1","time":"2026-11-22T10:00:00Z","region":"r","resources":[],"detail":{}}`)
	pub.PublishMsg(msg)
	pub.PublishMsg(&nats.Msg{Subject: "feed", Data: []byte("a")})
	pub.PublishMsg(&nats.Msg{Subject: "feed", Data: []byte("b")})
	pub.Flush()
	ms := receiveN(t, src, 3)
	if ms[0].ID != "id-1" || ms[0].Event.ID != "ev" {
		t.Errorf("message id %q, event id %q", ms[0].ID, ms[0].Event.ID)
	}
	if ms[1].ID == ms[2].ID || ms[1].Event.ID != ms[1].ID {
		t.Errorf("ids %q %q, event id %q", ms[1].ID, ms[2].ID, ms[1].Event.ID)
	}
}

func TestConfigValidate(t *testing.T) {
	kindtest.Check(t, Config{Subject: "a.>"}, "")
	kindtest.Check(t, Config{Subject: "a.>", Stream: "A"}, "")
	kindtest.Check(t, Config{Subject: "a.>", Stream: "A", Queue: "q"}, "queue: core NATS only")
	kindtest.Check(t, Config{Subject: "a.>", Stream: "A", AckWait: time.Millisecond}, "ack_wait: must be at least 1s")
	kindtest.Check(t, Config{Subject: "a.>", Stream: "A", Batch: 5000}, "batch: 5000 is outside")
	kindtest.Check(t, Config{Subject: "a.>", AckWait: time.Minute}, "ack_wait: JetStream only")
	kindtest.Check(t, Config{Subject: "a.>", Durable: "d"}, "durable: JetStream only")
	kindtest.Check(t, Config{Subject: "a.>", Stream: "A.B"}, "stream: stream names may not contain")
	kindtest.Check(t, Config{Subject: "a.>.b"}, "subject:")
	kindtest.Check(t, Config{Subject: "a", Envelope: router.EnvelopeEventBridge, Malformed: "dead_letter"}, "dead_letter: required")
}

// A subscription that fails (its connection closed) backs off between
// receives instead of spinning.
func TestCoreBacksOffOnErrors(t *testing.T) {
	srv := natstest.Run(t)
	cfg := Config{Subject: "feed"}
	cfg.SetDefaults()
	nc := srv.Connect()
	src, err := Open(context.Background(), "feed", cfg, nc, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	calls := 0
	for ctx.Err() == nil {
		if _, err := src.Receive(ctx, 1); err == nil {
			t.Fatal("Receive on a closed connection succeeded")
		}
		calls++
	}
	if calls > 10 {
		t.Fatalf("%d failed receives in 1s: no backoff", calls)
	}
}

// A traceparent header (and tracestate) becomes the message's trace
// context, through JetStream and core NATS alike.
func TestTraceparentHeaderCarried(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	want := router.TraceContext{TraceParent: tp, TraceState: "a=b"}
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"jetstream", Config{Subject: "traced.>", Stream: "TRACED"}},
		{"core", Config{Subject: "traced.>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Run(t)
			src := open(t, srv, "bus", tt.cfg)
			pub := srv.Connect()
			m := nats.NewMsg("traced.x")
			m.Data = []byte(`{"n":1}`)
			m.Header.Set("traceparent", tp)
			m.Header.Set("tracestate", "a=b")
			if tt.cfg.Stream != "" {
				if _, err := srv.JetStream().PublishMsg(t.Context(), m); err != nil {
					t.Fatal(err)
				}
			} else if err := pub.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			pub.Flush()
			got := receiveN(t, src, 1)[0]
			if got.Trace != want {
				t.Errorf("trace %+v, want %+v", got.Trace, want)
			}
			got.Handle.Ack(t.Context())
		})
	}
}

// NATS carries any bytes. A payload that is not JSON as events must be
// (UTF-8, no key twice) is wrapped as a string, with U+FFFD for bytes that
// are not UTF-8; with envelope eventbridge it is malformed, and the reason
// names what is wrong, for malformed: dead_letter.
func TestPayloadsThatAreNotJSON(t *testing.T) {
	srv := natstest.Run(t)
	auto := open(t, srv, "auto", Config{Subject: "in.auto", Stream: "AUTO"})
	strict := open(t, srv, "strict", Config{Subject: "in.eb", Stream: "EB", Envelope: router.EnvelopeEventBridge,
		Malformed: router.MalformedDeadLetter, DeadLetter: "dlq"})
	js := srv.JetStream()
	for subject, body := range map[string]string{
		"in.auto": "{\"note\":\"caf\xe9\"}",
		"in.eb":   `{"source":"a","detail-type":"b","detail":{"amount":1,"amount":1000000}}`,
	} {
		if _, err := js.Publish(t.Context(), subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	m := receiveN(t, auto, 1)[0]
	var ev struct{ Detail any }
	if !utf8.Valid(m.Event.JSON) || json.Unmarshal(m.Event.JSON, &ev) != nil || ev.Detail != "{\"note\":\"caf\uFFFD\"}" {
		t.Errorf("event %q, want the payload as a string with U+FFFD", m.Event.JSON)
	}
	m = receiveN(t, strict, 1)[0]
	if m.Malformed == nil || !strings.Contains(m.Malformed.Error(), "duplicate key $.detail.amount") {
		t.Errorf("malformed = %v, want the duplicate key named", m.Malformed)
	}
	if _, err := router.ParseEvent(m.Event.JSON, time.Time{}); err != nil {
		t.Errorf("the event made of a malformed payload: %v", err)
	}
}

package jsconsumer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/sourcetest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

var streamSeq atomic.Int64

type fixture struct {
	srv    *natstest.Server
	js     jetstream.JetStream
	stream string
	cfg    Config
}

// newFixture makes a fresh work-queue stream on srv.
func newFixture(t *testing.T, srv *natstest.Server, mod func(*Config)) *fixture {
	t.Helper()
	n := streamSeq.Add(1)
	f := &fixture{srv: srv, js: srv.JetStream(), stream: fmt.Sprintf("S%d", n)}
	f.cfg = Config{
		Source: "bus", Stream: f.stream, Subject: fmt.Sprintf("s%d.>", n), Durable: "switchyard",
		AckWait: 2 * time.Second, MaxAckPending: 1000, Batch: 10, Wait: 2 * time.Second,
		Envelope: router.EnvelopeAuto, Malformed: router.MalformedWrap, DetailType: "NATS Message",
		CreateStream: &jetstream.StreamConfig{
			Subjects: []string{fmt.Sprintf("s%d.>", n)}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		},
	}
	if mod != nil {
		mod(&f.cfg)
	}
	return f
}

func (f *fixture) open(t *testing.T) *Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, f.js, f.cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func (f *fixture) subject(i int) string { return f.cfg.Subject[:len(f.cfg.Subject)-1] + fmt.Sprint(i) }

func (f *fixture) send(t *testing.T, bodies ...string) {
	t.Helper()
	for i, b := range bodies {
		if _, err := f.js.Publish(context.Background(), f.subject(i), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) stored(t *testing.T) int {
	t.Helper()
	st, err := f.js.Stream(context.Background(), f.stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

// The JetStream source keeps every promise of router.Source against a real
// server. The heartbeat is off, so that an unsettled message comes back as
// it would after a crash.
func TestConformance(t *testing.T) {
	srv := natstest.Run(t)
	var f *fixture
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) router.Source {
			// An ack wait of 3s leaves the extend test 2s of margin on a
			// loaded machine.
			f = newFixture(t, srv, func(c *Config) { c.Heartbeat, c.AckWait = -1, 3*time.Second })
			return f.open(t)
		},
		Send:       func(t *testing.T, bodies ...string) { f.send(t, bodies...) },
		Stored:     func(t *testing.T) int { return f.stored(t) },
		Pass:       func(t *testing.T, d time.Duration) { time.Sleep(d) },
		Visibility: 3 * time.Second,
	})
}

// A message whose deliveries run longer than the ack wait is not
// redelivered meanwhile: the heartbeat keeps it.
func TestHeartbeatKeepsSlowMessages(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) { c.AckWait = time.Second })
	src := f.open(t)
	f.send(t, "slow")
	m := receive(t, src, 1)[0]
	if got := receiveFor(src, 1, 3*time.Second); len(got) != 0 {
		t.Fatalf("a message in flight for 3x the ack wait was redelivered")
	}
	if err := m.Handle.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.stored(t); n != 0 {
		t.Fatalf("stream holds %d after ack", n)
	}
}

// Payloads are decoded as the SQS source's are: an EventBridge event
// passes through, anything else is wrapped, with an id that stays the
// same when the message is redelivered.
func TestEnvelopeAndStableIDs(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, nil)
	src := f.open(t)
	eb := `{"version":"0","id":"ev-1","detail-type":"Order Placed","source":"shop","account":"1","time":"2026-11-22T10:00:00Z","region":"eu-west-1","resources":[],"detail":{"n":1}}`
	f.send(t, eb, `{"plain":true}`)
	ms := receive(t, src, 2)
	byBody := map[string]*router.Message{}
	for _, m := range ms {
		byBody[string(m.Body)] = m
	}
	if ev := byBody[eb].Event; ev.ID != "ev-1" || ev.DetailType != "Order Placed" {
		t.Errorf("EventBridge event became id %q detail-type %q", ev.ID, ev.DetailType)
	}
	wrapped := byBody[`{"plain":true}`]
	if ev := wrapped.Event; ev.DetailType != "NATS Message" || ev.Source != "bus" || ev.ID != f.stream+":2" {
		t.Errorf("wrapped event: id %q detail-type %q source %q", ev.ID, ev.DetailType, ev.Source)
	}
	if wrapped.System["NumDelivered"] != "1" || wrapped.System["Subject"] != f.subject(1) {
		t.Errorf("system attributes %v", wrapped.System)
	}
	if err := wrapped.Handle.Nack(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	again := receive(t, src, 1)[0]
	if again.Event.ID != wrapped.Event.ID || again.System["NumDelivered"] != "2" {
		t.Errorf("redelivered as id %q (delivered %s), want id %q", again.Event.ID, again.System["NumDelivered"], wrapped.Event.ID)
	}
}

// A publisher's Nats-Msg-Id is the message id; other headers become
// attributes.
func TestHeaders(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, nil)
	src := f.open(t)
	msg := nats.NewMsg(f.subject(0))
	msg.Data = []byte("x")
	msg.Header.Set(nats.MsgIdHdr, "order-7")
	msg.Header.Set("tenant", "acme")
	if _, err := f.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := receive(t, src, 1)[0]
	if m.ID != "order-7" || m.Attributes["tenant"] != "acme" || m.Attributes[nats.MsgIdHdr] != "" {
		t.Fatalf("id %q attributes %v", m.ID, m.Attributes)
	}
}

// malformed: dead_letter marks payloads that do not fit the envelope.
func TestMalformedDeadLetter(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) {
		c.Envelope, c.Malformed = router.EnvelopeEventBridge, router.MalformedDeadLetter
	})
	src := f.open(t)
	f.send(t, "not json")
	m := receive(t, src, 1)[0]
	if m.Malformed == nil || m.Event == nil {
		t.Fatalf("malformed %v, event %v", m.Malformed, m.Event)
	}
}

// A missing stream is an error unless the source may create it; an
// existing one is used as it is.
func TestStreamMissingOrExisting(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) { c.CreateStream = nil })
	if _, err := Open(context.Background(), f.js, f.cfg, quiet); err == nil {
		t.Fatal("Open succeeded on a missing stream it may not create")
	}
	if _, err := f.js.CreateStream(context.Background(), jetstream.StreamConfig{Name: f.stream, Subjects: []string{f.cfg.Subject}, Retention: jetstream.LimitsPolicy}); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	st, _ := f.js.Stream(context.Background(), f.stream)
	if info, _ := st.Info(context.Background()); info.Config.Retention != jetstream.LimitsPolicy {
		t.Fatalf("existing stream changed to %v", info.Config.Retention)
	}
}

// The durable consumer is tied to the in-flight budget.
func TestMaxAckPending(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) { c.MaxAckPending = 3 })
	src := f.open(t)
	f.send(t, sourcetest.Names("m", 5)...)
	got := receive(t, src, 3)
	if more := receiveFor(src, 10, time.Second); len(more) != 0 {
		t.Fatalf("received %d beyond max_ack_pending 3", len(got)+len(more))
	}
	for _, m := range got {
		m.Handle.Ack(context.Background())
	}
	receive(t, src, 2)
}

// An operator deleting the durable consumer costs a few failed polls: it
// is created again and consumption goes on.
func TestConsumerRecreated(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, nil)
	src := f.open(t)
	if err := f.js.DeleteConsumer(context.Background(), f.stream, "switchyard"); err != nil {
		t.Fatal(err)
	}
	f.send(t, "after")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ms, _ := src.Receive(ctx, 1)
		cancel()
		if len(ms) == 1 {
			return
		}
	}
	t.Fatal("no message after the consumer was deleted")
}

// The server restarts while messages are in flight: every message is
// still received and acked, none is lost.
func TestServerRestartLosesNothing(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) { c.AckWait = time.Second })
	src := f.open(t)
	const n = 300
	f.send(t, sourcetest.Names("m", n)...)

	var mu sync.Mutex
	seen := map[string]int{}
	acked := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	restarted := false
	for {
		mu.Lock()
		done := len(acked) == n
		mu.Unlock()
		if done || ctx.Err() != nil {
			break
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		ms, _ := src.Receive(rctx, 10)
		rcancel()
		if !restarted && len(seen) >= n/3 {
			// Restart with this batch received and not yet acked: its acks
			// race the reconnect, and what they miss is redelivered.
			srv.Restart()
			restarted = true
		}
		// Acked as the dispatcher acks: each on its own, bounded. An ack
		// sent across the restart may never be answered; it fails, and the
		// message comes back after AckWait.
		var wg sync.WaitGroup
		for _, m := range ms {
			mu.Lock()
			seen[string(m.Body)]++
			mu.Unlock()
			wg.Go(func() {
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				defer acancel()
				if err := m.Handle.Ack(actx); err == nil {
					mu.Lock()
					acked[string(m.Body)] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	if len(acked) != n {
		t.Fatalf("acked %d of %d messages after a server restart", len(acked), n)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("%d messages, server restarted after %d, %d redelivered", n, n/3, dups)
	deadline := time.Now().Add(10 * time.Second)
	for f.stored(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stream still holds %d messages", f.stored(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func receive(t *testing.T, src router.Source, want int) []*router.Message {
	t.Helper()
	var got []*router.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, receiveFor(src, want-len(got), time.Second)...)
	}
	if len(got) < want {
		t.Fatalf("received %d messages, want %d", len(got), want)
	}
	return got
}

// receiveFor receives until it gets messages or d has passed.
func receiveFor(src router.Source, max int, d time.Duration) []*router.Message {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		if ms, _ := src.Receive(ctx, max); len(ms) > 0 {
			return ms
		}
	}
	return nil
}

// Instances sharing a durable consumer (nats.url) with the same settings
// all start; one with another setting fails to, naming the setting and
// both values, and the consumer keeps the first one's settings.
func TestSharedConsumerSettingsChecked(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) { c.Shared = true })
	f.open(t)
	f.open(t) // the same settings: fine

	other := f.cfg
	other.MaxAckPending, other.AckWait = 2000, 5*time.Second
	other.Keys = map[string]string{"max_ack_pending": "max_in_flight"}
	_, err := Open(context.Background(), f.js, other, quiet)
	if err == nil {
		t.Fatal("a second instance with other consumer settings started")
	}
	for _, want := range []string{"durable consumer switchyard on stream " + f.stream, "max_in_flight (max_ack_pending) 1000 where this instance's config asks for 2000", "ack_wait 2s where this instance's config asks for 5s", "nats consumer edit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("the error: %v", err)
	if got := f.consumer(t).MaxAckPending; got != 1000 {
		t.Fatalf("max_ack_pending rewritten to %d", got)
	}
}

// An instance that is alone on its NATS (the embedded server) brings its
// consumer to its config: a changed setting takes effect at a restart.
func TestOwnConsumerFollowsTheConfig(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, nil)
	s := f.open(t)
	s.Close(context.Background())
	f.cfg.MaxAckPending = 7
	f.open(t)
	if got := f.consumer(t).MaxAckPending; got != 7 {
		t.Fatalf("max_ack_pending %d after a restart with 7", got)
	}
}

// A stream of the source's own (the HTTP source's) is held to its config
// like the consumer: shared, a different buffer is an error naming both;
// alone, the stream is changed.
func TestOwnStreamChecked(t *testing.T) {
	srv := natstest.Run(t)
	f := newFixture(t, srv, func(c *Config) {
		c.OwnStream, c.Shared = true, true
		c.CreateStream.MaxBytes = 1 << 20
		c.Keys = map[string]string{"max_bytes": "buffer"}
	})
	f.open(t)
	other := f.cfg
	cs := *other.CreateStream
	cs.MaxBytes = 2 << 20
	other.CreateStream = &cs
	_, err := Open(context.Background(), f.js, other, quiet)
	if err == nil || !strings.Contains(err.Error(), "stream "+f.stream+" has buffer (max_bytes) 1048576 where this instance's config asks for 2097152") {
		t.Fatalf("a second instance with another buffer: %v", err)
	}
	other.Shared = false
	s, err := Open(context.Background(), f.js, other, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	st, _ := f.js.Stream(context.Background(), f.stream)
	if got := st.CachedInfo().Config.MaxBytes; got != 2<<20 {
		t.Fatalf("max_bytes %d, want the config's %d", got, 2<<20)
	}
}

func (f *fixture) consumer(t *testing.T) jetstream.ConsumerConfig {
	t.Helper()
	c, err := f.js.Consumer(context.Background(), f.stream, f.cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo().Config
}

package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/sourcetest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

type fixture struct {
	srv   *awstest.Server
	clock *awstest.ManualClock
	queue string
	url   string
}

func newFixture(t *testing.T, queueAttrs map[string]string) *fixture {
	t.Helper()
	clock := awstest.NewManualClock(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	srv := awstest.NewTestServer(t, awstest.Options{Clock: clock})
	name := "jobs"
	if queueAttrs["FifoQueue"] == "true" {
		name = "jobs.fifo"
	}
	url, err := srv.SQS().CreateQueue(name, queueAttrs)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, clock: clock, queue: name, url: url}
}

func (f *fixture) source(t *testing.T, mod func(*Config)) *Source {
	t.Helper()
	cfg := Config{QueueURL: f.url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second, Envelope: router.EnvelopeAuto}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New("jobs", cfg, f.srv.SQSClient(), quiet)
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func (f *fixture) send(t *testing.T, m awstest.Message) {
	t.Helper()
	if _, err := f.srv.SQS().Send(f.queue, m); err != nil {
		t.Fatal(err)
	}
}

func TestSQSSource_Conformance(t *testing.T) {
	var f *fixture
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) router.Source {
			f = newFixture(t, nil)
			return f.source(t, nil)
		},
		Send: func(t *testing.T, bodies ...string) {
			for _, b := range bodies {
				f.send(t, awstest.Message{Body: b})
			}
		},
		Stored: func(t *testing.T) int {
			c, err := f.srv.SQS().Counts(f.queue)
			if err != nil {
				t.Fatal(err)
			}
			return c.Visible + c.InFlight + c.Delayed
		},
		Pass: func(t *testing.T, d time.Duration) {
			// A receive the suite abandoned may still be polling until the
			// server notices its client left; let it go first, or it takes
			// the message when the clock moves (as a real abandoned poll can).
			deadline := time.Now().Add(5 * time.Second)
			for f.srv.SQS().Waiting(f.queue) > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			f.clock.Advance(d)
		},
		Visibility: 30 * time.Second,
	})
}

func receive(t *testing.T, s *Source, want int) []*router.Message {
	t.Helper()
	var got []*router.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		ms, _ := s.Receive(ctx, 10)
		cancel()
		got = append(got, ms...)
	}
	if len(got) != want {
		t.Fatalf("received %d messages, want %d", len(got), want)
	}
	return got
}

// A message's attributes keep their types (Number, Binary, custom labels)
// for the targets that carry them; Attributes has the String and Number
// values, for the wrapped event and JSON dead letters.
func TestSQSSource_KeepsAttributeTypes(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	f.send(t, awstest.Message{Body: `{"order":"o-1"}`, Attributes: map[string]awstest.Attribute{
		"tenant": {DataType: "String", StringValue: "acme"}, "priority": {DataType: "Number.int", StringValue: "7"},
		"blob": {DataType: "Binary", BinaryValue: []byte{0, 0xff}},
	}})
	m := receive(t, s, 1)[0]
	want := map[string]router.Attribute{
		"tenant": {DataType: "String", StringValue: "acme"}, "priority": {DataType: "Number.int", StringValue: "7"},
		"blob": {DataType: "Binary", BinaryValue: []byte{0, 0xff}},
	}
	if !reflect.DeepEqual(m.TypedAttributes, want) {
		t.Errorf("typed attributes %+v, want %+v", m.TypedAttributes, want)
	}
	if !maps.Equal(m.Attributes, map[string]string{"tenant": "acme", "priority": "7"}) {
		t.Errorf("attributes %v", m.Attributes)
	}
}

func TestSQSSource_Envelopes(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	eb := `{"version":"0","id":"e-1","detail-type":"ECS Task State Change","source":"aws.ecs","account":"123456789012","time":"2026-11-20T12:00:00Z","region":"us-east-1","resources":[],"detail":{"lastStatus":"STOPPED"}}`
	snsBody, _ := json.Marshal(map[string]any{"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": eb, "Timestamp": "2026-11-20T11:00:00Z"})
	f.send(t, awstest.Message{Body: eb})
	f.send(t, awstest.Message{Body: string(snsBody)})
	f.send(t, awstest.Message{Body: `{"order":"o-1"}`, Attributes: map[string]awstest.Attribute{"tenant": {DataType: "String", StringValue: "acme"}}})
	f.send(t, awstest.Message{Body: "plain text"})
	ms := receive(t, s, 4)
	byBody := map[string]*router.Message{}
	for _, m := range ms {
		byBody[string(m.Body)] = m
	}
	if ev := byBody[eb].Event; string(ev.JSON) != eb || ev.ID != "e-1" {
		t.Errorf("EventBridge event: %s", ev.JSON)
	}
	if ev := byBody[string(snsBody)].Event; string(ev.JSON) != eb {
		t.Errorf("SNS-wrapped event not unwrapped: %s", ev.JSON)
	}
	raw := byBody[`{"order":"o-1"}`]
	var w map[string]any
	if err := json.Unmarshal(raw.Event.JSON, &w); err != nil {
		t.Fatal(err)
	}
	if w["source"] != "jobs" || w["detail-type"] != "SQS Message" || w["id"] != raw.ID || w["account"] != f.srv.AccountID() ||
		w["region"] != "us-east-1" || w["detail"].(map[string]any)["order"] != "o-1" || w["attributes"].(map[string]any)["tenant"] != "acme" ||
		w["time"] != "2026-11-20T12:00:00Z" {
		t.Errorf("wrapped raw body: %s", raw.Event.JSON)
	}
	if raw.Attributes["tenant"] != "acme" || raw.System["ApproximateReceiveCount"] != "1" || raw.System["QueueArn"] == "" {
		t.Errorf("message attributes %v, system %v", raw.Attributes, raw.System)
	}
	if ev := byBody["plain text"].Event; !strings.Contains(string(ev.JSON), `"detail":"plain text"`) {
		t.Errorf("text body: %s", ev.JSON)
	}
}

func TestSQSSource_Malformed(t *testing.T) {
	f := newFixture(t, nil)
	wrapSrc := f.source(t, func(c *Config) { c.Envelope = router.EnvelopeEventBridge })
	f.send(t, awstest.Message{Body: "not an event"})
	m := receive(t, wrapSrc, 1)[0]
	if m.Malformed != nil || !strings.Contains(string(m.Event.JSON), `"detail":"not an event"`) {
		t.Errorf("malformed: wrap: %v %s", m.Malformed, m.Event.JSON)
	}
	m.Handle.Ack(t.Context())

	dlSrc := f.source(t, func(c *Config) {
		c.Envelope = router.EnvelopeEventBridge
		c.Malformed, c.DeadLetter = "dead_letter", "dlq"
	})
	f.send(t, awstest.Message{Body: `{"no":"envelope"}`})
	m = receive(t, dlSrc, 1)[0]
	if !errors.Is(m.Malformed, router.ErrMalformed) || m.Event == nil {
		t.Errorf("malformed: dead_letter: Malformed = %v, event %v", m.Malformed, m.Event)
	}
}

func TestSQSSource_FIFOGroups(t *testing.T) {
	f := newFixture(t, map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	s := f.source(t, nil)
	for _, b := range []string{"a1", "b1", "a2"} {
		f.send(t, awstest.Message{Body: b, GroupID: b[:1]})
	}
	ms := receive(t, s, 3)
	for _, m := range ms {
		if m.Group != string(m.Body[0]) {
			t.Errorf("message %s has group %q", m.Body, m.Group)
		}
	}
}

// ackAll acks every message, each from its own goroutine started gap
// after the one before, and checks that the queue is empty afterwards.
func ackAll(t *testing.T, f *fixture, ms []*router.Message, gap time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			if err := m.Handle.Ack(t.Context()); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(gap)
	}
	wg.Wait()
	if c, _ := f.srv.SQS().Counts(f.queue); c.Visible+c.InFlight != 0 {
		t.Errorf("%d messages left after %d acks", c.Visible+c.InFlight, len(ms))
	}
}

// sendAndReceive puts n messages in the queue and receives them.
func sendAndReceive(t *testing.T, f *fixture, s *Source, n int) []*router.Message {
	t.Helper()
	for _, b := range sourcetest.Names("m", n) {
		f.send(t, awstest.Message{Body: b})
	}
	return receive(t, s, n)
}

// Acks are deleted in batches: many acks at once take few calls.
func TestSQSSource_AcksAreBatched(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	ms := sendAndReceive(t, f, s, 50)
	f.srv.ResetStats()
	ackAll(t, f, ms, 0)
	if n := f.srv.Calls("sqs:DeleteMessageBatch"); n > 25 || n < 5 {
		t.Errorf("%d DeleteMessageBatch calls for 50 acks, want 5 to 25", n)
	}
	if n := f.srv.Calls("sqs:DeleteMessage"); n != 0 {
		t.Errorf("%d DeleteMessage calls", n)
	}
}

// Acks that come a moment apart, as at a steady rate, share their
// DeleteMessageBatch calls instead of making one each.
func TestSQSSource_AcksLingerForCompany(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	ms := sendAndReceive(t, f, s, 30)
	f.srv.ResetStats()
	ackAll(t, f, ms, time.Millisecond)
	if n := f.srv.Calls("sqs:DeleteMessageBatch"); n > 15 {
		t.Errorf("%d DeleteMessageBatch calls for 30 acks a millisecond apart, want at most 15", n)
	}
}

// A slow DeleteMessageBatch does not hold up the acks behind it: several
// calls are out at once, never more than deletesInFlight, and every
// message is deleted.
func TestSQSSource_DeletesOverlap(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	ms := sendAndReceive(t, f, s, 200)
	var out, most atomic.Int32
	f.srv.SetHook(func(op string, _ *http.Request) *awstest.Fault {
		if op != "sqs:DeleteMessageBatch" {
			return nil
		}
		n := out.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		out.Add(-1)
		return nil
	})
	ackAll(t, f, ms, 0)
	if m := most.Load(); m < 2 || m > deletesInFlight {
		t.Errorf("at most %d DeleteMessageBatch calls out at once, want 2 to %d", m, deletesInFlight)
	}
}

// A delete that fails for one entry fails that ack only.
func TestSQSSource_PartialDeleteFailure(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	f.send(t, awstest.Message{Body: "x"})
	m := receive(t, s, 1)[0]
	f.srv.FailNext("sqs:DeleteMessageBatch", 1, awstest.Fault{BatchEntries: []string{"0"}, Code: "InternalError", Status: 500})
	if err := m.Handle.Ack(t.Context()); err == nil {
		t.Fatal("ack succeeded although its delete failed")
	}
	if c, _ := f.srv.SQS().Counts(f.queue); c.InFlight != 1 {
		t.Errorf("the message is gone (%+v), though its delete failed", c)
	}
}

// Receive errors are logged once per streak, backed off, and the recovery
// is logged; no message is lost.
func TestSQSSource_ReceiveErrorsLoggedOncePerStreak(t *testing.T) {
	f := newFixture(t, nil)
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := Config{QueueURL: f.url, WaitTime: time.Second}
	cfg.SetDefaults()
	s := New("jobs", cfg, f.srv.SQSClient(), slog.New(slog.NewTextHandler(&lockedWriter{&logs, &mu}, nil)))
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	f.send(t, awstest.Message{Body: "survivor"})
	f.srv.FailNext("sqs:ReceiveMessage", 4, awstest.Throttled())
	errs := 0
	var got []*router.Message
	for len(got) == 0 && errs < 10 {
		ms, err := s.Receive(t.Context(), 10)
		if err != nil {
			errs++
		}
		got = append(got, ms...)
	}
	if errs != 4 || len(got) != 1 {
		t.Fatalf("%d errors then %d messages, want 4 then 1", errs, len(got))
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "receive failed"); n != 1 {
		t.Errorf("the error streak was logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "receive recovered") || !strings.Contains(out, "failures=4") {
		t.Errorf("no recovery log:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSQSSource_OpenFailsFastOnAMissingQueue(t *testing.T) {
	f := newFixture(t, nil)
	cfg := Config{QueueURL: f.srv.SQS().QueueURL("nope")}
	cfg.SetDefaults()
	err := New("jobs", cfg, f.srv.SQSClient(), quiet).Open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NonExistentQueue") {
		t.Errorf("Open = %v, want the queue's absence", err)
	}
}

// The heartbeat extends messages still in flight, so that a slow delivery
// does not see its message redelivered.
func TestSQSSource_HeartbeatExtendsInFlight(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("slow", nil)
	cfg := Config{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 3 * time.Second}
	cfg.SetDefaults()
	s := New("slow", cfg, srv.SQSClient(), quiet)
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	srv.SQS().Send("slow", awstest.Message{Body: "long job"})
	var m *router.Message
	for m == nil {
		ms, err := s.Receive(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 {
			m = ms[0]
		}
	}
	// Two visibility timeouts later the message is still invisible.
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		c, _ := srv.SQS().Counts("slow")
		if c.Visible != 0 {
			t.Fatalf("the message became visible while in flight: %+v", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if srv.Calls("sqs:ChangeMessageVisibilityBatch") < 2 {
		t.Errorf("%d heartbeat calls in 7s", srv.Calls("sqs:ChangeMessageVisibilityBatch"))
	}
	if err := m.Handle.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Settled messages are no longer extended.
	n := srv.Calls("sqs:ChangeMessageVisibilityBatch")
	time.Sleep(2500 * time.Millisecond)
	if srv.Calls("sqs:ChangeMessageVisibilityBatch") != n {
		t.Error("a settled message was extended")
	}
}

// The AWSTraceHeader system attribute becomes the message's trace context.
func TestSQSSource_CarriesAWSTraceHeader(t *testing.T) {
	f := newFixture(t, nil)
	s := f.source(t, nil)
	const xr = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	f.send(t, awstest.Message{Body: `{"a":1}`, TraceHeader: xr})
	f.send(t, awstest.Message{Body: `{"a":2}`})
	var got []*router.Message
	for len(got) < 2 {
		ms, err := s.Receive(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ms...)
	}
	for _, m := range got {
		want := router.TraceContext{}
		if strings.Contains(string(m.Body), `"a":1`) {
			want.XRay = xr
		}
		if m.Trace != want {
			t.Errorf("message %s: trace %+v, want %+v", m.Body, m.Trace, want)
		}
		m.Handle.Ack(t.Context())
	}
}

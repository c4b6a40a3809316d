package backlog

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func delivery(id string, payload string) *router.Delivery {
	return &router.Delivery{
		ID: id, Rule: "r", Target: "app", Payload: []byte(payload), Attempt: 2, Failures: 1,
		FirstAttempt: time.Now().Add(-time.Minute).Truncate(time.Millisecond),
		Message:      &router.Message{Source: "jobs", ID: "m-" + id, Body: []byte(payload), Event: &router.Event{ID: "e-" + id}, Received: time.Now()},
	}
}

// backlog is the part of a backlog the conformance checks use.
type backlog interface {
	router.Backlog
	router.BacklogDepth
}

// conformance pushes, counts, receives, nacks and acks through a backlog.
func conformance(t *testing.T, b backlog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if n, oldest, err := b.Depth(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Errorf("empty backlog: depth %d, oldest %v, %v", n, oldest, err)
	}
	pushed := time.Now()
	for _, id := range []string{"d1", "d2", "d3"} {
		if err := b.Push(ctx, delivery(id, `{"id":"`+id+`"}`)); err != nil {
			t.Fatalf("push %s: %v", id, err)
		}
	}
	if n, oldest, err := b.Depth(ctx); err != nil || n != 3 || oldest.IsZero() || oldest.Before(pushed.Add(-time.Second)) {
		t.Errorf("after 3 pushes: depth %d, oldest %v, %v", n, oldest, err)
	}
	var got []*router.Message
	for len(got) < 3 && ctx.Err() == nil {
		ms, err := b.Receive(ctx, 3-len(got))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ms...)
	}
	ids := map[string]*router.Message{}
	for _, m := range got {
		if m.Event != nil {
			t.Error("a backlog message was decoded as an event")
		}
		d, err := router.DecodeEntry(m.Body)
		if err != nil {
			t.Fatalf("entry %s: %v", m.Body, err)
		}
		if d.Attempt != 2 || d.Failures != 1 || d.Message.Event.ID != "e-"+d.ID || string(d.Payload) != `{"id":"`+d.ID+`"}` {
			t.Errorf("entry %s came back as %+v", d.ID, d)
		}
		ids[d.ID] = m
	}
	if len(ids) != 3 {
		t.Fatalf("received %d distinct entries, want 3", len(ids))
	}
	// d1 is delivered, d2 comes back, d3 is left in flight.
	if err := ids["d1"].Handle.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ids["d2"].Handle.Nack(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var again []*router.Message
	for len(again) == 0 && ctx.Err() == nil {
		again, _ = b.Receive(ctx, 10)
	}
	if len(again) != 1 || !again[0].Redelivered {
		t.Fatalf("after a nack: %d entries (redelivered %v), want d2 again, marked redelivered", len(again), len(again) == 1 && again[0].Redelivered)
	}
	if d, _ := router.DecodeEntry(again[0].Body); d.ID != "d2" {
		t.Errorf("came back: %s, want d2", d.ID)
	}
	again[0].Handle.Ack(ctx)
	ids["d3"].Handle.Ack(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := b.Depth(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("depth after every ack: %d, %v; want 0", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func openJS(t *testing.T, js jetstream.JetStream, cfg Config) *JetStream {
	t.Helper()
	b, err := OpenJetStream(t.Context(), js, "app", cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func TestJetStream_Conformance(t *testing.T) {
	srv := natstest.Run(t)
	conformance(t, openJS(t, srv.JetStream(), Config{Type: TypeJetStream, Replicas: 1}))
}

// Entries are on disk: they survive a restart of the server.
func TestJetStream_SurvivesARestart(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	b := openJS(t, js, Config{Type: TypeJetStream, Replicas: 1})
	if err := b.Push(t.Context(), delivery("d1", `{}`)); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if n, _, err := b.Depth(ctx); err == nil && n == 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the entry did not survive the server's restart")
}

// A full stream refuses the push (the delivery then waits in memory) and
// keeps what it holds.
func TestJetStream_FullRefusesAndKeeps(t *testing.T) {
	srv := natstest.Run(t)
	b := openJS(t, srv.JetStream(), Config{Type: TypeJetStream, Replicas: 1, MaxBytes: 2 * size.KiB})
	payload := `{"pad":"` + strings.Repeat("x", 600) + `"}`
	pushed := 0
	var err error
	for range 10 {
		if err = b.Push(t.Context(), delivery("d", payload)); err != nil {
			break
		}
		pushed++
	}
	if err == nil || pushed == 0 {
		t.Fatalf("pushed %d entries of ~800 bytes into 2KiB, last error %v; want a few, then a refusal", pushed, err)
	}
	if n, _, _ := b.Depth(t.Context()); n != int64(pushed) {
		t.Errorf("depth %d after %d accepted pushes: a full stream must not drop old entries", n, pushed)
	}
}

// An entry over the server's max_payload is refused without a call, as a
// permanent error: only that delivery stays in memory.
func TestJetStream_EntryTooLarge(t *testing.T) {
	srv := natstest.Run(t)
	b := openJS(t, srv.JetStream(), Config{Type: TypeJetStream, Replicas: 1})
	err := b.Push(t.Context(), delivery("big", `"`+strings.Repeat("x", 2<<20)+`"`))
	if err == nil || router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("push of a 2 MiB entry: %v, want a permanent error naming max_payload", err)
	}
}

// A stream made with other settings is an error naming each of them.
func TestJetStream_StreamWithOtherSettings(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: StreamFor("app"), Subjects: []string{"elsewhere"}, Storage: jetstream.MemoryStorage, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, err := OpenJetStream(t.Context(), js, "app", Config{Type: TypeJetStream, Replicas: 1}, quiet)
	if err == nil {
		t.Fatal("opened a stream with other settings")
	}
	for _, want := range []string{"has subjects [elsewhere]", "has retention Limits, the config asks for WorkQueue", "has storage Memory", "has max_age 1h0m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func sqsServer(t *testing.T) *awstest.Server {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	if _, err := srv.SQS().CreateQueue("app-backlog", map[string]string{"MessageRetentionPeriod": "1209600"}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func openSQS(t *testing.T, srv *awstest.Server, queue string, maxAge time.Duration) (*SQS, error) {
	t.Helper()
	b, err := OpenSQS(t.Context(), srv.SQSClient(), "app", Config{Type: TypeSQS, QueueURL: srv.SQS().QueueURL(queue)}, maxAge, quiet)
	if err == nil {
		t.Cleanup(func() { b.Close(context.Background()) })
	}
	return b, err
}

func TestSQS_Conformance(t *testing.T) {
	srv := sqsServer(t)
	b, err := openSQS(t, srv, "app-backlog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conformance(t, b)
}

// A queue that is missing, FIFO, or keeps messages less long than the
// target's max_age is a startup error that says so.
func TestOpenSQS_Refuses(t *testing.T) {
	srv := sqsServer(t)
	srv.SQS().CreateQueue("short", map[string]string{"MessageRetentionPeriod": "3600"})
	srv.SQS().CreateQueue("ordered.fifo", map[string]string{"FifoQueue": "true"})
	for _, tc := range []struct {
		name, queue string
		maxAge      time.Duration
		want        string
	}{
		{"missing", "nope", time.Hour, "backlog of app: queue " + srv.SQS().QueueURL("nope")},
		{"fifo", "ordered.fifo", time.Hour, "is a FIFO queue"},
		{"retention", "short", 45 * time.Minute, "keeps messages 1h0m0s, less than twice the target's retry.max_age of 45m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := openSQS(t, srv, tc.queue, tc.maxAge); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenSQS = %v, want %q", err, tc.want)
			}
		})
	}
}

// An entry over the queue's MaximumMessageSize is refused without a call.
func TestSQS_EntryTooLarge(t *testing.T) {
	srv := sqsServer(t)
	b, err := openSQS(t, srv, "app-backlog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Calls("sqs:SendMessage")
	err = b.Push(t.Context(), delivery("big", `"`+strings.Repeat("x", 300<<10)+`"`))
	if err == nil || router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), "MaximumMessageSize of 262144") {
		t.Errorf("push of 300 KiB: %v, want a permanent error naming the queue's limit", err)
	}
	if srv.Calls("sqs:SendMessage") != before {
		t.Error("a call was made for an entry that cannot fit")
	}
}

// SQS's answers are classified: a throttle is a throttle.
func TestSQS_PushThrottled(t *testing.T) {
	srv := sqsServer(t)
	b, err := openSQS(t, srv, "app-backlog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext("sqs:SendMessage", 1, awstest.Fault{Code: "RequestThrottled", Status: 400})
	if err := b.Push(t.Context(), delivery("d", `{}`)); router.ClassOf(err) != router.Throttled {
		t.Errorf("push while SQS throttles: %v (%s), want throttled", err, router.ClassOf(err))
	}
}

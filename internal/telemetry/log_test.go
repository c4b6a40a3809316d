package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

type failSink struct{}

func (failSink) Name() string { return "dead" }
func (failSink) Deliver(context.Context, *router.Delivery) error {
	return router.PermanentError(errors.New("connection refused"))
}

// deliver sends n messages through a dispatcher to a target whose calls
// all fail for good, with no dead letter, logging to log. With same, the
// n messages are one message coming back n times (one event and message id).
func deliver(t *testing.T, log *slog.Logger, n int, body string, same bool) {
	t.Helper()
	sink := policy.Wrap(failSink{}, policy.Default(), nil, policy.WithLogger(log))
	pat, _ := router.ParsePattern([]byte(`{"source":["app"]}`))
	table, _ := router.NewTable([]router.Rule{{Name: "r", Pattern: pat, Targets: []string{"dead"}}})
	src := &sliceSource{}
	for i := range n {
		id := strconv.Itoa(i)
		if same {
			id = "0"
		}
		ev, err := router.ParseEvent([]byte(`{"id":"ev-`+id+`","source":"app","detail-type":"x","detail":`+body+`}`), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		src.msgs = append(src.msgs, &router.Message{Event: ev, Source: "jobs", ID: "m-" + id, Handle: &nackCounter{src: src},
			Trace: router.TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}})
	}
	src.left.Add(n)
	d, err := router.NewDispatcher(router.DispatcherConfig{Table: table, Sinks: map[string]router.Sink{"dead": sink},
		Sources: []router.Source{src}, Logger: log, RetryLater: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { src.left.Wait(); cancel() }()
	d.Run(ctx, time.Second)
}

type sliceSource struct {
	mu   sync.Mutex
	msgs []*router.Message
	left sync.WaitGroup
}

func (s *sliceSource) Name() string { return "jobs" }
func (s *sliceSource) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	s.mu.Lock()
	n := min(max, len(s.msgs))
	out := s.msgs[:n]
	s.msgs = s.msgs[n:]
	s.mu.Unlock()
	if n == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return out, nil
}
func (s *sliceSource) Close(context.Context) error { return nil }

type nackCounter struct {
	src  *sliceSource
	once sync.Once
}

func (h *nackCounter) Ack(context.Context) error { h.once.Do(h.src.left.Done); return nil }
func (h *nackCounter) Nack(context.Context, time.Duration) error {
	h.once.Do(h.src.left.Done)
	return nil
}
func (h *nackCounter) Extend(context.Context, time.Duration) error { return nil }

// Every line about an event carries its correlation ids, and every event
// that failed is in the log; a message that keeps failing (one event
// coming back 1000 times) is a bounded number of lines, ending in a
// summary that counts the rest; payloads and secrets never reach info.
// (Credentials in URLs: cmd/switchyard's TestRun_SecretsInURLsNeverShow.)
func TestLogs_IDsStreaksAndSecrets(t *testing.T) {
	t.Setenv("APP_SECRET", "s3cr3t-value-123")
	const body = `{"card":"4111111111111111","secret":"s3cr3t-value-123"}`
	check := func(t *testing.T, buf *lockedBuf) (lines []map[string]any, suppressed int) {
		t.Helper()
		for _, l := range buf.lines(t) {
			for _, k := range []string{"event_id", "message_id", "source", "delivery_id", "rule", "target", "trace_id"} {
				if l[k] == nil || l[k] == "" {
					t.Errorf("line %q lacks %s: %v", l["msg"], k, l)
				}
			}
			if n, ok := l["suppressed"].(float64); ok {
				suppressed += int(n)
				continue
			}
			lines = append(lines, l)
		}
		all := buf.b.String()
		for _, secret := range []string{"4111111111111111", "s3cr3t-value-123"} {
			if strings.Contains(all, secret) {
				t.Errorf("the log shows %q", secret)
			}
		}
		return lines, suppressed
	}
	t.Run("different events", func(t *testing.T) {
		var buf lockedBuf
		log, sum, err := telemetry.NewLogger(&buf, "info", "json", false)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, log, 100, body, false)
		sum.Close()
		lines, suppressed := check(t, &buf)
		ids := map[string]int{}
		for _, l := range lines {
			ids[l["event_id"].(string)]++
		}
		// Two lines per delivery: the policy's and the dispatcher's.
		for i := range 100 {
			if id := "ev-" + strconv.Itoa(i); ids[id] != 2 {
				t.Errorf("%s is in %d lines, want 2", id, ids[id])
			}
		}
		if suppressed != 0 {
			t.Errorf("%d lines about different events suppressed", suppressed)
		}
	})
	t.Run("one event again and again", func(t *testing.T) {
		var buf lockedBuf
		log, sum, err := telemetry.NewLogger(&buf, "info", "json", false)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, log, 1000, body, true)
		sum.Close()
		lines, suppressed := check(t, &buf)
		if total := len(buf.lines(t)); total > 10 {
			t.Errorf("%d lines for 1000 identical failures, want a handful", total)
		}
		// Each of the two messages written once and summarised once.
		if suppressed+len(lines) != 2000 {
			t.Errorf("%d lines + %d suppressed, want 2000 in all", len(lines), suppressed)
		}
	})
}

// The summary window: when it ends, one line counts the records held back
// in it; below warn nothing is summarised.
func TestSummarizer_Window(t *testing.T) {
	var buf lockedBuf
	s := telemetry.NewSummarizer(slog.NewJSONHandler(&buf, nil), 50*time.Millisecond)
	log := slog.New(s).With("target", "t")
	for range 5 {
		log.Warn("same")
		log.Info("info passes")
	}
	log.With("target", "other").Warn("same")
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, l := range buf.lines(t) {
			if l["suppressed"] != nil {
				n = int(l["suppressed"].(float64))
			}
		}
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no summary after the window: %v", buf.lines(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	warns, infos := 0, 0
	for _, l := range buf.lines(t) {
		if l["level"] == "WARN" {
			warns++
		} else {
			infos++
		}
	}
	if warns != 3 || infos != 5 {
		t.Errorf("%d warnings (want the first, the summary, and the other target's), %d infos (want 5)", warns, infos)
	}
}

// Lines that name no target or source are not about a streak of events:
// each one is written, even when the message repeats.
func TestSummarizer_UnscopedLinesPassThrough(t *testing.T) {
	var buf lockedBuf
	s := telemetry.NewSummarizer(slog.NewJSONHandler(&buf, nil), time.Hour)
	log := slog.New(s)
	log.Error("config reload rejected", "error", "one")
	log.Error("config reload rejected", "error", "two")
	log.Error("delivery failed", "target", "t", "error", "x")
	log.Error("delivery failed", "target", "t", "error", "y")
	var got []string
	for _, l := range buf.lines(t) {
		got = append(got, l["error"].(string))
	}
	s.Close()
	if want := []string{"one", "two", "x"}; !slices.Equal(got, want) {
		t.Errorf("lines written at once: %v, want %v (the target's streak held back)", got, want)
	}
}

// Lines that name different events are never folded into one another, even
// when everything else about them is the same (ten dead letters from one
// target are ten lines, each with its event's ids); a line repeating the
// same event's is.
func TestSummarizer_NeverFoldsADifferentEvent(t *testing.T) {
	var buf lockedBuf
	s := telemetry.NewSummarizer(slog.NewJSONHandler(&buf, nil), time.Hour)
	log := slog.New(s).With("source", "jobs")
	for i := range 10 {
		log.Warn("delivery dead-lettered", "target", "dlq", "event_id", "ev-"+strconv.Itoa(i), "delivery_id", "d-"+strconv.Itoa(i), "message_id", "m-"+strconv.Itoa(i))
	}
	// The same event and message, another delivery (a second target
	// would differ in target too; a second rule in delivery_id only).
	log.Warn("delivery dead-lettered", "target", "dlq", "event_id", "ev-0", "delivery_id", "d-other", "message_id", "m-0")
	// Two messages carrying one event (a retried POST): another message.
	log.Warn("delivery dead-lettered", "target", "dlq", "event_id", "ev-0", "delivery_id", "d-0", "message_id", "m-again")
	// The same event's line again: a repeat, folded.
	for range 3 {
		log.Warn("delivery dead-lettered", "target", "dlq", "event_id", "ev-0", "delivery_id", "d-0", "message_id", "m-0")
	}
	lines := buf.lines(t)
	s.Close()
	var ids []string
	for _, l := range lines {
		ids = append(ids, l["event_id"].(string)+"/"+l["delivery_id"].(string)+"/"+l["message_id"].(string))
	}
	want := []string{"ev-0/d-0/m-0"}
	for i := 1; i < 10; i++ {
		want = append(want, "ev-"+strconv.Itoa(i)+"/d-"+strconv.Itoa(i)+"/m-"+strconv.Itoa(i))
	}
	want = append(want, "ev-0/d-other/m-0", "ev-0/d-0/m-again")
	if !slices.Equal(ids, want) {
		t.Errorf("lines written:\n%v\nwant every different event's:\n%v", ids, want)
	}
	all := buf.lines(t)
	if last := all[len(all)-1]; len(all) != len(want)+1 || last["suppressed"] != 3.0 || last["event_id"] != "ev-0" {
		t.Errorf("after Close, the last line is %v; want the summary of the 3 repeats of ev-0", last)
	}
}

// A summary is written when its window ends, stamped with that time: the
// log stays in time order, however old the lines it counts are.
func TestSummarizer_SummariesKeepTheLogInTimeOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuf
		s := telemetry.NewSummarizer(slog.NewJSONHandler(&buf, nil), 10*time.Second)
		defer s.Close()
		log := slog.New(s)
		start := time.Now()
		for range 3 {
			log.Warn("receive failed", "source", "jobs")
			time.Sleep(time.Second)
		}
		time.Sleep(2 * time.Second)
		log.Warn("delivery failed", "target", "t", "event_id", "ev-1")
		time.Sleep(10 * time.Second)
		synctest.Wait()

		lines := buf.lines(t)
		var last time.Time
		for _, l := range lines {
			at, err := time.Parse(time.RFC3339Nano, l["time"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if at.Before(last) {
				t.Errorf("line %v is stamped %s, before the line above it (%s)", l, at.Sub(start), last.Sub(start))
			}
			last = at
		}
		if len(lines) != 3 || lines[2]["suppressed"] != 2.0 || lines[2]["msg"] != "receive failed" {
			t.Fatalf("lines %v; want the first, the other, then the summary of 2", lines)
		}
		if at, _ := time.Parse(time.RFC3339Nano, lines[2]["time"].(string)); at.Sub(start) < 10*time.Second {
			t.Errorf("the summary is stamped %s after the start, before its window ended (10s)", at.Sub(start))
		}
	})
}

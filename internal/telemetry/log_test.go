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
// all fail for good, with no dead letter, logging to log.
func deliver(t *testing.T, log *slog.Logger, n int, body string) {
	t.Helper()
	sink := policy.Wrap(failSink{}, policy.Default(), nil, policy.WithLogger(log))
	pat, _ := router.ParsePattern([]byte(`{"source":["app"]}`))
	table, _ := router.NewTable([]router.Rule{{Name: "r", Pattern: pat, Targets: []string{"dead"}}})
	src := &sliceSource{}
	for i := range n {
		ev, err := router.ParseEvent([]byte(`{"id":"ev-`+strconv.Itoa(i)+`","source":"app","detail-type":"x","detail":`+body+`}`), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		src.msgs = append(src.msgs, &router.Message{Event: ev, Source: "jobs", ID: "m-" + strconv.Itoa(i), Handle: &nackCounter{src: src},
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

// Every line about an event carries its correlation ids; a streak of 1000
// identical failures is a bounded number of lines, ending in a summary
// that counts the rest; payloads and secrets never reach info.
func TestLogs_IDsStreaksAndSecrets(t *testing.T) {
	t.Setenv("APP_SECRET", "s3cr3t-value-123")
	var buf lockedBuf
	log, sum, err := telemetry.NewLogger(&buf, "info", "json", false)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, log, 1000, `{"card":"4111111111111111","secret":"s3cr3t-value-123"}`)
	sum.Close()
	lines := buf.lines(t)
	if len(lines) > 10 {
		t.Errorf("%d lines for 1000 identical failures, want a handful", len(lines))
	}
	suppressed := 0
	for _, l := range lines {
		if _, about := l["event_id"]; !about {
			if _, d := l["delivery_id"]; !d {
				t.Errorf("a line without an event: %v", l)
				continue
			}
		}
		for _, k := range []string{"event_id", "message_id", "source", "delivery_id", "rule", "target", "trace_id"} {
			if l[k] == nil || l[k] == "" {
				t.Errorf("line %q lacks %s: %v", l["msg"], k, l)
			}
		}
		if n, ok := l["suppressed"].(float64); ok {
			suppressed += int(n)
		}
	}
	// Two messages per delivery (the policy's and the dispatcher's), each
	// written once and summarised once.
	if suppressed+len(lines) != 2000 {
		t.Errorf("%d lines + %d suppressed, want 2000 in all", len(lines), suppressed)
	}
	all := buf.b.String()
	for _, secret := range []string{"4111111111111111", "s3cr3t-value-123"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
}

// The summary window: a record after it is written, counting those
// suppressed before; below warn nothing is summarised.
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
		if n == 3 {
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

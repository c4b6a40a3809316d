package log

import (
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/router"
)

func TestLogSink_OneJSONLinePerDelivery(t *testing.T) {
	var buf bytes.Buffer
	s := New("stdout", Config{}, &buf)
	s.now = func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) }
	ev, _ := router.ParseEvent([]byte(`{"id":"ev-1","source":"s","detail-type":"d","detail":{}}`), time.Now())
	m := &router.Message{ID: "m-1", Source: "jobs", Body: []byte("not json"), Event: ev}
	for _, d := range []*router.Delivery{
		{ID: "d-1", Rule: "r", Payload: []byte(`{"k":1}`), Message: m},
		{ID: "d-2", Rule: "r", Payload: []byte(`plain`), Text: true, Message: m},
		{ID: "d-3", Rule: "r", Payload: m.Body, Message: m, DeadLetter: &router.DeadLetter{Source: "jobs", Attempts: 2}},
	} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"time":"2026-11-20T12:00:00Z","target":"stdout","rule":"r","delivery_id":"d-1","event_id":"ev-1","source":"jobs","message_id":"m-1","payload":{"k":1}}
{"time":"2026-11-20T12:00:00Z","target":"stdout","rule":"r","delivery_id":"d-2","event_id":"ev-1","source":"jobs","message_id":"m-1","payload":"plain"}
`
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 3 || string(lines[0])+"\n"+string(lines[1])+"\n" != want {
		t.Fatalf("got:\n%s", buf.Bytes())
	}
	var dl map[string]any
	if err := json.Unmarshal(lines[2], &dl); err != nil || dl["payload"] != "not json" || dl["dead_letter"].(map[string]any)["attempts"] != 2.0 {
		t.Errorf("dead letter line %s: %v", lines[2], err)
	}
}

// A dead letter's body that is JSON but not UTF-8 (from a NATS source) is
// written as a string with U+FFFD: the log line stays valid JSON text.
func TestLogSink_DeadLetterNotUTF8(t *testing.T) {
	var buf bytes.Buffer
	s := New("stdout", Config{}, &buf)
	m := &router.Message{ID: "m-1", Source: "bus", Body: []byte("{\"a\":\"caf\xe9\"}")}
	d := &router.Delivery{ID: "d-1", Payload: m.Body, Message: m, DeadLetter: &router.DeadLetter{Source: "bus", Attempts: 1}}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	var line struct{ Payload string }
	if !utf8.Valid(buf.Bytes()) || json.Unmarshal(buf.Bytes(), &line) != nil || line.Payload != "{\"a\":\"caf\uFFFD\"}" {
		t.Errorf("line %q", buf.Bytes())
	}
	if doc := router.DeadLetterDocument(d); !utf8.Valid(doc) || !json.Valid(doc) {
		t.Errorf("dead letter document %q", doc)
	}
}

// Writing a large payload leaves nothing of its size behind: encoding/json
// keeps its encoders' buffers in a pool, and a 32 MB payload marshalled
// through it held a 64 MB buffer until two garbage collections later.
func TestLogSink_LargePayloadLeavesNothingBehind(t *testing.T) {
	s := New("stdout", Config{}, io.Discard)
	m := &router.Message{ID: "m-1", Source: "ingest"}
	payload := []byte(`{"data":"` + strings.Repeat("x", 32<<20) + `"}`)
	for _, d := range []*router.Delivery{
		{ID: "d-1", Payload: payload, Message: m},
		{ID: "d-2", Payload: payload, Message: m, DeadLetter: &router.DeadLetter{Source: "ingest"}},
	} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	payload = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 16<<20 {
		t.Errorf("%d MB live after writing a 32 MB payload, want it gone", ms.HeapAlloc>>20)
	}
}

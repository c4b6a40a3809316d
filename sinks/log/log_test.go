package log

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

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

package router

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// What DeadLetterDocument writes, ParseDeadLetterDocument reads back: the
// record whole, and the body (JSON without its white space, text as text).
func TestParseDeadLetterDocument_ReadsWhatDeadLetterDocumentWrites(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	rec := DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r", Target: "billing", Attempts: 7, FirstError: "503", LastError: "timeout",
		FirstAttempt: first, LastAttempt: first.Add(time.Minute), Attributes: map[string]string{"tenant": "a"}}
	for _, tc := range []struct {
		name       string
		body, want string
	}{
		{"a JSON body, white space dropped", "{\"detail\": {\"n\": 1},\n \"source\": \"s\"}", `{"detail":{"n":1},"source":"s"}`},
		{"a text body stays text", "plain text, \"quoted\"\n", "plain text, \"quoted\"\n"},
		{"a body that is not UTF-8", "a\xffb", "a\uFFFDb"},
		{"an empty body", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rec
			doc := DeadLetterDocument(&Delivery{Payload: []byte(tc.body), DeadLetter: &r})
			got, body, err := ParseDeadLetterDocument(doc)
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			if !reflect.DeepEqual(*got, rec) {
				t.Errorf("record = %+v, want %+v", *got, rec)
			}
			if string(body) != tc.want {
				t.Errorf("body = %q, want %q", body, tc.want)
			}
		})
	}
}

func TestParseDeadLetterDocument_RefusesWhatIsNotOne(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not JSON", `oops`, "not a JSON object with dead_letter and body"},
		{"an event", `{"source":"s","detail-type":"d","detail":{}}`, "a dead letter document has a dead_letter object and a body"},
		{"no body", `{"dead_letter":{"source":"s","message_id":"m","attempts":1,"last_attempt":"2026-11-20T12:00:00Z"}}`, "a dead letter document has"},
		{"a record without source or message", `{"dead_letter":{"attempts":1,"last_attempt":"2026-11-20T12:00:00Z"},"body":{}}`, "the record has no source, message_id"},
		{"a record without its last attempt", `{"dead_letter":{"source":"s","message_id":"m","attempts":1},"body":{}}`, "the record has no last_attempt"},
		{"negative attempts", `{"dead_letter":{"source":"s","message_id":"m","attempts":-1,"last_attempt":"2026-11-20T12:00:00Z"},"body":{}}`, "attempts are -1"},
		{"attempts of the wrong type", `{"dead_letter":{"source":"s","message_id":"m","attempts":"3","last_attempt":"2026-11-20T12:00:00Z"},"body":{}}`, "cannot unmarshal"},
		{"a bad time", `{"dead_letter":{"source":"s","message_id":"m","attempts":1,"last_attempt":"yesterday"},"body":{}}`, "cannot parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseDeadLetterDocument([]byte(tc.doc))
			if !errors.Is(err, ErrNotDeadLetter) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrNotDeadLetter with %q", err, tc.want)
			}
		})
	}
	// A later switchyard's fields are ignored.
	dl, body, err := ParseDeadLetterDocument([]byte(`{"dead_letter":{"source":"s","message_id":"m","attempts":1,"last_attempt":"2026-11-20T12:00:00Z","new":1},"body":{"a":1},"more":true}`))
	if err != nil || dl.Source != "s" || string(body) != `{"a":1}` {
		t.Errorf("with unknown fields: %+v %s %v", dl, body, err)
	}
}

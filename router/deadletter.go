package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Large bodies and payloads are written into JSON here by appending, not
// through encoding/json: its encoders keep their buffers in a pool, so one
// 60 MB payload would leave a 128 MB buffer alive across garbage
// collections long after the delivery.

// DeadLetterDocument is the JSON a dead letter carries to targets that have
// no message attributes (Lambda, HTTP, NATS, log): the record of why, and
// the original body, as AppendBody writes it.
func DeadLetterDocument(d *Delivery) []byte {
	dl := *d.DeadLetter
	dl.FirstAttempt, dl.LastAttempt = dl.FirstAttempt.UTC(), dl.LastAttempt.UTC()
	rec, _ := json.Marshal(dl)
	b := make([]byte, 0, len(rec)+len(d.Payload)+32)
	b = append(b, `{"dead_letter":`...)
	b = append(b, rec...)
	b = append(b, `,"body":`...)
	b = AppendBody(b, d.Payload)
	return append(b, '}')
}

// JSONPayload returns a delivery's payload as JSON, for targets that only
// take JSON: the payload itself, a text payload as a JSON string, or a dead
// letter as DeadLetterDocument.
func JSONPayload(d *Delivery) []byte {
	switch {
	case d.DeadLetter != nil:
		return DeadLetterDocument(d)
	case d.Text:
		return appendQuoted(make([]byte, 0, len(d.Payload)+2), string(d.Payload))
	}
	return d.Payload
}

// AppendBody appends a message body to dst as a JSON value: the body
// itself, without insignificant white space, when it is JSON as events
// must be (CheckJSON), else the body as a JSON string, with U+FFFD for
// each byte that is not UTF-8.
func AppendBody(dst, body []byte) []byte {
	if CheckJSON(body) == nil {
		return appendCompact(dst, body)
	}
	return appendQuoted(dst, string(body))
}

// AppendCompact appends JSON to dst without its insignificant white space.
// src must be valid JSON (a rendered payload, JSONPayload's result).
func AppendCompact(dst, src []byte) []byte { return appendCompact(dst, src) }

// ErrNotDeadLetter is wrapped by the errors of readers of dead letters
// (ParseDeadLetterDocument, the SQS target's DeadLetterOf) for what is not
// a dead letter switchyard wrote.
var ErrNotDeadLetter = errors.New("not a switchyard dead letter")

// ParseDeadLetterDocument reads what DeadLetterDocument writes: the record
// (checked with DeadLetter.Check) and the original body. A body that was
// JSON comes back as DeadLetterDocument kept it, without insignificant
// white space; one that was not comes back as its text (with U+FFFD where
// it was not UTF-8). Fields a later switchyard may add are ignored. An
// error wraps ErrNotDeadLetter.
func ParseDeadLetterDocument(b []byte) (*DeadLetter, []byte, error) {
	var doc struct {
		DeadLetter *DeadLetter      `json:"dead_letter"`
		Body       *json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object with dead_letter and body: %v", ErrNotDeadLetter, err)
	}
	if doc.DeadLetter == nil || doc.Body == nil {
		return nil, nil, fmt.Errorf("%w: a dead letter document has a dead_letter object and a body", ErrNotDeadLetter)
	}
	if err := doc.DeadLetter.Check(); err != nil {
		return nil, nil, err
	}
	body := []byte(*doc.Body)
	if len(body) > 0 && body[0] == '"' {
		var s string
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, nil, fmt.Errorf("%w: body: %v", ErrNotDeadLetter, err)
		}
		body = []byte(s)
	}
	return doc.DeadLetter, body, nil
}

// Check reports whether dl is a record switchyard writes: it names the
// source and the message (every dead letter does; a malformed message's
// names no rule or target), its attempts are not negative and it has the
// time of its last attempt. The error wraps ErrNotDeadLetter.
func (dl *DeadLetter) Check() error {
	var missing []string
	if dl.Source == "" {
		missing = append(missing, "source")
	}
	if dl.MessageID == "" {
		missing = append(missing, "message_id")
	}
	if dl.LastAttempt.IsZero() {
		missing = append(missing, "last_attempt")
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("%w: the record has no %s", ErrNotDeadLetter, strings.Join(missing, ", "))
	case dl.Attempts < 0:
		return fmt.Errorf("%w: the record's attempts are %d", ErrNotDeadLetter, dl.Attempts)
	}
	return nil
}

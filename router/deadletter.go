package router

import (
	"encoding/json"
	"time"
)

// DeadLetterDocument is the JSON a dead letter carries to targets that have
// no message attributes (Lambda, HTTP, NATS, log): the record of why, and
// the original body (as JSON when it is JSON, else as a string).
func DeadLetterDocument(d *Delivery) []byte {
	dl := d.DeadLetter
	doc := struct {
		DeadLetter struct {
			Source       string            `json:"source"`
			MessageID    string            `json:"message_id"`
			Rule         string            `json:"rule,omitempty"`
			Target       string            `json:"target,omitempty"`
			Attempts     int               `json:"attempts"`
			FirstError   string            `json:"first_error,omitempty"`
			LastError    string            `json:"last_error,omitempty"`
			FirstAttempt time.Time         `json:"first_attempt"`
			LastAttempt  time.Time         `json:"last_attempt"`
			Attributes   map[string]string `json:"attributes,omitempty"`
		} `json:"dead_letter"`
		Body json.RawMessage `json:"body"`
	}{}
	doc.DeadLetter.Source, doc.DeadLetter.MessageID, doc.DeadLetter.Rule, doc.DeadLetter.Target = dl.Source, dl.MessageID, dl.Rule, dl.Target
	doc.DeadLetter.Attempts, doc.DeadLetter.FirstError, doc.DeadLetter.LastError = dl.Attempts, dl.FirstError, dl.LastError
	doc.DeadLetter.FirstAttempt, doc.DeadLetter.LastAttempt, doc.DeadLetter.Attributes = dl.FirstAttempt.UTC(), dl.LastAttempt.UTC(), dl.Attributes
	if json.Valid(d.Payload) {
		doc.Body = d.Payload
	} else {
		doc.Body, _ = json.Marshal(string(d.Payload))
	}
	b, _ := json.Marshal(doc)
	return b
}

// JSONPayload returns a delivery's payload as JSON, for targets that only
// take JSON: the payload itself, a text payload as a JSON string, or a dead
// letter as DeadLetterDocument.
func JSONPayload(d *Delivery) []byte {
	switch {
	case d.DeadLetter != nil:
		return DeadLetterDocument(d)
	case d.Text:
		b, _ := json.Marshal(string(d.Payload))
		return b
	}
	return d.Payload
}

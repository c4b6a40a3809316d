package router

import (
	"encoding/json"
	"unicode/utf8"
)

// DeadLetterDocument is the JSON a dead letter carries to targets that have
// no message attributes (Lambda, HTTP, NATS, log): the record of why, and
// the original body (as JSON when it is JSON in UTF-8, else as a string,
// with U+FFFD for each byte that is not UTF-8).
func DeadLetterDocument(d *Delivery) []byte {
	dl := *d.DeadLetter
	dl.FirstAttempt, dl.LastAttempt = dl.FirstAttempt.UTC(), dl.LastAttempt.UTC()
	doc := struct {
		DeadLetter DeadLetter      `json:"dead_letter"`
		Body       json.RawMessage `json:"body"`
	}{DeadLetter: dl}
	if json.Valid(d.Payload) && utf8.Valid(d.Payload) {
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

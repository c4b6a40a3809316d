package router

import "encoding/json"

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

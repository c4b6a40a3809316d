package redrive

import (
	"encoding/json"

	"github.com/switchyard-dev/switchyard/router"
)

// Document is what a pattern (--pattern) is matched against: the dead
// letter's record, with its fields at the top level (source, message_id,
// rule, target, attempts, first_error, last_error, first_attempt,
// last_attempt, attributes), and body, the original message's body: as
// JSON when it is JSON, else as a string. For example
//
//	{"source": "jobs", "message_id": "…", "rule": "invoices", "target": "billing",
//	 "attempts": 5, "first_error": "…", "last_error": "…",
//	 "first_attempt": "2026-11-20T12:00:00Z", "last_attempt": "2026-11-20T12:01:00Z",
//	 "attributes": {"tenant": "acme"}, "body": {"detail-type": "Invoice Paid", "detail": {…}}}
//
// A letter that cannot be read has only its body.
func Document(l *Letter) []byte {
	b := []byte{'{'}
	if rec := l.Record; rec != nil {
		r := *rec
		r.FirstAttempt, r.LastAttempt = r.FirstAttempt.UTC(), r.LastAttempt.UTC()
		j, _ := json.Marshal(r) // plain data: it always marshals
		b = append(b, j[1:len(j)-1]...)
		b = append(b, ',')
	}
	b = append(b, `"body":`...)
	b = router.AppendBody(b, l.Body)
	return append(b, '}')
}

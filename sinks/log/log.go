package log

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Sink writes each delivery as one JSON line.
type Sink struct {
	name string
	mu   sync.Mutex
	w    io.Writer
	now  func() time.Time
}

// New returns a sink writing to w (standard output in the daemon).
func New(name string, _ Config, w io.Writer) *Sink {
	return &Sink{name: name, w: w, now: time.Now}
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// head is the start of a line, before the payload; the payload (and the
// dead letter's record) are appended to it by hand, so that encoding/json,
// which keeps its buffers in a pool, never holds a large payload's copy.
type head struct {
	Time       time.Time `json:"time"`
	Target     string    `json:"target"`
	Rule       string    `json:"rule,omitempty"`
	DeliveryID string    `json:"delivery_id"`
	EventID    string    `json:"event_id,omitempty"`
	Source     string    `json:"source"`
	MessageID  string    `json:"message_id,omitempty"`
}

// Deliver writes the delivery as one line: the fields of head, then
// payload (for a dead letter the original body, as JSON when it is JSON,
// else as a string) and dead_letter. A write error is retryable.
func (s *Sink) Deliver(_ context.Context, d *router.Delivery) error {
	h := head{
		Time: s.now().UTC(), Target: s.name, Rule: d.Rule, DeliveryID: d.ID,
		Source: d.Message.Source, MessageID: d.Message.ID,
	}
	if d.Message.Event != nil {
		h.EventID = d.Message.Event.ID
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return router.PermanentError(fmt.Errorf("log %s: %w", s.name, err))
	}
	b := make([]byte, 0, len(hb)+len(d.Payload)+512)
	b = append(b, hb[:len(hb)-1]...) // without its '}'
	b = append(b, `,"payload":`...)
	if d.DeadLetter != nil {
		b = router.AppendBody(b, d.Payload)
		dl, err := json.Marshal(d.DeadLetter)
		if err != nil {
			return router.PermanentError(fmt.Errorf("log %s: %w", s.name, err))
		}
		b = append(b, `,"dead_letter":`...)
		b = append(b, dl...)
	} else {
		b = router.AppendCompact(b, router.JSONPayload(d))
	}
	b = append(b, "}\n"...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return router.RetryableError(fmt.Errorf("log %s: %w", s.name, err), 0)
	}
	return nil
}

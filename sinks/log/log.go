package log

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

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

// line is what the sink writes.
type line struct {
	Time       time.Time          `json:"time"`
	Target     string             `json:"target"`
	Rule       string             `json:"rule,omitempty"`
	DeliveryID string             `json:"delivery_id"`
	EventID    string             `json:"event_id,omitempty"`
	Source     string             `json:"source"`
	MessageID  string             `json:"message_id,omitempty"`
	Payload    json.RawMessage    `json:"payload"`
	DeadLetter *router.DeadLetter `json:"dead_letter,omitempty"`
}

// Deliver writes the delivery; a write error is retryable.
func (s *Sink) Deliver(_ context.Context, d *router.Delivery) error {
	l := line{
		Time: s.now().UTC(), Target: s.name, Rule: d.Rule, DeliveryID: d.ID,
		Source: d.Message.Source, MessageID: d.Message.ID, Payload: router.JSONPayload(d), DeadLetter: d.DeadLetter,
	}
	if d.DeadLetter != nil {
		l.Payload = d.Payload
		if !json.Valid(l.Payload) || !utf8.Valid(l.Payload) {
			l.Payload, _ = json.Marshal(string(d.Payload))
		}
	}
	if d.Message.Event != nil {
		l.EventID = d.Message.Event.ID
	}
	b, err := json.Marshal(l)
	if err != nil {
		return router.PermanentError(fmt.Errorf("log %s: %w", s.name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return router.RetryableError(fmt.Errorf("log %s: %w", s.name, err), 0)
	}
	return nil
}

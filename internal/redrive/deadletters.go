package redrive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// DeadLetters is the dead-letter sink of every target while redriving: a
// delivery that fails again goes back to where its dead letter came from
// (Writer), as a new dead letter with its attempts counted (those before
// and this run's), its first error and first attempt kept, and the rule
// and target of the delivery it is (even when sent elsewhere with --to).
// Its zero value is ready once Writer is set. It is safe for concurrent
// use.
type DeadLetters struct {
	// Writer writes dead letters to the place (its target, in its policy).
	Writer router.Sink

	mu      sync.Mutex
	pending map[*router.Message]*expected
}

// expected is a redriven delivery whose new dead letter may come.
type expected struct {
	deliveryID string
	orig       *router.DeadLetter
	wrote      *router.DeadLetter
}

var _ router.Sink = (*DeadLetters)(nil)

// Name is the place's target's ("redrive" before Writer is set).
func (s *DeadLetters) Name() string {
	if s.Writer == nil {
		return "redrive"
	}
	return s.Writer.Name()
}

// expect registers the delivery about to be redriven for message m.
func (s *DeadLetters) expect(m *router.Message, deliveryID string, orig *router.DeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[*router.Message]*expected{}
	}
	s.pending[m] = &expected{deliveryID: deliveryID, orig: orig}
}

// done forgets m's delivery, and returns the record of the dead letter
// written for it (nil when none was).
func (s *DeadLetters) done(m *router.Message) *router.DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.pending[m]
	delete(s.pending, m)
	if e == nil {
		return nil
	}
	return e.wrote
}

// errUnexpected is a dead letter of no delivery being redriven: a wiring
// bug.
var errUnexpected = errors.New("redrive: a dead letter of a delivery that is not being redriven")

// Deliver writes the dead letter of a redriven delivery that failed again.
// Its id is the delivery's with its attempts and the time of its last
// attempt, new for each dead letter written (the same for the writer's
// retries of it): the deduplication of a FIFO queue or a JetStream stream
// does not take it for the one it replaces, nor for another copy.
func (s *DeadLetters) Deliver(ctx context.Context, d *router.Delivery) error {
	s.mu.Lock()
	e := s.pending[d.Message]
	s.mu.Unlock()
	if e == nil || d.DeadLetter == nil {
		return router.PermanentError(errUnexpected)
	}
	rec := *d.DeadLetter
	if !e.orig.FirstAttempt.IsZero() {
		rec.FirstAttempt = e.orig.FirstAttempt
	}
	if e.orig.Target != "" {
		rec.Target = e.orig.Target
	}
	letter := *d
	letter.DeadLetter = &rec
	letter.Target = s.Writer.Name()
	letter.ID = router.DeliveryID(e.deliveryID, fmt.Sprintf("redrive/%d/%s", rec.Attempts, rec.LastAttempt.UTC().Format(time.RFC3339Nano)), s.Writer.Name())
	if err := s.Writer.Deliver(ctx, &letter); err != nil {
		return err
	}
	s.mu.Lock()
	e.wrote = &rec
	s.mu.Unlock()
	return nil
}

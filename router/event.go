package router

import (
	"errors"
	"time"
)

// Event is one event in EventBridge's envelope shape (version, id,
// detail-type, source, account, time, region, resources, detail). The
// router matches and renders from JSON; the header fields are copies for
// logs, ids and metrics. An Event is immutable once made.
type Event struct {
	// JSON is the whole event, a JSON object.
	JSON []byte
	// ID, Source and DetailType are the envelope's fields of those names,
	// empty when absent or not strings.
	ID, Source, DetailType string
	// Received is when switchyard received the event; templates see it as
	// <aws.events.event.ingestion-time>.
	Received time.Time
}

// ErrNotObject is returned for an event that is valid JSON but not an object.
var ErrNotObject = errors.New("an event must be a JSON object")

// ParseEvent checks that data is one JSON object as CheckJSON requires
// (UTF-8, no key twice) and returns it as an Event, received now. data is
// kept, not copied. The error is ErrNotObject, a *SyntaxError or a
// *DuplicateKeyError.
func ParseEvent(data []byte, now time.Time) (*Event, error) {
	ev := &Event{JSON: data, Received: now}
	c := newStrict(data)
	defer c.release()
	if c.s.peek() != '{' {
		if err := c.value(0); err != nil {
			return nil, c.fail(err)
		}
		if err := c.s.end(); err != nil {
			return nil, err
		}
		return nil, ErrNotObject
	}
	c.ev = ev
	if err := c.value(0); err != nil {
		return nil, c.fail(err)
	}
	if err := c.s.end(); err != nil {
		return nil, err
	}
	return ev, nil
}

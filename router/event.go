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

// ParseEvent checks that data is one JSON object and returns it as an
// Event, received now. data is kept, not copied.
func ParseEvent(data []byte, now time.Time) (*Event, error) {
	ev := &Event{JSON: data, Received: now}
	s := &scanner{data: data}
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return nil, err
		}
		return nil, ErrNotObject
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		return ev, s.end()
	}
	for {
		a, b, esc, err := s.key()
		if err != nil {
			return nil, err
		}
		var dst *string
		if !esc {
			switch string(data[a:b]) {
			case "id":
				dst = &ev.ID
			case "source":
				dst = &ev.Source
			case "detail-type":
				dst = &ev.DetailType
			}
		}
		if dst != nil && s.peek() == '"' {
			va, vb, vesc, err := s.str()
			if err != nil {
				return nil, err
			}
			*dst = decodeStr(data[va:vb], vesc)
		} else if err := s.skip(); err != nil {
			return nil, err
		}
		if more, err := s.next('}'); err != nil || !more {
			if err != nil {
				return nil, err
			}
			return ev, s.end()
		}
	}
}

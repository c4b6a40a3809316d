package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Origin describes where a payload came from, for events made by wrapping
// it.
type Origin struct {
	// Source is the source's name: the wrapped event's "source".
	Source string
	// DetailType is the wrapped event's "detail-type", such as SQS Message.
	DetailType string
	// ID is the message's id: the wrapped event's "id", so that a message
	// redelivered keeps its event id (and its deliveries their ids).
	ID string
	// Time is when the message was sent, if known; otherwise received.
	Time time.Time
	// Account and Region go to the event's fields of those names.
	Account, Region string
	// Resources are ARNs of where it came from (the queue).
	Resources []string
	// Attributes are message attributes, kept in the event's "attributes".
	Attributes map[string]string
}

// ErrMalformed is returned (wrapped) by Decode for a payload that does not
// fit the source's envelope.
var ErrMalformed = errors.New("malformed message")

// Decode turns a payload into an event according to env:
//
//   - eventbridge: the payload must be an EventBridge event, used as is.
//   - sns: the payload must be an SNS notification; its Message is then
//     decoded as with auto.
//   - raw: the payload is wrapped in a new event.
//   - auto: an EventBridge event is used as is, an SNS notification is
//     unwrapped, anything else is wrapped.
//
// A wrapped event has version "0", the origin's id, detail-type, source,
// account, time, region and resources, the payload as its detail (as JSON
// when it is JSON, else as a string), and the origin's attributes as
// "attributes". A payload that does not fit eventbridge or sns yields an
// error wrapping ErrMalformed; the event is not made.
func Decode(env Envelope, body []byte, o Origin, received time.Time) (*Event, error) {
	ev, err := decode(env, body, o, received)
	if err != nil {
		return nil, err
	}
	return ensureID(ev, o.ID), nil
}

// ensureID gives an event without an id (none, or one that is not a
// non-empty string) the origin's: every event needs one, since delivery ids
// (and the de-duplication built on them) derive from it. The id is written
// into the event's JSON, first, replacing any other "id".
func ensureID(ev *Event, id string) *Event {
	if ev.ID != "" || id == "" {
		return ev
	}
	quoted, _ := json.Marshal(id)
	out := make([]byte, 0, len(ev.JSON)+len(quoted)+8)
	out = append(out, `{"id":`...)
	out = append(out, quoted...)
	s := &scanner{data: ev.JSON}
	if s.peek() != '{' {
		return ev
	}
	s.pos++
	for s.peek() != '}' {
		start := s.pos
		a, b, esc, err := s.key()
		if err != nil {
			return ev
		}
		if err := s.skip(); err != nil {
			return ev
		}
		if esc || string(ev.JSON[a:b]) != "id" {
			out = append(out, ',')
			out = append(out, ev.JSON[start:s.pos]...)
		}
		if more, err := s.next('}'); err != nil {
			return ev
		} else if !more {
			break
		}
		s.peek()
	}
	out = append(out, '}')
	return &Event{JSON: out, ID: id, Source: ev.Source, DetailType: ev.DetailType, Received: ev.Received}
}

// hasKey reports whether the object body has key at its top level.
func hasKey(body []byte, key string) bool {
	found := false
	(&jsonPath{steps: []pathStep{{kind: stepKey, key: key}}}).eval(body, func(a, b int) bool {
		found = true
		return false
	})
	return found
}

func decode(env Envelope, body []byte, o Origin, received time.Time) (*Event, error) {
	if env == EnvelopeRaw {
		return wrap(body, CheckJSON(body) == nil, o, received), nil
	}
	// One strict reading says what the body is: an object (ev), other JSON
	// (ErrNotObject), or not JSON as events must be (invalid UTF-8, a key
	// twice, bad syntax), which is wrapped as a string or is malformed.
	ev, err := ParseEvent(body, received)
	isJSON := err == nil || errors.Is(err, ErrNotObject)
	switch env {
	case EnvelopeEventBridge:
		if err == nil && isEventBridge(ev) {
			return ev, nil
		}
		if !isJSON {
			return nil, fmt.Errorf("%w: not an EventBridge event: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: not an EventBridge event (a JSON object with source, detail-type and detail)", ErrMalformed)
	case EnvelopeSNS:
		if err == nil {
			if ev, ok := unwrapSNS(body, o, received); ok {
				return ev, nil
			}
		}
		if !isJSON {
			return nil, fmt.Errorf("%w: not an SNS notification: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: not an SNS notification (a JSON object with Type Notification, TopicArn and Message)", ErrMalformed)
	}
	if err == nil {
		if isEventBridge(ev) {
			return ev, nil
		}
		if ev, ok := unwrapSNS(body, o, received); ok {
			return ev, nil
		}
	}
	return wrap(body, isJSON, o, received), nil
}

// isEventBridge reports whether an event read by ParseEvent has what an
// EventBridge event has: a source, a detail-type and a detail.
func isEventBridge(ev *Event) bool {
	return ev.Source != "" && ev.DetailType != "" && hasKey(ev.JSON, "detail")
}

// unwrapSNS decodes an SNS notification, as SNS delivers it to SQS without
// raw message delivery. body must be a JSON object as ParseEvent accepts
// it. Only the notification's fields are decoded: a large body that is
// not one costs one pass over its top level.
func unwrapSNS(body []byte, o Origin, received time.Time) (*Event, bool) {
	var typ, msg, topic, id, ts *string
	var attrs []byte
	s := &scanner{data: body}
	s.peek()
	s.pos++ // '{'
	for s.peek() != '}' {
		a, b, esc, err := s.key()
		if err != nil {
			return nil, false
		}
		var dst **string
		switch decodeStr(body[a:b], esc) {
		case "Type":
			dst = &typ
		case "Message":
			dst = &msg
		case "TopicArn":
			dst = &topic
		case "MessageId":
			dst = &id
		case "Timestamp":
			dst = &ts
		case "MessageAttributes":
			start := s.pos
			if s.skip() != nil {
				return nil, false
			}
			attrs = body[start:s.pos]
		}
		if dst != nil && s.peek() == '"' {
			va, vb, vesc, err := s.str()
			if err != nil {
				return nil, false
			}
			v := decodeStr(body[va:vb], vesc)
			*dst = &v
		} else if dst != nil && s.skip() != nil {
			return nil, false
		}
		if more, err := s.next('}'); err != nil {
			return nil, false
		} else if !more {
			break
		}
	}
	if typ == nil || *typ != "Notification" || msg == nil || topic == nil {
		return nil, false
	}
	inner := []byte(*msg)
	ev, err := ParseEvent(inner, received)
	if err == nil && isEventBridge(ev) {
		return ev, true
	}
	w := o
	w.DetailType = "SNS Notification"
	w.Resources = []string{*topic}
	if id != nil {
		w.ID = *id
	}
	if ts != nil {
		if t, err := time.Parse(time.RFC3339Nano, *ts); err == nil {
			w.Time = t
		}
	}
	if v, err := parseJSON(attrs); err == nil && v.kind == jObj {
		w.Attributes = map[string]string{}
		for i, k := range v.keys {
			a := v.vals[i]
			if a.kind != jObj {
				continue
			}
			for j, ak := range a.keys {
				if ak == "Value" && a.vals[j].kind == jStr {
					w.Attributes[k] = a.vals[j].s
				}
			}
		}
	}
	return wrap(inner, err == nil || errors.Is(err, ErrNotObject), w, received), true
}

// wrap makes a new event around a payload: its detail is the payload as
// JSON when isJSON (it is JSON as CheckJSON requires), else as a string,
// with any byte that is not UTF-8 replaced by U+FFFD.
func wrap(body []byte, isJSON bool, o Origin, received time.Time) *Event {
	t := o.Time
	if t.IsZero() {
		t = received
	}
	b := make([]byte, 0, len(body)+256)
	b = append(b, `{"version":"0","id":`...)
	b = appendQuoted(b, o.ID)
	b = append(b, `,"detail-type":`...)
	b = appendQuoted(b, o.DetailType)
	b = append(b, `,"source":`...)
	b = appendQuoted(b, o.Source)
	b = append(b, `,"account":`...)
	b = appendQuoted(b, o.Account)
	b = append(b, `,"time":`...)
	b = appendQuoted(b, t.UTC().Format(time.RFC3339))
	b = append(b, `,"region":`...)
	b = appendQuoted(b, o.Region)
	b = append(b, `,"resources":[`...)
	for i, r := range o.Resources {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, r)
	}
	b = append(b, `],"detail":`...)
	if isJSON {
		b = appendCompact(b, body)
	} else {
		b = appendQuoted(b, string(body))
	}
	if len(o.Attributes) > 0 {
		b = append(b, `,"attributes":{`...)
		for i, k := range slices.Sorted(maps.Keys(o.Attributes)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, k)
			b = append(b, ':')
			b = appendQuoted(b, o.Attributes[k])
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	return &Event{JSON: b, ID: o.ID, Source: o.Source, DetailType: o.DetailType, Received: received}
}

// Malformed payloads: what a source does with a body that does not fit its
// envelope.
const (
	// MalformedWrap wraps the body as it is, as the raw envelope does.
	MalformedWrap = "wrap"
	// MalformedDeadLetter sends the message to the source's dead-letter
	// target instead of routing it.
	MalformedDeadLetter = "dead_letter"
)

// DecodeOrWrap decodes body as Decode does; a body that does not fit env is
// wrapped as it is, and the misfit returned alongside the event, for the
// source to dead-letter or log.
func DecodeOrWrap(env Envelope, body []byte, o Origin, received time.Time) (*Event, error) {
	ev, err := Decode(env, body, o, received)
	if err != nil {
		return wrap(body, CheckJSON(body) == nil, o, received), err
	}
	return ev, nil
}

// DecodeMessage sets m.Event from m.Body as Decode does. A body that does
// not fit env is wrapped as it is; with malformed dead_letter m.Malformed
// says why (and the dispatcher dead-letters the message), otherwise the
// misfit is logged (log nil: not logged). It returns the misfit, or nil.
func DecodeMessage(m *Message, env Envelope, malformed string, o Origin, log *slog.Logger) error {
	ev, err := DecodeOrWrap(env, m.Body, o, m.Received)
	m.Event = ev
	if err != nil {
		if malformed == MalformedDeadLetter {
			m.Malformed = err
		} else if log != nil {
			log.Warn("message does not fit the envelope: wrapped as it is", MessageIDs(m), "envelope", env, "error", err)
		}
	}
	return err
}

// CheckMalformed validates a source's `malformed` and `dead_letter` keys
// against its envelope.
func CheckMalformed(env Envelope, malformed, deadLetter string) error {
	switch malformed {
	case MalformedWrap:
		return nil
	case MalformedDeadLetter:
		var errs []error
		if deadLetter == "" {
			errs = append(errs, Fieldf("dead_letter", "required with malformed: dead_letter (the target that receives malformed bodies)"))
		}
		if env == EnvelopeRaw || env == EnvelopeAuto {
			errs = append(errs, Fieldf("malformed", "with envelope %s nothing is malformed; dead_letter needs envelope eventbridge or sns", env))
		}
		return errors.Join(errs...)
	}
	return Fieldf("malformed", "unknown value %q (valid: wrap, dead_letter)", malformed)
}

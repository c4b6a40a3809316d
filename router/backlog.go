package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Backlog is a target's durable store for the deliveries it cannot take
// now (its circuit breaker is open, or too many of its deliveries wait):
// the target's policy pushes them there, which frees their messages to be
// acked, and the dispatcher drains them back into that target alone, under
// its policy. A JetStream stream or an SQS queue; implementations are safe
// for concurrent use.
type Backlog interface {
	// Push stores d (EncodeEntry); nil means it is stored durably and will
	// come back through the Source.
	Push(ctx context.Context, d *Delivery) error
	// Source hands stored deliveries back: each message's Body is an
	// entry (DecodeEntry); acking it removes it, nacking it brings it back
	// after the delay. Messages need no event.
	Source
	// String names the backlog for logs: its kind and where it is.
	String() string
}

// BacklogDepth is implemented by backlogs that can say what they hold.
type BacklogDepth interface {
	// Depth returns how many deliveries the backlog holds and when the
	// oldest of them was stored (zero when empty or unknown).
	Depth(ctx context.Context) (n int64, oldest time.Time, err error)
}

// Room is implemented by sinks (policies) that can say how many more
// deliveries they can start now without waiting: none while the circuit
// breaker is open. The dispatcher drains a backlog only into that room.
type Room interface {
	Room() int
}

// roomOf finds a Room along a chain of wrapped sinks (Unwrap).
func roomOf(s Sink) (Room, bool) {
	for s != nil {
		if r, ok := s.(Room); ok {
			return r, true
		}
		u, ok := s.(interface{ Unwrap() Sink })
		if !ok {
			return nil, false
		}
		s = u.Unwrap()
	}
	return nil, false
}

// entryVersion is the version of EncodeEntry's format. An entry of
// another version is not decoded (ErrEntryVersion): it waits for a
// switchyard that reads it.
const entryVersion = 1

// ErrEntryVersion is returned by DecodeEntry for an entry written by a
// newer switchyard.
var ErrEntryVersion = errors.New("backlog entry of an unknown version")

// entry is a delivery stored in a backlog: JSON, with a version first.
type entry struct {
	V            int         `json:"v"`
	ID           string      `json:"id"`
	Rule         string      `json:"rule,omitempty"`
	Target       string      `json:"target"`
	Payload      blob        `json:"payload"`
	Text         bool        `json:"text,omitempty"`
	Whole        bool        `json:"whole,omitempty"`
	Attempts     int         `json:"attempts,omitempty"`
	Failures     int         `json:"failures,omitempty"`
	FirstAttempt time.Time   `json:"first_attempt"`
	FirstError   string      `json:"first_error,omitempty"`
	LastError    string      `json:"last_error,omitempty"`
	Generation   int         `json:"generation,omitempty"`
	Stored       time.Time   `json:"stored"`
	TraceParent  string      `json:"traceparent,omitempty"`
	TraceState   string      `json:"tracestate,omitempty"`
	XRay         string      `json:"xray,omitempty"`
	DeadLetter   *DeadLetter `json:"dead_letter,omitempty"`
	Message      entryMsg    `json:"message"`
}

type entryMsg struct {
	Source  string `json:"source"`
	ID      string `json:"id"`
	EventID string `json:"event_id,omitempty"`
	// Body is the message's body; nil when it is the payload.
	Body       *blob                `json:"body,omitempty"`
	Attributes map[string]string    `json:"attributes,omitempty"`
	Typed      map[string]Attribute `json:"typed_attributes,omitempty"`
	System     map[string]string    `json:"system,omitempty"`
	Received   time.Time            `json:"received"`
}

// blob is bytes in JSON: {"json": value} when they are JSON, {"text":
// "..."} when they are UTF-8 text, else {"base64": "..."}. The JSON form
// keeps a payload as it is, unescaped.
type blob []byte

type blobJSON struct {
	JSON   json.RawMessage `json:"json,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Base64 []byte          `json:"base64,omitempty"`
}

func (b blob) MarshalJSON() ([]byte, error) {
	switch {
	case embeddable(b):
		return json.Marshal(blobJSON{JSON: json.RawMessage(b)})
	case utf8.Valid(b):
		s := string(b)
		return json.Marshal(blobJSON{Text: &s})
	}
	return json.Marshal(blobJSON{Base64: b})
}

// embeddable reports whether b can stand in the entry as JSON and come
// back byte for byte: encoding/json compacts a RawMessage and escapes <, >,
// &, U+2028 and U+2029 in it, so only JSON that is already compact and free
// of those can.
func embeddable(b []byte) bool {
	if len(b) == 0 || !json.Valid(b) || bytes.ContainsAny(b, "<>&\u2028\u2029") {
		return false
	}
	var c bytes.Buffer
	return json.Compact(&c, b) == nil && bytes.Equal(c.Bytes(), b)
}

func (b *blob) UnmarshalJSON(data []byte) error {
	var v blobJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch {
	case v.JSON != nil:
		*b = append(blob(nil), v.JSON...)
	case v.Text != nil:
		*b = blob(*v.Text)
	default:
		*b = blob(v.Base64)
	}
	return nil
}

// EncodeEntry encodes a delivery for a backlog: everything a target and
// its dead letter need, and where its attempts stand. The encoding is
// JSON text (SQS bodies must be text).
func EncodeEntry(d *Delivery) []byte {
	m := d.Message
	if m == nil {
		m = &Message{}
	}
	e := entry{
		V: entryVersion, ID: d.ID, Rule: d.Rule, Target: d.Target, Payload: d.Payload, Text: d.Text, Whole: d.Whole,
		Attempts: d.Attempt, Failures: d.Failures, FirstAttempt: d.FirstAttempt.UTC(), Generation: d.Generation,
		Stored: time.Now().UTC(), DeadLetter: d.DeadLetter,
		TraceParent: m.Trace.TraceParent, TraceState: m.Trace.TraceState, XRay: m.Trace.XRay,
		Message: entryMsg{Source: m.Source, ID: m.ID, Attributes: m.Attributes, Typed: m.TypedAttributes, System: m.System, Received: m.Received.UTC()},
	}
	if m.Event != nil {
		e.Message.EventID = m.Event.ID
	}
	if string(m.Body) != string(d.Payload) {
		body := blob(m.Body)
		e.Message.Body = &body
	}
	if d.FirstErr != nil {
		e.FirstError = d.FirstErr.Error()
	}
	if d.LastErr != nil {
		e.LastError = d.LastErr.Error()
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("backlog entry does not encode: %v", err)) // every field is plain data
	}
	return b
}

// DecodeEntry decodes a backlog entry into a delivery and the message it
// came from (without a handle: the entry's message settles it). The
// delivery is marked Drained.
func DecodeEntry(b []byte) (*Delivery, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("backlog entry: %w", err)
	}
	if e.V != entryVersion {
		return nil, fmt.Errorf("%w: version %d (this switchyard reads %d)", ErrEntryVersion, e.V, entryVersion)
	}
	if e.ID == "" || e.Target == "" {
		return nil, errors.New("backlog entry: no delivery id or target")
	}
	m := &Message{
		Source: e.Message.Source, ID: e.Message.ID, Body: e.Payload, Attributes: e.Message.Attributes, TypedAttributes: e.Message.Typed,
		System: e.Message.System, Received: e.Message.Received, Redelivered: true,
		Trace: TraceContext{TraceParent: e.TraceParent, TraceState: e.TraceState, XRay: e.XRay},
		Event: &Event{ID: e.Message.EventID, Received: e.Message.Received},
	}
	if e.Message.Body != nil {
		m.Body = *e.Message.Body
	}
	if e.Whole {
		m.Event.JSON = e.Payload
	}
	d := &Delivery{
		ID: e.ID, Message: m, Rule: e.Rule, Target: e.Target, Payload: e.Payload, Text: e.Text, Whole: e.Whole,
		Attempt: e.Attempts, Failures: e.Failures, FirstAttempt: e.FirstAttempt, Generation: e.Generation,
		DeadLetter: e.DeadLetter, Drained: true, recordedGen: e.Generation,
	}
	if e.FirstError != "" {
		d.FirstErr = errors.New(e.FirstError)
	}
	if e.LastError != "" {
		d.LastErr = errors.New(e.LastError)
	}
	return d, nil
}

// BacklogStats are one backlog's counters, safe to read at any time.
type BacklogStats struct {
	// Drained counts the deliveries taken out of the backlog and resolved
	// (or put back); Returned those that came back unresolved (nacked).
	Drained, Returned atomic.Int64
	// Corrupt counts entries that could not be decoded.
	Corrupt atomic.Int64
	// InFlight is how many drained deliveries are being delivered now.
	InFlight atomic.Int64
}

// drainPoll is how often a drain whose target has no room looks again.
const drainPoll = 100 * time.Millisecond

// drain runs a target's backlog until ctx ends: while the target has room
// (Room: not while its breaker is open, nor beyond its concurrency), it
// receives stored deliveries and hands each to that target alone. An entry
// is acked once its delivery resolved (or was put back in the backlog,
// with its attempts), and nacked to come back otherwise.
func (d *Dispatcher) drain(ctx, work context.Context, target string, b Backlog, st *BacklogStats) {
	// held counts the entries received and not yet handed to the target:
	// once handed, a delivery counts in the target's Room itself.
	var held atomic.Int64
	for ctx.Err() == nil {
		r := d.acquire()
		sink := r.Sinks[target]
		r.active.Done()
		want := 0
		if room, ok := roomOf(sink); ok {
			want = room.Room()
		} else if sink != nil {
			want = 1
		}
		want = min(want-int(held.Load()), 10)
		if want <= 0 {
			if sleepCtx(ctx, drainPoll) != nil {
				return
			}
			continue
		}
		msgs, err := b.Receive(ctx, want)
		if err != nil && len(msgs) == 0 {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("backlog receive failed", "target", target, "backlog", b.String(), "error", err)
			if sleepCtx(ctx, time.Second) != nil {
				return
			}
			continue
		}
		for _, m := range msgs {
			held.Add(1)
			st.InFlight.Add(1)
			d.drains.Go(func() {
				defer st.InFlight.Add(-1)
				handed := sync.OnceFunc(func() { held.Add(-1) })
				defer handed()
				d.drainOne(work, target, m, st, handed)
			})
		}
	}
}

// drainOne delivers one backlog entry and settles it; handed is called as
// the delivery is handed to the target.
func (d *Dispatcher) drainOne(ctx context.Context, target string, m *Message, st *BacklogStats, handed func()) {
	del, err := DecodeEntry(m.Body)
	if err == nil && del.Target != target {
		err = fmt.Errorf("backlog entry for target %s in the backlog of %s", del.Target, target)
	}
	if err != nil {
		// Kept, not dropped: it may be a newer switchyard's, or an
		// operator can move it.
		st.Corrupt.Add(1)
		d.log.Error("backlog entry cannot be read: it stays in the backlog", "target", target, "message_id", m.ID, "error", err)
		d.settleEntry(m, false, time.Hour)
		return
	}
	del.Ledger = d.cfg.Ledger
	// Always asked: an entry may be a second copy of one that was
	// delivered (a push whose answer was lost was pushed again), and
	// draining is not the hot path.
	if d.cfg.Ledger != nil {
		if rec, found := d.cfg.Ledger.Get(ctx, del.ID); found && rec.Matches(del) {
			if rec.State.Resolved() {
				d.cfg.Ledger.stats.hit(del.Target)
				d.settleEntry(m, true, 0)
				return
			}
			del.restore(Record{Attempts: del.Attempt, Failures: del.Failures, FirstAttempt: del.FirstAttempt, Generation: del.Generation}.Merge(rec))
		}
	}
	r := d.acquire()
	sink := r.Sinks[target]
	if sink == nil {
		r.active.Done()
		d.log.Warn("backlog of a target that is gone: its entries wait", "target", target)
		d.settleEntry(m, false, d.cfg.RetryLater)
		return
	}
	handed()
	err = sink.Deliver(ctx, del)
	r.active.Done()
	if err == nil {
		if del.State == Pending {
			del.State = Delivered
		}
		if del.State != Backlogged {
			// Drained deliveries are recorded: an entry whose ack is lost
			// comes back, and must not be delivered again.
			del.Record(ctx, del.State)
		}
		st.Drained.Add(1)
		d.settleEntry(m, true, 0)
		return
	}
	st.Returned.Add(1)
	del.Record(ctx, Pending)
	later := RetryAfterOf(err)
	if ctx.Err() != nil {
		later = 0
	} else if later == 0 {
		later = d.cfg.RetryLater
	}
	d.settleEntry(m, false, later)
}

// settleEntry acks or nacks a backlog entry, bounded as messages are.
func (d *Dispatcher) settleEntry(m *Message, ack bool, after time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var err error
	if ack {
		err = m.Handle.Ack(ctx)
	} else {
		err = m.Handle.Nack(ctx, after)
	}
	if err != nil {
		d.stats.SettleErrors.Add(1)
		d.log.Warn("settling a backlog entry failed: it comes back", "message_id", m.ID, "ack", ack, "error", err)
	}
}

// sleepCtx waits for d or ctx.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

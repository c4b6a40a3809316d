package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Source hands out messages. The dispatcher calls Receive only when it has
// room for them, so a source never buffers more than it was asked for.
type Source interface {
	// Name is the source's name in the config.
	Name() string
	// Receive blocks until at least one message is available or ctx ends,
	// and returns at most max messages. A nil error with no messages is
	// allowed (a poll that found nothing). It is safe to call from several
	// goroutines.
	Receive(ctx context.Context, max int) ([]*Message, error)
	// Close stops the source within ctx: pending Receive calls return, and
	// messages handed out but not settled are left to come back (SQS
	// visibility). It is idempotent.
	Close(ctx context.Context) error
}

// Message is one message a source received: the event it carries and the
// handle that settles it.
type Message struct {
	// Event is the message as an EventBridge event.
	Event *Event
	// Handle acks or nacks the message at its source.
	Handle Handle
	// Source is the name of the source that received it.
	Source string
	// ID is the source's own id for the message (an SQS MessageId).
	ID string
	// Group orders messages: the dispatcher processes messages with the
	// same non-empty Group one at a time, in the order it received them
	// (an SQS FIFO MessageGroupId).
	Group string
	// Body is the message as received, for dead letters.
	Body []byte
	// Attributes are the message's attributes (SQS message attributes of
	// type String or Number, NATS headers), for dead letters.
	Attributes map[string]string
	// TypedAttributes are the message's attributes as they came, with
	// their types (every SQS message attribute, Binary ones included), for
	// targets that carry types (SQS dead letters, Lambda batch records).
	// Nil when the source has no types: Attributes are then all Strings.
	TypedAttributes map[string]Attribute
	// System are the source's own attributes of the message (for SQS its
	// system attributes, such as ApproximateReceiveCount and SentTimestamp,
	// and QueueArn and Region).
	System map[string]string
	// Received is when switchyard received it.
	Received time.Time
	// Trace is the trace context the message arrived with (an SQS
	// AWSTraceHeader, HTTP or NATS traceparent headers); zero when none.
	Trace TraceContext
	// Reserved is the bytes the source took from the dispatcher's byte
	// budget for the message before handing it out (see BytesUser), which
	// the dispatcher releases once the message is settled. Zero: the
	// dispatcher charges the body's length itself when it receives it.
	Reserved int64
	// Malformed is set when the body did not fit the source's envelope and
	// the source dead-letters such bodies: the dispatcher sends the message
	// to the source's dead-letter target instead of routing it.
	Malformed error
	// Redelivered is set when the source may have handed the message out
	// before (an SQS ApproximateReceiveCount above 1, a JetStream
	// redelivery, an HTTP request that may be a caller's retry): only then
	// does the dispatcher look its deliveries up in the ledger. A source
	// that cannot tell sets it.
	Redelivered bool
}

// Attribute is a typed message attribute, as SQS has them.
type Attribute struct {
	// DataType is String, Number or Binary, optionally followed by a
	// custom label after a dot (Number.int, Binary.png).
	DataType string
	// StringValue holds a String or Number value, BinaryValue a Binary one.
	StringValue string
	BinaryValue []byte
}

// IsBinary reports whether the attribute's type is Binary (with or without
// a label).
func (a Attribute) IsBinary() bool {
	return a.DataType == "Binary" || strings.HasPrefix(a.DataType, "Binary.")
}

// MessageAttributes returns m's attributes with their types:
// TypedAttributes when the source set them, else Attributes as Strings.
func (m *Message) MessageAttributes() map[string]Attribute {
	if m.TypedAttributes != nil || len(m.Attributes) == 0 {
		return m.TypedAttributes
	}
	out := make(map[string]Attribute, len(m.Attributes))
	for k, v := range m.Attributes {
		out[k] = Attribute{DataType: "String", StringValue: v}
	}
	return out
}

// Handle settles a message at its source. Ack and Nack are idempotent and
// the first of them wins; both are safe for concurrent use.
type Handle interface {
	// Ack removes the message for good: every delivery it produced has
	// resolved.
	Ack(ctx context.Context) error
	// Nack returns the message to its source, to be received again after
	// redeliverAfter (0 means as soon as possible).
	Nack(ctx context.Context, redeliverAfter time.Duration) error
	// Extend keeps the message from being redelivered for at least by more,
	// while its deliveries are still running.
	Extend(ctx context.Context, by time.Duration) error
}

// Sink performs a delivery: one call to a Lambda function, one RunTask,
// one POST. Sinks are safe for concurrent use.
type Sink interface {
	// Name is the target's name in the config.
	Name() string
	// Deliver makes one attempt. It returns nil on success, or an error
	// whose Class (see ClassOf) says whether and how to try again.
	Deliver(ctx context.Context, d *Delivery) error
}

// BatchSink is a Sink that can also deliver several deliveries in one call.
type BatchSink interface {
	Sink
	// DeliverBatch returns one error (or nil) per delivery, in order.
	DeliverBatch(ctx context.Context, ds []*Delivery) []error
}

// Drainer is implemented by sources that have work pushed to them (an HTTP
// listener): the dispatcher calls Drain once it stops receiving, so that
// they turn new work away at once instead of waiting to hand it off.
type Drainer interface {
	Drain()
}

// Closer is implemented by sinks and sources that hold resources.
type Closer interface {
	Close(ctx context.Context) error
}

// Delivery is one event on its way to one target, by one rule.
type Delivery struct {
	// ID is stable for (event, rule, target), across redeliveries of the
	// same message and restarts: receivers can use it to drop duplicates.
	ID string
	// Message is the source message the delivery came from.
	Message *Message
	// Rule and Target name the rule that matched and the target.
	Rule, Target string
	// Payload is what the target receives: the rendered input, or the
	// whole event.
	Payload []byte
	// Text is true when Payload is text rather than JSON (the rule's
	// template is not JSON).
	Text bool
	// Whole is true when Payload is the whole event (the rule has no
	// input transformer).
	Whole bool
	// Attempt is the number of the attempt being made, from 1: the calls
	// made so far, in this process and (through the ledger or a backlog)
	// before it.
	Attempt int
	// Failures counts the failed attempts that count against
	// retry.attempts (throttles do not).
	Failures int
	// FirstAttempt is when the first attempt started.
	FirstAttempt time.Time
	// FirstErr and LastErr are the first and the latest failures.
	FirstErr, LastErr error
	// Generation is bumped by a sink when an attempt definitely had no
	// effect and the next one must not be taken as its retry (a RunTask
	// that launched nothing gets a fresh clientToken).
	Generation int
	// Trace is the trace context sinks send with the delivery when it is
	// not zero: the delivery span's, set by the tracer. Sinks read it
	// through OutboundTrace.
	Trace TraceContext
	// DeadLetter is set on a delivery to a dead-letter target: why the
	// original delivery failed for good. Its Payload is the original
	// message's body.
	DeadLetter *DeadLetter
	// State is set by the policy when Deliver returns nil: Delivered,
	// DeadLettered, or Backlogged (moved to the target's backlog, which
	// delivers it). Pending after a nil error means Delivered (a sink with
	// no policy).
	State State
	// Drained is set on a delivery that came out of its target's backlog.
	Drained bool
	// Ledger is where Record writes the delivery's state (set by the
	// dispatcher); nil means no ledger.
	Ledger *LedgerGuard

	recordedGen int // the generation last recorded
}

// OutboundTrace is the trace context a sink sends with the delivery:
// d.Trace when the tracer set it (tracing on), otherwise the message's,
// passed through unchanged (tracing off). Zero means send none.
func (d *Delivery) OutboundTrace() TraceContext {
	if !d.Trace.IsZero() || d.Message == nil {
		return d.Trace
	}
	return d.Message.Trace
}

// DeadLetter is the record of a delivery that failed for good.
type DeadLetter struct {
	Source       string            `json:"source"`
	MessageID    string            `json:"message_id"`
	Rule         string            `json:"rule,omitempty"`
	Target       string            `json:"target,omitempty"`
	Attempts     int               `json:"attempts"`
	FirstError   string            `json:"first_error,omitempty"`
	LastError    string            `json:"last_error,omitempty"`
	FirstAttempt time.Time         `json:"first_attempt"`
	LastAttempt  time.Time         `json:"last_attempt"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// DeliveryID derives a delivery's stable id from the event id, the rule
// and the target: 32 hex characters, usable as an ECS clientToken.
func DeliveryID(eventID, rule, target string) string {
	h := sha256.New()
	for _, s := range []string{eventID, rule, target} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Class says how a failed attempt may be retried.
type Class uint8

const (
	// Retryable failures may succeed if tried again (5xx, resets,
	// timeouts, and anything unclassified).
	Retryable Class = iota
	// Throttled failures are the target asking for less traffic: try again
	// later, and do not count them against its health.
	Throttled
	// Permanent failures will fail again however often they are tried (a
	// 400 for a bad payload, a missing function): dead-letter them at once.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	}
	return "retryable"
}

// DeliveryError is a classified delivery failure.
type DeliveryError struct {
	Class Class
	// RetryAfter is the target's hint of when to try again, if it gave one.
	RetryAfter time.Duration
	Err        error
}

func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return e.Class.String()
	}
	return e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// ClassOf returns the class of a delivery error: the Class of a
// *DeliveryError in its chain, Retryable for any other error.
func ClassOf(err error) Class {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Class
	}
	return Retryable
}

// RetryAfterOf returns the retry hint of a delivery error, or 0.
func RetryAfterOf(err error) time.Duration {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.RetryAfter
	}
	return 0
}

// Permanent classifies err as permanent.
func PermanentError(err error) error { return &DeliveryError{Class: Permanent, Err: err} }

// ThrottledError classifies err as a throttle, with the target's hint.
func ThrottledError(err error, retryAfter time.Duration) error {
	return &DeliveryError{Class: Throttled, RetryAfter: retryAfter, Err: err}
}

// RetryableError classifies err as retryable, with a hint if any.
func RetryableError(err error, retryAfter time.Duration) error {
	return &DeliveryError{Class: Retryable, RetryAfter: retryAfter, Err: err}
}

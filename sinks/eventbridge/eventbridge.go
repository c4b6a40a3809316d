package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/batch"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the EventBridge client the sink uses;
// *eventbridge.Client has it. The client should not retry
// (aws.NopRetryer): the policy does.
type API interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// PutEvents limits: at most MaxEntries entries a call, whose sizes (as
// EntrySize counts them) add up to at most MaxSize bytes; an entry larger
// than MaxSize can never be put.
const (
	MaxEntries = 10
	MaxSize    = 256 * 1024
)

// Defaults of a dead letter's event, when the target sets no source or
// detail_type: a dead letter is switchyard's record of a failure, not the
// original event.
const (
	DeadLetterSource     = "switchyard"
	DeadLetterDetailType = "Switchyard Dead Letter"
)

// Sink puts each delivery on an event bus as one event, gathering the
// deliveries that arrive together into PutEvents calls of up to MaxEntries
// entries and MaxSize bytes. Each delivery gets its own entry's result: a
// partial failure fails only the entries EventBridge refused. It is safe
// for concurrent use.
//
// PutEvents has no idempotency token: a call whose outcome is unknown (a
// timeout, a 5xx, a reset) is retried, and may put an event twice, with
// two event ids.
type Sink struct {
	name string
	cfg  Config
	api  API

	batch *batch.Batcher[*pending]
}

// New returns a sink for cfg (defaults applied). It starts nothing: the
// first Deliver starts the goroutine that gathers batches, and Close sends
// what is still waiting.
func New(name string, cfg Config, api API) *Sink {
	s := &Sink{name: name, cfg: cfg, api: api}
	// An entry whose attempt has ended is not sent: its delivery was told
	// so, and sending it now could put the event twice.
	s.batch = batch.New(batch.Config{MaxItems: MaxEntries, MaxBytes: MaxSize, DropEnded: true}, s.put)
	return s
}

var (
	_ router.BatchSink = (*Sink)(nil)
	_ router.Closer    = (*Sink)(nil)
)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// pending is a delivery's entry, waiting for its call.
type pending struct {
	d    *router.Delivery
	e    types.PutEventsRequestEntry
	size int
}

// Deliver puts the delivery on the bus as one event, in a call it may share
// with other deliveries arriving at the same time, and returns its entry's
// outcome. The event:
//   - Detail: the rendered payload, which must be a JSON object; with no
//     input transformer (the whole event), the event's detail, as
//     EventBridge forwards an event to a bus; a dead letter,
//     router.DeadLetterDocument;
//   - Source, DetailType, Resources: the target's, else the event's (a
//     dead letter's: DeadLetterSource, DeadLetterDetailType, none);
//   - Time: the event's time, when it has one;
//   - TraceHeader: the delivery's trace context in X-Ray form.
//
// An entry that can never be put (no JSON object, over MaxSize, no source
// or detail-type) fails permanently without a call. Throttles, per entry
// or for the call, are Throttled; InternalFailure and 5xx Retryable; the
// rest Permanent.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	p, err := s.newPending(d)
	if err != nil {
		return err
	}
	err = s.batch.Do(ctx, p, p.size, "")
	if errors.Is(err, batch.ErrClosed) {
		return router.RetryableError(fmt.Errorf("eventbridge %s: %w", s.name, err), 0)
	}
	return err
}

// DeliverBatch puts the deliveries in as few calls as the limits allow,
// one after the other, and returns each one's outcome, in order (see
// Deliver). It does not wait for deliveries gathered by Deliver.
func (s *Sink) DeliverBatch(ctx context.Context, ds []*router.Delivery) []error {
	errs := make([]error, len(ds))
	var batch []*pending
	index := map[*pending]int{}
	size := 0
	send := func() {
		if len(batch) == 0 {
			return
		}
		for i, err := range s.put(ctx, batch) {
			errs[index[batch[i]]] = err
		}
		batch, size = nil, 0
	}
	for i, d := range ds {
		p, err := s.newPending(d)
		if err != nil {
			errs[i] = err
			continue
		}
		if len(batch) == MaxEntries || size+p.size > MaxSize {
			send()
		}
		index[p] = i
		batch = append(batch, p)
		size += p.size
	}
	send()
	return errs
}

// envelope holds the fields of an event an entry takes.
type envelope struct {
	Time      json.RawMessage `json:"time"`
	Resources json.RawMessage `json:"resources"`
	Detail    json.RawMessage `json:"detail"`
}

// newPending makes the delivery's entry, or says why it can never be put.
func (s *Sink) newPending(d *router.Delivery) (*pending, error) {
	var env envelope
	var ev *router.Event
	if d.Message != nil && d.Message.Event != nil {
		ev = d.Message.Event
		// A parsed event is a JSON object; a field of another type than
		// the envelope's is left out below.
		_ = json.Unmarshal(ev.JSON, &env)
	}
	e := types.PutEventsRequestEntry{EventBusName: aws.String(s.cfg.Bus)}
	var detail []byte
	switch {
	case d.DeadLetter != nil:
		detail = router.DeadLetterDocument(d)
		e.Source, e.DetailType = aws.String(cmpOr(s.cfg.Source, DeadLetterSource)), aws.String(cmpOr(s.cfg.DetailType, DeadLetterDetailType))
		e.Resources = s.cfg.Resources
	default:
		if d.Whole {
			if len(env.Detail) == 0 {
				return nil, s.permanent("the event has no detail, which PutEvents requires (give the rule an input that renders a JSON object)")
			}
			if k := kind(env.Detail); k != "" {
				return nil, s.permanent("the event's detail is %s, not the JSON object PutEvents takes as Detail (give the rule an input that renders one)", k)
			}
			detail = router.AppendCompact(nil, env.Detail)
		} else {
			if d.Text {
				return nil, s.permanent("the payload is text (the rule's template is not JSON), not the JSON object PutEvents takes as Detail: %s", clip(d.Payload, 64))
			}
			if k := kind(d.Payload); k != "" {
				return nil, s.permanent("the payload is %s, not the JSON object PutEvents takes as Detail: %s", k, clip(d.Payload, 64))
			}
			detail = d.Payload
		}
		var src, typ string
		if ev != nil {
			src, typ = ev.Source, ev.DetailType
		}
		src, typ = cmpOr(s.cfg.Source, src), cmpOr(s.cfg.DetailType, typ)
		switch {
		case src == "":
			return nil, s.permanent("the event has no source, which PutEvents requires: set source on the target")
		case typ == "":
			return nil, s.permanent("the event has no detail-type, which PutEvents requires: set detail_type on the target")
		}
		e.Source, e.DetailType = aws.String(src), aws.String(typ)
		e.Resources = s.cfg.Resources
		if e.Resources == nil {
			var rs []string
			if json.Unmarshal(env.Resources, &rs) == nil { // not a list of strings: none
				e.Resources = rs
			}
		}
		var ts string
		if json.Unmarshal(env.Time, &ts) == nil {
			if t, err := time.Parse(time.RFC3339, ts); err == nil {
				e.Time = aws.Time(t)
			}
		}
	}
	e.Detail = aws.String(string(detail))
	if h := d.OutboundTrace().XRayHeader(); h != "" {
		e.TraceHeader = aws.String(h)
	}
	p := &pending{d: d, e: e, size: EntrySize(e)}
	if p.size > MaxSize {
		return nil, s.permanent("the event is %d bytes, over PutEvents' limit of %d bytes (256 KiB) for an entry (counted as EventBridge counts it: Source, DetailType, Detail, Resources, 14 for Time)", p.size, MaxSize)
	}
	return p, nil
}

// EntrySize is the size EventBridge counts an entry as against the
// PutEvents limit (the user guide's "Calculating PutEvents event entry
// size"): 14 bytes for a Time, plus the UTF-8 bytes of Source, DetailType,
// Detail and each of Resources.
func EntrySize(e types.PutEventsRequestEntry) int {
	n := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	if e.Time != nil {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// kind names what valid JSON is when it is not an object ("a JSON
// array"), or returns "" for an object.
func kind(j []byte) string {
	t := strings.TrimLeft(string(j[:min(len(j), 64)]), " \t\r\n")
	if t == "" {
		return "empty"
	}
	switch t[0] {
	case '{':
		return ""
	case '[':
		return "a JSON array"
	case '"':
		return "a JSON string"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "JSON null"
	}
	return "a JSON number"
}

func (s *Sink) permanent(format string, args ...any) error {
	return router.PermanentError(fmt.Errorf("eventbridge %s: "+format, append([]any{s.name}, args...)...))
}

// put makes one PutEvents call with the entries of batch (at most
// MaxEntries, MaxSize in all) and returns each one's outcome.
func (s *Sink) put(ctx context.Context, batch []*pending) []error {
	errs := make([]error, len(batch))
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(batch))}
	for i, p := range batch {
		in.Entries[i] = p.e
	}
	out, err := s.api.PutEvents(ctx, in)
	if err != nil {
		err = fmt.Errorf("eventbridge %s: put events on bus %s: %w", s.name, s.cfg.Bus, classify(err))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if len(out.Entries) != len(batch) {
		// Results cannot be matched to entries: none is known to be put.
		err := router.RetryableError(fmt.Errorf("eventbridge %s: put events on bus %s: %d results for %d entries", s.name, s.cfg.Bus, len(out.Entries), len(batch)), 0)
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, r := range out.Entries {
		if code := aws.ToString(r.ErrorCode); code != "" {
			errs[i] = s.entryError(batch[i], code, aws.ToString(r.ErrorMessage))
		}
	}
	return errs
}

// EntryError is an entry that PutEvents refused: its ErrorCode and
// ErrorMessage.
type EntryError struct {
	Code, Message string
}

func (e *EntryError) Error() string { return e.Code + ": " + e.Message }

// entryError classifies a refused entry: ThrottlingException throttled,
// InternalFailure retryable, anything else (MalformedDetail,
// InvalidArgument, AccessDeniedException, NotAuthorizedFor...) permanent.
func (s *Sink) entryError(p *pending, code, msg string) error {
	err := fmt.Errorf("eventbridge %s: put events on bus %s: entry refused: %w", s.name, s.cfg.Bus, &EntryError{Code: code, Message: msg})
	switch code {
	case "ThrottlingException":
		return router.ThrottledError(err, 0)
	case "InternalFailure":
		return router.RetryableError(err, 0)
	case "NotAuthorizedForSourceException":
		if src := aws.ToString(p.e.Source); strings.HasPrefix(src, "aws.") {
			err = fmt.Errorf("%w (source %s: sources beginning with \"aws.\" are AWS's own; set source on the target)", err, src)
		}
	}
	return router.PermanentError(err)
}

// classify turns a PutEvents error into a delivery error.
func classify(err error) error { return awserr.Classify(err, putCodes) }

var putCodes = awserr.Codes{
	Throttled: []string{"ThrottlingException"},
	Permanent: []string{"ResourceNotFoundException", "AccessDeniedException", "ValidationException", "InvalidArgument",
		"NotAuthorizedForSourceException", "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
		"MissingAuthenticationTokenException", "SerializationException"},
	Retryable: []string{"InternalException", "InternalFailure", "ServiceUnavailable"},
}

// Close sends what is waiting for a call and waits for the calls in
// flight, within ctx. It is idempotent.
func (s *Sink) Close(ctx context.Context) error { return s.batch.Close(ctx) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/switchyard-dev/switchyard/internal/sqsmd5"
	"github.com/switchyard-dev/switchyard/router"
)

// maxBatchPayload keeps a batch under Lambda's 6 MB synchronous limit.
const maxBatchPayload = 5 << 20

// pending is a delivery waiting in a batch.
type pending struct {
	ctx  context.Context
	d    *router.Delivery
	id   string // the record's messageId
	raw  []byte // the record, encoded
	done chan error
}

// batcher groups deliveries into invocations of up to Size records: a
// batch goes when it is full, when the first delivery has waited Window,
// or, with no window, as soon as nothing else is waiting and no
// invocation is out (while one is, records gather into fuller batches, as
// TCP's Nagle algorithm gathers bytes).
type batcher struct {
	s         *Sink
	in        chan *pending
	out       atomic.Int32  // invocations under way
	landed    chan struct{} // an invocation returned (a wake-up, buffered 1)
	start     sync.Once
	started   atomic.Bool
	closeOnce sync.Once
	closing   chan struct{}
	closed    chan struct{}
	flights   sync.WaitGroup
}

func (s *Sink) deliverBatched(ctx context.Context, d *router.Delivery) error {
	b := s.batch
	b.start.Do(func() {
		b.started.Store(true)
		go b.run()
	})
	rec := newRecord(d)
	raw, _ := json.Marshal(rec)
	if n := len(raw) + len(`{"Records":[]}`); n > maxSyncPayload {
		return s.tooLarge(n, maxSyncPayload)
	}
	p := &pending{ctx: ctx, d: d, id: rec.MessageID, raw: raw, done: make(chan error, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closing:
		return router.RetryableError(errors.New("lambda "+s.name+": closed"), 0)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) run() {
	defer close(b.closed)
	var batch []*pending
	var timer *time.Timer
	var timeout <-chan time.Time
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		out := batch
		batch, size = nil, 0
		if timer != nil {
			timer.Stop()
			timer, timeout = nil, nil
		}
		b.out.Add(1)
		b.flights.Go(func() {
			b.invoke(out)
			b.out.Add(-1)
			select {
			case b.landed <- struct{}{}:
			default:
			}
		})
	}
	cfg := b.s.cfg.Batch
	yielded := false
	for {
		if len(batch) > 0 && cfg.Window == 0 {
			// No window: take what is waiting now, then go. Deliveries of
			// one receive arrive each from its own goroutine, a moment
			// apart: yielding once before the batch goes lets those
			// already running reach it, instead of a batch per record.
			select {
			case p := <-b.in:
				b.add(&batch, &size, p, flush)
				continue
			default:
			}
			if !yielded {
				yielded = true
				runtime.Gosched()
				continue
			}
			yielded = false
			if b.out.Load() == 0 {
				flush()
			}
		}
		select {
		case p := <-b.in:
			b.add(&batch, &size, p, flush)
			if len(batch) == 1 && cfg.Window > 0 {
				timer = time.NewTimer(cfg.Window)
				timeout = timer.C
			}
		case <-b.landed:
			// Back to the top: with no window, a waiting batch may go now.
		case <-timeout:
			timer, timeout = nil, nil
			flush()
		case <-b.closing:
			flush()
			b.flights.Wait()
			return
		}
	}
}

// add puts p in the batch, first sending the batch if p's message is
// already in it (records are identified by message id) or p would make it
// too large, and then if it is full.
func (b *batcher) add(batch *[]*pending, size *int, p *pending, flush func()) {
	for _, q := range *batch {
		if q.id == p.id {
			flush()
			break
		}
	}
	if *size+len(p.raw) > maxBatchPayload {
		flush()
	}
	*batch = append(*batch, p)
	*size += len(p.raw)
	if len(*batch) >= b.s.cfg.Batch.Size {
		flush()
	}
}

// invoke sends one batch and answers each delivery.
func (b *batcher) invoke(batch []*pending) {
	s := b.s
	// The records were encoded as they joined the batch (to know its size):
	// the payload is put together from those, not encoded again.
	n := len(`{"Records":[]}`) + len(batch)
	for _, p := range batch {
		n += len(p.raw)
	}
	payload := make([]byte, 0, n)
	payload = append(payload, `{"Records":[`...)
	for i, p := range batch {
		if i > 0 {
			payload = append(payload, ',')
		}
		payload = append(payload, p.raw...)
	}
	payload = append(payload, "]}"...)
	ctx, cancel := batchContext(batch)
	defer cancel()
	in := &lambda.InvokeInput{FunctionName: aws.String(s.cfg.Function), Payload: payload, InvocationType: types.InvocationTypeRequestResponse}
	if s.cfg.Qualifier != "" {
		in.Qualifier = aws.String(s.cfg.Qualifier)
	}
	// One call carries the whole batch, and a call has one trace header:
	// the first delivery's.
	out, err := s.api.Invoke(ctx, in, invokeOptions(batch[0].d)...)
	switch {
	case err != nil:
		err = classify(err)
	case out.FunctionError != nil:
		err = s.functionError(out)
	}
	if err != nil {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	failed, bad := itemFailures(out.Payload, batch)
	for _, p := range batch {
		switch {
		case bad != nil:
			p.done <- router.RetryableError(fmt.Errorf("lambda %s: %w", s.cfg.Function, bad), 0)
		case failed[p.id]:
			p.done <- router.RetryableError(fmt.Errorf("lambda %s: the function reported record %s failed", s.cfg.Function, p.id), 0)
		default:
			p.done <- nil
		}
	}
}

// batchContext lasts as long as the longest of the deliveries' attempts.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, p := range batch {
		if d, ok := p.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	base := context.WithoutCancel(batch[0].ctx)
	if deadline.IsZero() {
		return context.WithCancel(base)
	}
	return context.WithDeadline(base, deadline)
}

// itemFailures reads a partial batch response, with the event-source
// mapping's rules: no response, or an empty or null list, is full success;
// invalid JSON or an unknown, empty or null itemIdentifier fails the whole
// batch (bad is set).
func itemFailures(payload []byte, batch []*pending) (failed map[string]bool, bad error) {
	if len(payload) == 0 || string(payload) == "null" {
		return nil, nil
	}
	var resp struct {
		BatchItemFailures []map[string]*string `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		// A response that is not an object (a string, a number) is not a
		// batch response at all: as with the event-source mapping, success.
		var v any
		if json.Unmarshal(payload, &v) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("the function's batch response is not JSON: %s", clip(payload, 200))
	}
	ids := map[string]bool{}
	for _, p := range batch {
		ids[p.id] = true
	}
	failed = map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		id, ok := f["itemIdentifier"]
		if !ok || id == nil || *id == "" || !ids[*id] || len(f) != 1 {
			return nil, fmt.Errorf("the function's batchItemFailures has an invalid itemIdentifier: %v", f)
		}
		failed[*id] = true
	}
	return failed, nil
}

// record is one message in the SQS event shape, as Lambda's SQS
// event-source mapping writes it.
type record struct {
	MessageID         string                      `json:"messageId"`
	ReceiptHandle     string                      `json:"receiptHandle"`
	Body              string                      `json:"body"`
	Attributes        map[string]string           `json:"attributes"`
	MessageAttributes map[string]messageAttribute `json:"messageAttributes"`
	MD5OfBody         string                      `json:"md5OfBody"`
	// MD5OfMessageAttributes is null without message attributes.
	MD5OfMessageAttributes *string `json:"md5OfMessageAttributes"`
	EventSource            string  `json:"eventSource"`
	EventSourceARN         string  `json:"eventSourceARN"`
	AWSRegion              string  `json:"awsRegion"`
}

// Receipter is a message handle that has an SQS receipt handle (the sqs
// source's).
type Receipter interface {
	ReceiptHandle() string
}

// messageAttribute is a record's message attribute: stringValue for String
// and Number, binaryValue (base64) for Binary, as an event-source mapping
// writes them.
type messageAttribute struct {
	StringValue      string   `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues []string `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// systemAttributes are the SQS attributes an event-source mapping record
// carries.
var systemAttributes = []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
	"MessageGroupId", "MessageDeduplicationId", "SequenceNumber", "AWSTraceHeader", "DeadLetterQueueSourceArn"}

func newRecord(d *router.Delivery) record {
	m := d.Message
	body := d.Payload
	if d.Whole && d.DeadLetter == nil {
		body = m.Body // what an SQS-triggered function expects
	}
	if d.DeadLetter != nil {
		body = router.DeadLetterDocument(d)
	}
	// The message's own receipt handle when it came from SQS; else (another
	// source, a backlog) the delivery id, which is as unique.
	receipt := d.ID
	if h, ok := m.Handle.(Receipter); ok && h.ReceiptHandle() != "" {
		receipt = h.ReceiptHandle()
	}
	r := record{
		MessageID: m.ID, ReceiptHandle: receipt, Body: string(body), Attributes: map[string]string{},
		MessageAttributes: map[string]messageAttribute{}, MD5OfBody: sqsmd5.Body(body),
		EventSource: "aws:sqs", EventSourceARN: m.System["QueueArn"], AWSRegion: m.System["Region"],
	}
	for _, k := range systemAttributes {
		if v, ok := m.System[k]; ok {
			r.Attributes[k] = v
		}
	}
	attrs := m.MessageAttributes()
	digest := make(map[string]sqsmd5.Attribute, len(attrs))
	for k, v := range attrs {
		a := messageAttribute{StringListValues: []string{}, BinaryListValues: []string{}, DataType: v.DataType}
		if v.IsBinary() {
			a.BinaryValue = v.BinaryValue
			digest[k] = sqsmd5.Attribute{DataType: v.DataType, Value: v.BinaryValue}
		} else {
			a.StringValue = v.StringValue
			digest[k] = sqsmd5.Attribute{DataType: v.DataType, Value: []byte(v.StringValue)}
		}
		r.MessageAttributes[k] = a
	}
	if sum := sqsmd5.Attributes(digest); sum != "" {
		r.MD5OfMessageAttributes = &sum
	}
	return r
}

// Close sends what is waiting in a batch and waits for the invocations in
// flight, within ctx. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	b := s.batch
	if b == nil {
		return nil
	}
	b.closeOnce.Do(func() { close(b.closing) })
	if !b.started.Load() {
		return nil
	}
	select {
	case <-b.closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

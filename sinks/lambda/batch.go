package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/switchyard-dev/switchyard/internal/batch"
	"github.com/switchyard-dev/switchyard/internal/sqsmd5"
	"github.com/switchyard-dev/switchyard/router"
)

// maxBatchPayload keeps a batch under Lambda's 6 MB synchronous limit.
const maxBatchPayload = 5 << 20

// pending is a delivery's record, waiting in a batch.
type pending struct {
	d   *router.Delivery
	id  string // the record's messageId
	raw []byte // the record, encoded
}

// newBatcher groups deliveries into invocations of up to Size records and
// maxBatchPayload bytes: a batch goes when it is full, when the first
// delivery has waited Window, or, with no window, as soon as nothing else
// is waiting and no invocation is out. Two deliveries of one message never
// share a batch (records are named by message id).
func (s *Sink) newBatcher() *batch.Batcher[*pending] {
	return batch.New(batch.Config{MaxItems: s.cfg.Batch.Size, MaxBytes: maxBatchPayload, Window: s.cfg.Batch.Window}, s.invoke)
}

func (s *Sink) deliverBatched(ctx context.Context, d *router.Delivery) error {
	rec := newRecord(d)
	raw, _ := json.Marshal(rec)
	if n := len(raw) + len(`{"Records":[]}`); n > maxSyncPayload {
		return s.tooLarge(n, maxSyncPayload)
	}
	err := s.batch.Do(ctx, &pending{d: d, id: rec.MessageID, raw: raw}, len(raw), rec.MessageID)
	if errors.Is(err, batch.ErrClosed) {
		return router.RetryableError(fmt.Errorf("lambda %s: %w", s.name, err), 0)
	}
	return err
}

// invoke sends one batch and answers each delivery.
func (s *Sink) invoke(ctx context.Context, batch []*pending) []error {
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
	errs := make([]error, len(batch))
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	failed, bad := itemFailures(out.Payload, batch)
	for i, p := range batch {
		switch {
		case bad != nil:
			errs[i] = router.RetryableError(fmt.Errorf("lambda %s: %w", s.cfg.Function, bad), 0)
		case failed[p.id]:
			errs[i] = router.RetryableError(fmt.Errorf("lambda %s: the function reported record %s failed", s.cfg.Function, p.id), 0)
		}
	}
	return errs
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
	if s.batch == nil {
		return nil
	}
	return s.batch.Close(ctx)
}

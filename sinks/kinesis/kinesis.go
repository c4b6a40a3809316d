package kinesis

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/batch"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the Kinesis client the sink uses; *kinesis.Client has
// it. The client should not retry (aws.NopRetryer): the policy does.
type API interface {
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Sink puts deliveries into a Kinesis stream. Deliver hands its delivery
// to a batcher that groups the deliveries arriving together into one
// PutRecords call (see Batch); DeliverBatch makes the calls for a batch
// the caller already has. Either way a call's records that Kinesis failed
// are failed alone, so only they are tried again. Close sends what is
// waiting.
//
// Records carry no trace context: Kinesis records have no attributes, and
// a call carries many deliveries.
type Sink struct {
	name  string
	cfg   Config
	api   API
	key   *router.Setting
	batch *batch.Batcher[*record]
}

// New returns a sink for cfg, which must have passed Validate (defaults
// applied). It starts nothing: the batcher starts with the first delivery.
func New(name string, cfg Config, api API) *Sink {
	s := &Sink{name: name, cfg: cfg, api: api, key: router.MustParseSetting(cfg.PartitionKey)}
	s.batch = batch.New(batch.Config{MaxItems: cfg.Batch.Size, MaxBytes: int(cfg.Batch.MaxBytes), Window: cfg.Batch.Window}, s.put)
	return s
}

var (
	_ router.Sink      = (*Sink)(nil)
	_ router.BatchSink = (*Sink)(nil)
	_ router.Closer    = (*Sink)(nil)
)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// record is a delivery as a PutRecords entry.
type record struct {
	data []byte
	key  string
}

func (r *record) size() int { return len(r.data) + len(r.key) }

// record makes d's entry: the payload as the data (a dead letter's as
// router.DeadLetterDocument) and the partition key filled in. Its error,
// permanent, says why d can never be put.
func (s *Sink) record(d *router.Delivery) (*record, error) {
	data := d.Payload
	if d.DeadLetter != nil {
		data = router.DeadLetterDocument(d)
	}
	key, err := s.key.Render(d)
	if err != nil {
		return nil, router.PermanentError(fmt.Errorf("kinesis %s: partition_key: %w", s.name, err))
	}
	switch n := utf8.RuneCountInString(key); {
	case n == 0:
		return nil, router.PermanentError(fmt.Errorf("kinesis %s: partition_key %q fills to nothing: Kinesis takes 1 to %d characters", s.name, s.cfg.PartitionKey, MaxPartitionKey))
	case n > MaxPartitionKey:
		return nil, router.PermanentError(fmt.Errorf("kinesis %s: partition_key %q fills to %d characters: Kinesis takes 1 to %d", s.name, s.cfg.PartitionKey, n, MaxPartitionKey))
	}
	r := &record{data: data, key: key}
	if r.size() > MaxRecordBytes {
		return nil, router.PermanentError(fmt.Errorf("kinesis %s: the record is %d bytes with its partition key, over Kinesis's limit of 1MiB a record", s.name, r.size()))
	}
	return r, nil
}

// Deliver puts d into the stream, in a PutRecords call with the deliveries
// waiting with it. It returns when that call has answered for d, or ctx
// ends.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	r, err := s.record(d)
	if err != nil {
		return err
	}
	err = s.batch.Do(ctx, r, r.size(), "")
	if errors.Is(err, batch.ErrClosed) {
		return router.RetryableError(fmt.Errorf("kinesis %s: %w", s.name, err), 0)
	}
	return err
}

// DeliverBatch puts ds into the stream in as few PutRecords calls as the
// limits allow (Batch.Size records, Batch.MaxBytes each), one after
// another, and returns one error (or nil) per delivery, in order: a
// delivery that cannot be put at all, or whose record or call failed,
// gets its own classified error; the rest are delivered.
func (s *Sink) DeliverBatch(ctx context.Context, ds []*router.Delivery) []error {
	errs := make([]error, len(ds))
	var call []*record
	var idx []int
	size := 0
	send := func() {
		if len(call) == 0 {
			return
		}
		for i, err := range s.put(ctx, call) {
			errs[idx[i]] = err
		}
		call, idx, size = nil, nil, 0
	}
	for i, d := range ds {
		r, err := s.record(d)
		if err != nil {
			errs[i] = err
			continue
		}
		if size+r.size() > int(s.cfg.Batch.MaxBytes) {
			send()
		}
		call, idx = append(call, r), append(idx, i)
		size += r.size()
		if len(call) >= s.cfg.Batch.Size {
			send()
		}
	}
	send()
	return errs
}

// put makes one PutRecords call of recs (within the limits) and returns
// one error per record: the call's own error for every record when it
// failed, else each record's result.
func (s *Sink) put(ctx context.Context, recs []*record) []error {
	in := &kinesis.PutRecordsInput{Records: make([]types.PutRecordsRequestEntry, len(recs))}
	if s.cfg.StreamARN != "" {
		in.StreamARN = aws.String(s.cfg.StreamARN)
	} else {
		in.StreamName = aws.String(s.cfg.Stream)
	}
	for i, r := range recs {
		in.Records[i] = types.PutRecordsRequestEntry{Data: r.data, PartitionKey: aws.String(r.key)}
	}
	errs := make([]error, len(recs))
	out, err := s.api.PutRecords(ctx, in)
	if err == nil && len(out.Records) != len(recs) {
		err = router.RetryableError(fmt.Errorf("answered %d results for %d records", len(out.Records), len(recs)), 0)
	}
	if err != nil {
		err = fmt.Errorf("kinesis %s: put records: %w", s.name, classify(err))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, res := range out.Records {
		if res.ErrorCode != nil {
			errs[i] = recordError(s.name, aws.ToString(res.ErrorCode), aws.ToString(res.ErrorMessage))
		}
	}
	return errs
}

// recordError classifies a record that PutRecords failed: Kinesis
// documents ProvisionedThroughputExceededException (the shard's write
// limit: a throttle) and InternalFailure (retryable); KMS's throttling is
// a throttle too, and anything else (KMS errors among them) is tried
// again, within the policy's attempts, since the call itself was taken.
func recordError(name, code, msg string) error {
	err := fmt.Errorf("kinesis %s: record failed: %s: %s", name, code, msg)
	switch code {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException":
		return router.ThrottledError(err, 0)
	}
	return router.RetryableError(err, 0)
}

// classify turns a PutRecords error into a delivery error: by Kinesis's
// error code, then by HTTP status (429 throttled, 4xx permanent, 5xx
// retryable); anything without an answer is retryable.
func classify(err error) error { return awserr.Classify(err, putCodes) }

// putCodes are the errors PutRecords documents, and the generic ones AWS
// may answer any call with. KMS failures other than its throttling are the
// stream's key being missing, disabled, not allowed or not opted in, which
// no retry mends; a stream being updated (ResourceInUseException) is.
var putCodes = awserr.Codes{
	Throttled: []string{"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException", "KMSThrottlingException"},
	Permanent: []string{"ResourceNotFoundException", "AccessDeniedException", "ValidationException", "InvalidArgumentException",
		"KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException", "KMSOptInRequired",
		"UnrecognizedClientException", "MissingAuthenticationTokenException", "IncompleteSignature", "InvalidSignatureException"},
	Retryable: []string{"InternalFailureException", "InternalFailure", "ServiceUnavailable", "ResourceInUseException"},
}

// Close sends what is waiting and waits for the calls in flight, within
// ctx. Deliveries after Close fail, retryable. It is idempotent.
func (s *Sink) Close(ctx context.Context) error { return s.batch.Close(ctx) }

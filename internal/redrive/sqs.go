package redrive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
)

// receiveCodes classify ReceiveMessage's errors: a queue that is not there
// or not readable ends the run at once.
var receiveCodes = awserr.Codes{
	Throttled: []string{"RequestThrottled", "ThrottlingException", "KmsThrottled", "AWS.SimpleQueueService.RequestThrottled"},
	Permanent: []string{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "AccessDenied", "AccessDeniedException", "InvalidSecurity",
		"KmsAccessDenied", "KmsDisabled", "KmsNotFound", "KmsInvalidState", "KmsInvalidKeyUsage", "InvalidAddress"},
}

// SQSAPI is the part of the SQS client an SQS place uses; *sqs.Client has
// it. The client may retry (the SDK's default): these calls are the
// place's, not deliveries.
type SQSAPI interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// SQS is a dead-letter queue: letters are received with a visibility
// timeout (the hold), extended while they are worked on, deleted with
// DeleteMessage, and released by setting their visibility to 0.
type SQS struct {
	api SQSAPI
	url string
}

var _ Place = (*SQS)(nil)

// NewSQS returns the place of the queue at url.
func NewSQS(api SQSAPI, url string) *SQS { return &SQS{api: api, url: url} }

func (q *SQS) String() string { return "sqs queue " + q.url }

// maxVisibility is SQS's longest visibility timeout, 12 hours.
const maxVisibility = 12 * time.Hour

// seconds is a hold as a visibility timeout.
func seconds(hold time.Duration) int32 {
	return int32(min(max(hold, time.Second), maxVisibility) / time.Second)
}

// Receive long-polls for a second. A message that is not a switchyard
// dead letter is a letter with Unreadable set. An error is classified: a
// queue that does not exist or cannot be read is router.Permanent.
func (q *SQS) Receive(ctx context.Context, max int, hold time.Duration) ([]*Letter, error) {
	out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: int32(min(max, 10)), WaitTimeSeconds: 1,
		VisibilityTimeout: seconds(hold), MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		return nil, fmt.Errorf("receive: %w", awserr.Classify(err, receiveCodes))
	}
	ls := make([]*Letter, 0, len(out.Messages))
	for _, m := range out.Messages {
		l := &Letter{Ref: aws.ToString(m.MessageId), handle: aws.ToString(m.ReceiptHandle)}
		dl, attrs, body, err := sqssink.DeadLetterOf(aws.ToString(m.Body), m.MessageAttributes)
		if err != nil {
			l.Unreadable, l.Body = err, []byte(aws.ToString(m.Body))
		} else {
			l.Record, l.Attributes, l.Body = dl, attrs, body
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Extend sets the letters' visibility to hold, ten at a time.
func (q *SQS) Extend(ctx context.Context, ls []*Letter, hold time.Duration) error {
	return q.visibility(ctx, ls, seconds(hold))
}

// Release sets the letters' visibility to 0.
func (q *SQS) Release(ctx context.Context, ls []*Letter) error { return q.visibility(ctx, ls, 0) }

func (q *SQS) visibility(ctx context.Context, ls []*Letter, timeout int32) error {
	var errs []error
	for start := 0; start < len(ls); start += 10 {
		batch := ls[start:min(start+10, len(ls))]
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url)}
		for i, l := range batch {
			in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(l.Handle().(string)), VisibilityTimeout: timeout,
			})
		}
		out, err := q.api.ChangeMessageVisibilityBatch(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("change visibility: %w", err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i < len(batch) {
				errs = append(errs, fmt.Errorf("change visibility of %s: %s: %s", batch[i].Ref, aws.ToString(f.Code), aws.ToString(f.Message)))
			}
		}
	}
	return errors.Join(errs...)
}

// Delete deletes the letter's message.
func (q *SQS) Delete(ctx context.Context, l *Letter) error {
	_, err := q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(l.Handle().(string))})
	if err != nil {
		return fmt.Errorf("delete %s: %w", l.Ref, err)
	}
	return nil
}

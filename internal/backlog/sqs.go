package backlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/router"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// SQSAPI is the part of the SQS client an SQS backlog uses.
type SQSAPI interface {
	sqssource.API
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SQS is a backlog on an SQS queue of its own: a push is a SendMessage
// that SQS confirmed (the SDK checks the body's MD5), the drain the SQS
// source on that queue. It outlives the task that wrote it.
type SQS struct {
	*sqssource.Source
	api      SQSAPI
	queueURL string
	maxSize  int
	keep     time.Duration // the queue's retention

	mu     sync.Mutex
	oldest time.Time // since when the queue has not been seen empty; zero: empty
}

var (
	_ router.Backlog      = (*SQS)(nil)
	_ router.BacklogDepth = (*SQS)(nil)
)

// OpenSQS checks target's backlog queue: it must exist, be readable, be a
// standard queue, and keep messages longer than maxAge (the target's
// retry.max_age), or entries would expire before they are delivered.
func OpenSQS(ctx context.Context, api SQSAPI, target string, cfg Config, maxAge time.Duration, log *slog.Logger) (*SQS, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(cfg.QueueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameFifoQueue, types.QueueAttributeNameMaximumMessageSize,
			types.QueueAttributeNameMessageRetentionPeriod, types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return nil, fmt.Errorf("backlog of %s: queue %s: %w", target, cfg.QueueURL, err)
	}
	attr := out.Attributes
	if attr[string(types.QueueAttributeNameFifoQueue)] == "true" {
		return nil, fmt.Errorf("backlog of %s: queue %s is a FIFO queue: a backlog is a standard queue", target, cfg.QueueURL)
	}
	b := &SQS{api: api, queueURL: cfg.QueueURL, maxSize: 256 << 10}
	if n, err := strconv.Atoi(attr[string(types.QueueAttributeNameMaximumMessageSize)]); err == nil && n > 0 {
		b.maxSize = n
	}
	if s, err := strconv.Atoi(attr[string(types.QueueAttributeNameMessageRetentionPeriod)]); err == nil {
		b.keep = time.Duration(s) * time.Second
		if err := b.CheckMaxAge(maxAge); err != nil {
			return nil, fmt.Errorf("backlog of %s: %w", target, err)
		}
	}
	if attr[string(types.QueueAttributeNameRedrivePolicy)] != "" {
		log.Warn("a backlog queue has a redrive policy: entries that come back often (while the target stays down) may be moved to its dead-letter queue, out of switchyard's reach; remove it",
			"target", target, "queue", cfg.QueueURL, "redrive_policy", attr[string(types.QueueAttributeNameRedrivePolicy)])
	}
	if n, _ := strconv.Atoi(attr[string(types.QueueAttributeNameApproximateNumberOfMessages)]); n > 0 {
		b.oldest = time.Now() // at least as old as this start
	}
	b.Source = sqssource.New("backlog:"+target, sqssource.Config{
		QueueURL: cfg.QueueURL, MaxMessages: 10, WaitTime: 5 * time.Second, VisibilityTimeout: 60 * time.Second, Pollers: 1, Raw: true,
	}, api, log)
	if err := b.Source.Open(ctx); err != nil {
		return nil, fmt.Errorf("backlog of %s: %w", target, err)
	}
	return b, nil
}

func (b *SQS) String() string { return "sqs queue " + b.queueURL }

// CheckMaxAge reports whether the queue keeps entries long enough for a
// target whose retry.max_age is maxAge: twice that, since an entry older
// than max_age is dead-lettered only when the backlog next drains (not
// while the target's breaker is open), and SQS drops what it keeps too long.
func (b *SQS) CheckMaxAge(maxAge time.Duration) error {
	if b.keep > 0 && b.keep < 2*maxAge {
		return fmt.Errorf("queue %s keeps messages %s, less than twice the target's retry.max_age of %s: entries could expire before they are delivered or dead-lettered (raise its MessageRetentionPeriod, up to 14 days, or lower max_age)",
			b.queueURL, b.keep, maxAge)
	}
	return nil
}

// Push sends the entry. An entry over the queue's maximum message size is
// refused without a call (a permanent error: that delivery waits in
// memory, the others still go).
func (b *SQS) Push(ctx context.Context, d *router.Delivery) error {
	body := router.EncodeEntry(d)
	if len(body) > b.maxSize {
		return router.PermanentError(fmt.Errorf("backlog %s: the entry is %d bytes, over the queue's MaximumMessageSize of %d", b.queueURL, len(body), b.maxSize))
	}
	_, err := b.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(b.queueURL), MessageBody: aws.String(string(body))})
	if err != nil {
		return fmt.Errorf("backlog %s: %w", b.queueURL, awserr.Classify(err, sendCodes))
	}
	b.mu.Lock()
	if b.oldest.IsZero() {
		b.oldest = time.Now()
	}
	b.mu.Unlock()
	return nil
}

var sendCodes = awserr.Codes{
	Throttled: []string{"RequestThrottled", "ThrottlingException", "KmsThrottled", "AWS.SimpleQueueService.RequestThrottled"},
	// This entry's problem, not the queue's: the others still go.
	Permanent: []string{"InvalidMessageContents"},
}

// Depth returns the queue's approximate message count (visible, in flight
// and delayed). SQS does not say how old its oldest message is: the time
// returned is since when this instance has not seen the queue empty.
func (b *SQS) Depth(ctx context.Context) (int64, time.Time, error) {
	out, err := b.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(b.queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	var n int64
	for _, v := range out.Attributes {
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, time.Time{}, errors.New("GetQueueAttributes: a count is not a number: " + v)
		}
		n += c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n == 0 {
		b.oldest = time.Time{}
	} else if b.oldest.IsZero() {
		b.oldest = time.Now()
	}
	return n, b.oldest, nil
}

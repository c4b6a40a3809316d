package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/streak"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the SQS client the source uses; *sqs.Client has it.
type API interface {
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Source consumes an SQS queue. Messages it hands out stay invisible while
// their deliveries run (a heartbeat extends them); acked messages are
// deleted in batches; nacked ones become visible again after the delay.
type Source struct {
	name string
	cfg  Config
	api  API
	log  *slog.Logger
	now  func() time.Time

	// Learnt by Open.
	queue Queue

	start   sync.Once
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
	deletes chan *deletion

	mu       sync.Mutex
	inflight map[*handle]struct{}

	errs *streak.Streak
}

// New returns a source for cfg (defaults applied). It starts nothing: call
// Open to check the queue, then Receive.
func New(name string, cfg Config, api API, log *slog.Logger) *Source {
	if log == nil {
		log = slog.Default()
	}
	return &Source{
		name: name, cfg: cfg, api: api, log: log.With("source", name), now: time.Now,
		closing: make(chan struct{}), deletes: make(chan *deletion), inflight: map[*handle]struct{}{},
		errs: streak.New(log.With("source", name), "receive", "queue", cfg.QueueURL),
	}
}

var _ router.Source = (*Source)(nil)

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Pollers is the number of receive loops the dispatcher should run.
func (s *Source) Pollers() int { return s.cfg.Pollers }

// BatchSize is the most messages one receive asks for.
func (s *Source) BatchSize() int { return s.cfg.MaxMessages }

// Open checks that the queue exists and is reachable with the credentials
// at hand, and learns its ARN.
func (s *Source) Open(ctx context.Context) error {
	out, err := s.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(s.cfg.QueueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("sqs source %s: queue %s: %w", s.name, s.cfg.QueueURL, err)
	}
	s.queue = queueOfARN(out.Attributes[string(types.QueueAttributeNameQueueArn)])
	return nil
}

// Queue is what a source knows of its queue, for the events it wraps: its
// ARN, and the account and region in it.
type Queue struct{ ARN, Account, Region string }

// queueOfARN reads arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
func queueOfARN(arn string) Queue {
	q := Queue{ARN: arn}
	if parts := strings.Split(arn, ":"); len(parts) == 6 {
		q.Region, q.Account = parts[3], parts[4]
	}
	return q
}

// QueueOf is the Queue a queue URL names, for a dry run, which asks SQS
// nothing (Open asks SQS for the queue's ARN). The account is the URL's;
// the region is the host's (sqs.REGION.amazonaws.com, or
// REGION.queue.amazonaws.com), else region, and with both the ARN is
// arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
func QueueOf(queueURL, region string) Queue {
	q, err := names.ParseQueueURL(queueURL)
	if err != nil {
		return Queue{}
	}
	if u, err := url.Parse(queueURL); err == nil {
		labels := strings.Split(u.Hostname(), ".")
		switch {
		case len(labels) >= 4 && labels[0] == "sqs" && labels[2] == "amazonaws":
			region = labels[1]
		case len(labels) >= 4 && labels[1] == "queue" && labels[2] == "amazonaws":
			region = labels[0]
		}
	}
	out := Queue{Account: q.Account, Region: region}
	if region != "" {
		partition := "aws"
		switch {
		case strings.HasPrefix(region, "cn-"):
			partition = "aws-cn"
		case strings.HasPrefix(region, "us-gov-"):
			partition = "aws-us-gov"
		}
		out.ARN = "arn:" + partition + ":sqs:" + region + ":" + q.Account + ":" + q.Name
	}
	return out
}

func (s *Source) startWorkers() {
	s.start.Do(func() {
		s.wg.Go(s.deleter)
		s.wg.Go(s.heartbeat)
	})
}

// Receive long-polls for up to max messages (at most max_messages). A
// failed poll is logged once per streak of failures and backed off before
// it returns its error.
func (s *Source) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	if s.closed.Load() {
		return nil, errors.New("sqs source " + s.name + ": closed")
	}
	s.startWorkers()
	// The visibility timeout runs from when SQS took the messages, before
	// their answer arrives: count from the request.
	asked := s.now()
	out, err := s.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(s.cfg.QueueURL),
		MaxNumberOfMessages: int32(min(max, s.cfg.MaxMessages)),
		WaitTimeSeconds:     int32(s.cfg.WaitTime / time.Second),
		VisibilityTimeout:   int32(s.cfg.VisibilityTimeout / time.Second),
		// All covers AWSTraceHeader; it is named as well because the trace
		// context depends on it.
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll, types.MessageSystemAttributeNameAWSTraceHeader},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.errs.Failed(ctx, s.closing, err)
		return nil, err
	}
	s.errs.Recovered()
	now := s.now()
	msgs := make([]*router.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, s.message(m, now, asked.Add(s.cfg.VisibilityTimeout)))
	}
	return msgs, nil
}

// message turns an SQS message into a router message that stays invisible
// until visibleUntil.
func (s *Source) message(m types.Message, now, visibleUntil time.Time) *router.Message {
	msg, _ := Decode(s.name, s.cfg, s.queue, m, now, s.log)
	h := &handle{s: s, receipt: aws.ToString(m.ReceiptHandle), id: msg.ID, visibleUntil: visibleUntil}
	msg.Handle = h
	h.log = router.MessageIDs(msg)
	s.mu.Lock()
	s.inflight[h] = struct{}{}
	s.mu.Unlock()
	return msg
}

// Decode makes the router message that the source named name with cfg
// hands out for m, received from q at now, without its handle: its
// attributes (typed and as strings), system attributes, FIFO group, trace
// context, and its event, decoded with cfg's envelope (wrapped events have
// detail-type SQS Message, the source's name as source, the message id as
// id, the queue as resource). A body that does not fit the envelope is
// handled as cfg's malformed says (logged to log, if not nil, when
// wrapped), and the misfit returned. Receive uses it, and so does the dry
// run (switchyard route).
func Decode(name string, cfg Config, q Queue, m types.Message, now time.Time, log *slog.Logger) (*router.Message, error) {
	body := []byte(aws.ToString(m.Body))
	id := aws.ToString(m.MessageId)
	attrs := map[string]string{}
	typed := make(map[string]router.Attribute, len(m.MessageAttributes))
	for k, v := range m.MessageAttributes {
		a := router.Attribute{DataType: aws.ToString(v.DataType), StringValue: aws.ToString(v.StringValue), BinaryValue: v.BinaryValue}
		typed[k] = a
		if !a.IsBinary() && v.StringValue != nil {
			attrs[k] = a.StringValue
		}
	}
	sent := now
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		sent = time.UnixMilli(ms)
	}
	origin := router.Origin{
		Source: name, DetailType: "SQS Message", ID: id, Time: sent,
		Account: q.Account, Region: q.Region, Resources: []string{q.ARN}, Attributes: attrs,
	}
	// The response's own map: nothing else holds it.
	system := m.Attributes
	if system == nil {
		system = make(map[string]string, 2)
	}
	system["QueueArn"], system["Region"] = q.ARN, q.Region
	msg := &router.Message{
		Source: name, ID: id, Body: body, Attributes: attrs, TypedAttributes: typed, System: system, Received: now,
		Group: m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
		// A count missing, or above 1: it may have been handed out before.
		Redelivered: system[string(types.MessageSystemAttributeNameApproximateReceiveCount)] != "1",
		Trace: router.CleanTrace(func(k string) string {
			if k == router.HeaderXRay {
				return m.Attributes[string(types.MessageSystemAttributeNameAWSTraceHeader)]
			}
			return ""
		}),
	}
	if cfg.Raw {
		return msg, nil
	}
	err := router.DecodeMessage(msg, cfg.Envelope, cfg.Malformed, origin, log)
	return msg, err
}

// Close stops the workers within ctx. Messages not yet settled become
// visible again when their visibility timeout ends.
func (s *Source) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.closing)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqs source %s: close: %w", s.name, ctx.Err())
	}
}

// handle settles one received message.
type handle struct {
	s            *Source
	receipt, id  string
	log          slog.Attr // the message's correlation ids
	settled      atomic.Bool
	visibleUntil time.Time // guarded by s.mu
}

// Ack deletes the message (in a batch with others).
// ReceiptHandle is the message's receipt handle, for a target that passes
// it on (Lambda's batch mode, as the SQS event-source mapping does).
func (h *handle) ReceiptHandle() string { return h.receipt }

func (h *handle) Ack(ctx context.Context) error {
	if !h.settle() {
		return nil
	}
	return h.s.delete(ctx, h)
}

// Nack makes the message visible again after the delay (whole seconds,
// rounded up, at most 12h).
func (h *handle) Nack(ctx context.Context, after time.Duration) error {
	if !h.settle() {
		return nil
	}
	_, err := h.s.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(h.s.cfg.QueueURL), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: seconds(after),
	})
	if isGone(err) {
		return nil // already visible again: as good as nacked
	}
	if err != nil {
		return fmt.Errorf("sqs source %s: nack %s: %w", h.s.name, h.id, err)
	}
	return nil
}

// Extend keeps the message invisible for by from now.
func (h *handle) Extend(ctx context.Context, by time.Duration) error {
	if h.settled.Load() {
		return nil
	}
	_, err := h.s.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(h.s.cfg.QueueURL), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: seconds(by),
	})
	if err != nil {
		return fmt.Errorf("sqs source %s: extend %s: %w", h.s.name, h.id, err)
	}
	h.s.mu.Lock()
	h.visibleUntil = h.s.now().Add(by)
	h.s.mu.Unlock()
	return nil
}

// settle marks the handle settled; it reports whether this call did.
func (h *handle) settle() bool {
	if !h.settled.CompareAndSwap(false, true) {
		return false
	}
	h.s.mu.Lock()
	delete(h.s.inflight, h)
	h.s.mu.Unlock()
	return true
}

func seconds(d time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	return int32(min(max(s, 0), 12*60*60))
}

// isGone reports an error saying the receipt no longer holds the message
// invisible (it was deleted, or became visible again).
func isGone(err error) bool {
	switch awserr.Code(err) {
	case "MessageNotInflight", "ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight":
		return true
	}
	return false
}

// deletion is one ack waiting for its batch.
type deletion struct {
	h    *handle
	done chan error
}

// delete queues an ack for the deleter and waits for its result.
func (s *Source) delete(ctx context.Context, h *handle) error {
	d := &deletion{h: h, done: make(chan error, 1)}
	select {
	case s.deletes <- d:
	case <-s.closing:
		return s.deleteBatch(ctx, []*deletion{d})[0]
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-d.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deletesInFlight bounds the DeleteMessageBatch calls a source has out at
// once. One at a time capped a busy source at ten acks per round trip:
// settled messages queued for their delete and held their in-flight slots
// meanwhile.
const deletesInFlight = 8

// deleteLinger is how long an ack waits for others to share its
// DeleteMessageBatch call when there are fewer than ten. At a steady
// 1,000 messages/s it turns a delete per message into one per ten; it
// holds nothing back from delivery, only the message's slot a moment
// longer (AWS's buffered SQS client waits 200ms by default).
const deleteLinger = 10 * time.Millisecond

// deleter collects acks into DeleteMessageBatch calls of up to ten. A
// full batch goes at once, with up to deletesInFlight calls out; a
// partial one goes when its first ack has waited deleteLinger and no call
// is out (while one is, acks gather into fuller batches).
func (s *Source) deleter() {
	var pending []*deletion
	out := 0
	done := make(chan struct{}, deletesInFlight)
	send := func(batch []*deletion) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errs := s.deleteBatch(ctx, batch)
		for i, d := range batch {
			d.done <- errs[i]
		}
	}
	linger := time.NewTimer(deleteLinger)
	linger.Stop()
	lingering, lingered := false, false
	for {
		for len(pending) > 0 && out < deletesInFlight && (len(pending) >= 10 || out == 0 && lingered) {
			n := min(len(pending), 10)
			batch := pending[:n:n]
			pending = pending[n:]
			out++
			s.wg.Go(func() {
				send(batch)
				done <- struct{}{}
			})
		}
		switch {
		case len(pending) == 0:
			linger.Stop()
			lingering, lingered = false, false
		case !lingering && !lingered:
			linger.Reset(deleteLinger)
			lingering = true
		}
		select {
		case d := <-s.deletes:
			pending = append(pending, d)
		case <-done:
			out--
		case <-linger.C:
			lingering, lingered = false, true
		case <-s.closing:
			// Acks from now on delete for themselves (see delete); the
			// ones already taken are sent before the source closes.
			linger.Stop()
			for len(pending) > 0 {
				n := min(len(pending), 10)
				send(pending[:n])
				pending = pending[n:]
			}
			return
		}
	}
}

func (s *Source) deleteBatch(ctx context.Context, batch []*deletion) []error {
	errs := make([]error, len(batch))
	entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
	for i, d := range batch {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.h.receipt)}
	}
	out, err := s.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("sqs source %s: delete %s: %w", s.name, batch[i].h.id, err)
		}
		return errs
	}
	for _, f := range out.Failed {
		i, err := strconv.Atoi(aws.ToString(f.Id))
		if err != nil || i < 0 || i >= len(batch) {
			continue
		}
		errs[i] = fmt.Errorf("sqs source %s: delete %s: %s: %s", s.name, batch[i].h.id, aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return errs
}

// heartbeat extends, every quarter of the visibility timeout, the messages
// whose visibility ends within the next half of it, so that each is
// extended at least a quarter of the timeout before it would come back
// while its deliveries still run.
func (s *Source) heartbeat() {
	vt := s.cfg.VisibilityTimeout
	tick := time.NewTicker(max(vt/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.closing:
			return
		}
		now := s.now()
		var due []*handle
		s.mu.Lock()
		for h := range s.inflight {
			if h.visibleUntil.Sub(now) < vt/2 {
				due = append(due, h)
			}
		}
		s.mu.Unlock()
		for len(due) > 0 {
			n := min(len(due), 10)
			s.extendBatch(due[:n], vt)
			due = due[n:]
		}
	}
}

func (s *Source) extendBatch(hs []*handle, by time.Duration) {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(hs))
	for i, h := range hs {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: seconds(by)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	asked := s.now()
	out, err := s.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		s.log.Warn("extending visibility failed: messages may be redelivered while in flight", "count", len(hs), "error", err)
		return
	}
	failed := map[int]bool{}
	for _, f := range out.Failed {
		i, _ := strconv.Atoi(aws.ToString(f.Id))
		failed[i] = true
		if !hs[i].settled.Load() {
			s.log.Warn("extending visibility failed", hs[i].log, "code", aws.ToString(f.Code), "error", aws.ToString(f.Message))
		}
	}
	until := asked.Add(by)
	s.mu.Lock()
	for i, h := range hs {
		if !failed[i] {
			h.visibleUntil = until
		}
	}
	s.mu.Unlock()
}

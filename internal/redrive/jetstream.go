package redrive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/router"
)

// JetStream is the stream a nats target with jetstream: true publishes its
// dead letters to: letters are fetched by a durable consumer of the
// target's own, so that two runs do not take the same one (its ack wait is
// the hold, extended by in-progress acks); deleted by their sequence (a
// work-queue stream deletes what is acked); released by a nak.
type JetStream struct {
	stream    jetstream.Stream
	cons      jetstream.Consumer
	name      string
	subject   string
	workQueue bool
}

var _ Place = (*JetStream)(nil)

// OpenJetStream finds the stream that captures subject (a nats target's,
// whose <placeholders> stand for any token), and creates or updates the
// durable consumer durable on it, filtered on the subject.
func OpenJetStream(ctx context.Context, js jetstream.JetStream, subject, durable string, hold time.Duration) (*JetStream, error) {
	filter := subjectFilter(subject)
	name, err := js.StreamNameBySubject(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("no JetStream stream captures %s, where the dead letters are published: %w", filter, err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: durable, Description: "switchyard redrive: dead letters of " + subject + " being redriven",
		FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, AckWait: hold, MaxDeliver: -1, MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: consumer %s: %w", name, durable, err)
	}
	return &JetStream{stream: stream, cons: cons, name: name, subject: filter,
		workQueue: stream.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy}, nil
}

// subjectFilter is a subject with each token that holds a placeholder
// made a wildcard.
func subjectFilter(subject string) string {
	// A placeholder may hold dots (<switchyard.rule>): marked first.
	toks := strings.Split(router.PlaceholderRE().ReplaceAllString(subject, "\x00"), ".")
	for i, t := range toks {
		if strings.Contains(t, "\x00") {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

func (s *JetStream) String() string { return "jetstream stream " + s.name + " (" + s.subject + ")" }

// Receive fetches for a second. A message that is not a dead letter
// document is a letter with Unreadable set.
func (s *JetStream) Receive(ctx context.Context, max int, hold time.Duration) ([]*Letter, error) {
	batch, err := s.cons.Fetch(max, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var ls []*Letter
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			continue // not a JetStream message: nothing to settle
		}
		l := &Letter{Ref: fmt.Sprintf("%s#%d", s.name, meta.Sequence.Stream), handle: m}
		dl, body, err := router.ParseDeadLetterDocument(m.Data())
		if err != nil {
			l.Unreadable, l.Body = err, m.Data()
		} else {
			l.Record, l.Body = dl, body
			l.Attributes = (&router.Message{Attributes: dl.Attributes}).MessageAttributes()
		}
		ls = append(ls, l)
	}
	// A fetch that failed after some messages came hands those out: they
	// are held now; the next fetch says whether the failure lasts.
	if err := batch.Error(); err != nil && len(ls) == 0 && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return ls, nil
}

// Extend sends an in-progress ack for each letter, restarting its ack
// wait (the consumer's, the hold it was opened with).
func (s *JetStream) Extend(_ context.Context, ls []*Letter, _ time.Duration) error {
	var errs []error
	for _, l := range ls {
		if err := l.Handle().(jetstream.Msg).InProgress(); err != nil {
			errs = append(errs, fmt.Errorf("in progress %s: %w", l.Ref, err))
		}
	}
	return errors.Join(errs...)
}

// Release naks each letter: it is delivered again at once.
func (s *JetStream) Release(_ context.Context, ls []*Letter) error {
	var errs []error
	for _, l := range ls {
		if err := l.Handle().(jetstream.Msg).Nak(); err != nil {
			errs = append(errs, fmt.Errorf("nak %s: %w", l.Ref, err))
		}
	}
	return errors.Join(errs...)
}

// Delete removes the letter from the stream: an acknowledged ack on a
// work-queue stream, else a delete by sequence, then an ack.
func (s *JetStream) Delete(ctx context.Context, l *Letter) error {
	m := l.Handle().(jetstream.Msg)
	if s.workQueue {
		if err := m.DoubleAck(ctx); err != nil {
			return fmt.Errorf("ack %s: %w", l.Ref, err)
		}
		return nil
	}
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("delete %s: %w", l.Ref, err)
	}
	if err := s.stream.DeleteMsg(ctx, meta.Sequence.Stream); err != nil {
		return fmt.Errorf("delete %s: %w", l.Ref, err)
	}
	m.Ack() // it is gone: the consumer need not deliver it again
	return nil
}

package backlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/jsconsumer"
	"github.com/switchyard-dev/switchyard/router"
)

// JetStream is a backlog on a JetStream work-queue stream of its own: a
// push is a publish the server confirmed, the drain a durable pull
// consumer shared by every instance.
type JetStream struct {
	*jsconsumer.Source
	js      jetstream.JetStream
	stream  string
	subject string
}

var (
	_ router.Backlog      = (*JetStream)(nil)
	_ router.BacklogDepth = (*JetStream)(nil)
)

// durable is the name of the drain's consumer.
const durable = "switchyard"

// maxAckPending is the drain consumer's bound on entries handed out and
// not acked, every instance's together.
const maxAckPending = 1_000_000

// OpenJetStream opens target's backlog stream, creating it when it is
// missing. A stream that exists with other settings than cfg asks for is
// an error naming the setting and both values.
func OpenJetStream(ctx context.Context, js jetstream.JetStream, target string, cfg Config, log *slog.Logger) (*JetStream, error) {
	name := cfg.Stream
	if name == "" {
		name = StreamFor(target)
	}
	want := jetstream.StreamConfig{
		Name:        name,
		Description: "switchyard: the backlog of target " + target,
		Subjects:    []string{subjectFor(target)},
		// An acked entry is gone: the stream holds only what waits.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  max(1, cfg.Replicas),
		MaxBytes:  -1,
		MaxMsgs:   -1,
		// Full is an answer to the push (the delivery waits in memory),
		// never the loss of an older entry.
		Discard: jetstream.DiscardNew,
	}
	if cfg.MaxBytes > 0 {
		want.MaxBytes = int64(cfg.MaxBytes)
	}
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, name) // another instance made it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("backlog of %s: stream %s: %w", target, name, err)
	}
	if err := checkStream(target, s.CachedInfo().Config, want); err != nil {
		return nil, err
	}
	src, err := jsconsumer.Open(ctx, js, jsconsumer.Config{
		Source: "backlog:" + target, Stream: name, Subject: want.Subjects[0], Durable: durable,
		// The drain takes no more than its target has room for; entries
		// set aside (unreadable: a newer switchyard's) wait as pending acks,
		// and must not use up the consumer's allowance for the rest.
		AckWait: 30 * time.Second, MaxAckPending: maxAckPending, Batch: 10, Wait: 5 * time.Second, Raw: true,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("backlog of %s: %w", target, err)
	}
	return &JetStream{Source: src, js: js, stream: name, subject: want.Subjects[0]}, nil
}

// checkStream compares an existing stream with the settings asked for.
func checkStream(target string, have, want jetstream.StreamConfig) error {
	var errs []error
	mismatch := func(setting string, h, w any) {
		errs = append(errs, fmt.Errorf("backlog of %s: stream %s has %s %v, the config asks for %v (change the stream, or the config, to agree)", target, want.Name, setting, h, w))
	}
	if len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0] {
		mismatch("subjects", have.Subjects, want.Subjects)
	}
	if have.Retention != want.Retention {
		mismatch("retention", have.Retention, want.Retention)
	}
	if have.Storage != want.Storage {
		mismatch("storage", have.Storage, want.Storage)
	}
	if have.Replicas != want.Replicas {
		mismatch("replicas", have.Replicas, want.Replicas)
	}
	if have.MaxBytes != want.MaxBytes {
		mismatch("max_bytes", have.MaxBytes, want.MaxBytes)
	}
	if have.Discard != want.Discard {
		mismatch("discard", have.Discard, want.Discard)
	}
	if have.MaxAge != 0 {
		mismatch("max_age", have.MaxAge, "none (entries leave when delivered; retry.max_age bounds them)")
	}
	return errors.Join(errs...)
}

func (b *JetStream) String() string { return "jetstream stream " + b.stream }

// Push publishes the entry and waits for the server's confirmation.
func (b *JetStream) Push(ctx context.Context, d *router.Delivery) error {
	msg := &nats.Msg{Subject: b.subject, Data: router.EncodeEntry(d)}
	if limit := b.js.Conn().MaxPayload(); int64(len(msg.Data)) > limit {
		return router.PermanentError(fmt.Errorf("backlog %s: the entry is %d bytes, over the server's max_payload of %d", b.stream, len(msg.Data), limit))
	}
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("backlog %s: the stream does not answer: %w", b.stream, err)
		}
		return fmt.Errorf("backlog %s: %w", b.stream, err)
	}
	return nil
}

// Depth returns the stream's message count and its oldest message's time.
func (b *JetStream) Depth(ctx context.Context) (int64, time.Time, error) {
	s, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return 0, time.Time{}, err
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return 0, time.Time{}, nil
	}
	return int64(st.Msgs), st.FirstTime, nil
}

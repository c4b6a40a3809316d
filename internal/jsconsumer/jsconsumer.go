// Package jsconsumer is a router.Source on a JetStream durable pull
// consumer: messages are acked once their deliveries resolve, naked with a
// delay to retry, and kept from redelivery (in-progress acks) while their
// deliveries run. The NATS source and the HTTP source's persisted mode are
// built on it.
package jsconsumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/streak"
	"github.com/switchyard-dev/switchyard/router"
)

// Config says what to consume and how.
type Config struct {
	// Source is the source's name, for messages and logs.
	Source string
	// Stream is the stream; Subject the consumer's filter subject.
	Stream, Subject string
	// Durable is the durable consumer's name, shared by every instance.
	Durable string
	// AckWait is how long a message handed out stays unacked before the
	// server redelivers it (it is extended while deliveries run).
	AckWait time.Duration
	// Heartbeat is how often messages in flight get an in-progress ack.
	// Default AckWait/3; negative turns it off (for tests of redelivery).
	Heartbeat time.Duration
	// MaxAckPending is the most messages handed out and not yet acked.
	MaxAckPending int
	// Batch is the most messages one Receive fetches.
	Batch int
	// Wait is how long one Receive waits for a first message.
	Wait time.Duration
	// Envelope and Malformed say how payloads become events (see router).
	Envelope  router.Envelope
	Malformed string
	// DetailType is the detail-type of wrapped payloads.
	DetailType string
	// CreateStream, when set, is the stream created if Stream is missing.
	CreateStream *jetstream.StreamConfig
	// Raw hands payloads out as they are, with no event (a backlog's
	// entries).
	Raw bool
}

// Source consumes one durable consumer.
type Source struct {
	cfg Config
	js  jetstream.JetStream
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	consumer jetstream.Consumer
	inflight map[*handle]struct{}

	errs    *streak.Streak
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
}

var _ router.Source = (*Source)(nil)

// Open makes sure the stream (creating it when so configured) and the
// durable consumer exist, and starts the in-progress heartbeat.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", cfg.Source)
	s := &Source{
		cfg: cfg, js: js, log: log, now: time.Now,
		inflight: map[*handle]struct{}{},
		errs:     streak.New(log, "receive", "stream", cfg.Stream, "durable", cfg.Durable),
		closing:  make(chan struct{}),
	}
	if err := s.ensureStream(ctx); err != nil {
		return nil, err
	}
	if _, err := s.ensureConsumer(ctx); err != nil {
		return nil, err
	}
	if cfg.Heartbeat == 0 {
		s.cfg.Heartbeat = max(cfg.AckWait/3, 100*time.Millisecond)
	}
	if s.cfg.Heartbeat > 0 {
		s.wg.Go(s.heartbeat)
	}
	return s, nil
}

func (s *Source) ensureStream(ctx context.Context) error {
	_, err := s.js.Stream(ctx, s.cfg.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || s.cfg.CreateStream == nil {
		return fmt.Errorf("source %s: stream %s: %w", s.cfg.Source, s.cfg.Stream, err)
	}
	sc := *s.cfg.CreateStream
	sc.Name = s.cfg.Stream
	if _, err := s.js.CreateStream(ctx, sc); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("source %s: create stream %s for %v: %w", s.cfg.Source, s.cfg.Stream, sc.Subjects, err)
	}
	s.log.Info("created stream", "stream", s.cfg.Stream, "subjects", sc.Subjects, "retention", sc.Retention.String(), "storage", sc.Storage.String())
	return nil
}

// ensureConsumer creates or updates the durable consumer.
func (s *Source) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := s.js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       s.cfg.Durable,
		FilterSubject: s.cfg.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		// Retries, their limit and dead letters belong to the policies;
		// the server redelivers for as long as it takes.
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Keep the pull request queue bounded by the pollers we run.
		MaxWaiting: 512,
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: consumer %s on stream %s: %w", s.cfg.Source, s.cfg.Durable, s.cfg.Stream, err)
	}
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
	return c, nil
}

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Source }

// BatchSize is the most messages one Receive fetches.
func (s *Source) BatchSize() int { return s.cfg.Batch }

// Pollers is the number of receive loops: one is enough, as a fetch that
// finds messages waiting returns at once.
func (s *Source) Pollers() int { return 1 }

// Receive waits up to Wait for a first message, then takes what else is
// already waiting, up to max.
func (s *Source) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	if s.closed.Load() {
		return nil, errors.New("source " + s.cfg.Source + ": closed")
	}
	max = min(max, s.cfg.Batch)
	s.mu.Lock()
	c := s.consumer
	s.mu.Unlock()
	if c == nil {
		var err error
		if c, err = s.ensureConsumer(ctx); err != nil {
			return s.failed(ctx, err)
		}
	}
	first, err := s.fetch(ctx, c, 1, false)
	if err != nil {
		return s.failed(ctx, err)
	}
	if len(first) > 0 && max > 1 {
		more, err := s.fetch(ctx, c, max-1, true)
		if err != nil {
			s.log.Debug("fetching more failed", "error", err)
		}
		first = append(first, more...)
	}
	s.errs.Recovered()
	return first, nil
}

// failed logs and backs off a failed fetch; a consumer that is gone (an
// operator deleted it) is created again on the next Receive.
func (s *Source) failed(ctx context.Context, err error) ([]*router.Message, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// A pull to a consumer that is gone meets no responders.
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrNoResponders) {
		s.mu.Lock()
		s.consumer = nil
		s.mu.Unlock()
	}
	s.errs.Failed(ctx, s.closing, err)
	return nil, err
}

// fetch gets up to n messages: waiting up to Wait for them, or only those
// already there (noWait).
func (s *Source) fetch(ctx context.Context, c jetstream.Consumer, n int, noWait bool) ([]*router.Message, error) {
	var batch jetstream.MessageBatch
	var err error
	if noWait {
		batch, err = c.FetchNoWait(n)
	} else {
		wait := s.cfg.Wait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		// The context stops waiting at shutdown; the server's expiry is
		// what ends an idle wait.
		fctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		batch, err = c.Fetch(n, jetstream.FetchContext(fctx))
	}
	if err != nil {
		return nil, err
	}
	var out []*router.Message
	for m := range batch.Messages() {
		out = append(out, s.message(m))
	}
	err = batch.Error()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		err = nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// Shutdown: hand back what arrived; it is settled as usual.
		err = nil
	}
	return out, err
}

// message turns a JetStream message into a router message.
func (s *Source) message(m jetstream.Msg) *router.Message {
	now := s.now()
	body := m.Data()
	meta, _ := m.Metadata()
	var seq uint64
	var sent time.Time
	system := map[string]string{"Subject": m.Subject(), "Stream": s.cfg.Stream}
	redelivered := true // unless the server says otherwise
	if meta != nil {
		redelivered = meta.NumDelivered > 1
		seq, sent = meta.Sequence.Stream, meta.Timestamp
		system["StreamSequence"] = strconv.FormatUint(seq, 10)
		system["NumDelivered"] = strconv.FormatUint(meta.NumDelivered, 10)
		system["Timestamp"] = meta.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	// The stream sequence is stable across redeliveries, so the event id
	// (and every delivery id) is too.
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		id = s.cfg.Stream + ":" + strconv.FormatUint(seq, 10)
	}
	if sent.IsZero() {
		sent = now
	}
	msg, _ := s.cfg.Decode(m.Subject(), m.Headers(), body, id, sent, now, s.log)
	maps.Copy(msg.System, system)
	h := &handle{s: s, m: m, id: id}
	msg.Handle, msg.Redelivered = h, redelivered
	h.log = router.MessageIDs(msg)
	s.mu.Lock()
	s.inflight[h] = struct{}{}
	s.mu.Unlock()
	return msg
}

// Decode makes the router message that a NATS source with c's Source,
// Envelope, Malformed and DetailType hands out for a payload received on
// subject with headers h, without its handle: its attributes (the headers,
// as Headers gives them), system attributes (the subject), trace context
// (traceparent, tracestate) and event, decoded with the envelope (wrapped
// events have the source's name as source, DetailType, id as id, sent as
// time and the subject as resource). A payload that does not fit the
// envelope is handled as Malformed says (logged to log, if not nil, when
// wrapped), and the misfit returned. This source, the core NATS source and
// the dry run (switchyard route) use it.
func (c *Config) Decode(subject string, h nats.Header, body []byte, id string, sent, now time.Time, log *slog.Logger) (*router.Message, error) {
	attrs := Headers(h)
	origin := router.Origin{
		Source: c.Source, DetailType: c.DetailType, ID: id, Time: sent,
		Resources: []string{subject}, Attributes: attrs,
	}
	msg := &router.Message{
		Source: c.Source, ID: id, Body: body, Attributes: attrs, System: map[string]string{"Subject": subject}, Received: now,
		Trace: router.CleanTrace(h.Get),
	}
	if c.Raw {
		return msg, nil
	}
	err := router.DecodeMessage(msg, c.Envelope, c.Malformed, origin, log)
	return msg, err
}

// Headers flattens NATS headers into attributes (the first value of each,
// Nats- headers left out).
func Headers(h nats.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) == 0 || len(k) > 5 && k[:5] == "Nats-" {
			continue
		}
		out[k] = vs[0]
	}
	return out
}

// heartbeat tells the server, every Heartbeat, that the messages
// still in flight are being worked on, so that a slow delivery is not
// redelivered to another instance meanwhile.
func (s *Source) heartbeat() {
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.closing:
			return
		}
		s.mu.Lock()
		due := make([]*handle, 0, len(s.inflight))
		for h := range s.inflight {
			due = append(due, h)
		}
		s.mu.Unlock()
		for _, h := range due {
			if err := h.Extend(context.Background(), s.cfg.AckWait); err != nil {
				s.log.Warn("in-progress ack failed: the message may be redelivered while in flight", h.log, "error", err)
			}
		}
	}
}

// Close stops the heartbeat. Messages not yet settled are redelivered when
// their ack wait ends.
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
		return fmt.Errorf("source %s: close: %w", s.cfg.Source, ctx.Err())
	}
}

// handle settles one message.
type handle struct {
	s       *Source
	m       jetstream.Msg
	id      string
	log     slog.Attr // the message's correlation ids
	settled atomic.Bool
}

// Ack acks the message and waits for the server to confirm it.
func (h *handle) Ack(ctx context.Context) error {
	if !h.settle() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second) // DoubleAck needs a deadline
		defer cancel()
	}
	if err := h.m.DoubleAck(ctx); err != nil {
		return fmt.Errorf("source %s: ack %s: %w", h.s.cfg.Source, h.id, err)
	}
	return nil
}

// Nack asks the server to redeliver the message after the delay.
func (h *handle) Nack(_ context.Context, after time.Duration) error {
	if !h.settle() {
		return nil
	}
	var err error
	if after > 0 {
		err = h.m.NakWithDelay(after)
	} else {
		err = h.m.Nak()
	}
	if err != nil {
		return fmt.Errorf("source %s: nak %s: %w", h.s.cfg.Source, h.id, err)
	}
	return nil
}

// Extend restarts the message's ack wait (JetStream extends by the whole
// AckWait, whatever by says).
func (h *handle) Extend(_ context.Context, _ time.Duration) error {
	if h.settled.Load() {
		return nil
	}
	if err := h.m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return fmt.Errorf("source %s: in-progress %s: %w", h.s.cfg.Source, h.id, err)
	}
	return nil
}

func (h *handle) settle() bool {
	if !h.settled.CompareAndSwap(false, true) {
		return false
	}
	h.s.mu.Lock()
	delete(h.s.inflight, h)
	h.s.mu.Unlock()
	return true
}

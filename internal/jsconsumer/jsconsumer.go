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
	"slices"
	"strconv"
	"strings"
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
	// OwnStream says the stream is the source's own: an existing one is
	// held to CreateStream's settings as the consumer is to the config's.
	// (A stream the source only creates when missing may be an
	// operator's, with settings of their own.)
	OwnStream bool
	// Shared says other instances may use the stream and the consumer
	// (NATS is a cluster of its own, nats.url): existing ones are checked
	// against the config, and a difference is an error naming the setting
	// and both values, never a silent rewrite. An instance that is the
	// only one (on its embedded server) brings them to its config instead.
	Shared bool
	// Keys names the config keys behind JetStream settings, for errors
	// ("max_ack_pending": "max_in_flight"); a setting not named is its
	// own key.
	Keys map[string]string
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
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if err == nil {
		return s.checkStream(ctx, st.CachedInfo().Config)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || s.cfg.CreateStream == nil {
		return fmt.Errorf("source %s: stream %s: %w", s.cfg.Source, s.cfg.Stream, err)
	}
	sc := s.wantStream()
	st, err = s.js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another instance made it meanwhile.
		if st, err = s.js.Stream(ctx, s.cfg.Stream); err == nil {
			return s.checkStream(ctx, st.CachedInfo().Config)
		}
	}
	if err != nil {
		return fmt.Errorf("source %s: create stream %s for %v: %w", s.cfg.Source, s.cfg.Stream, sc.Subjects, err)
	}
	s.log.Info("created stream", "stream", s.cfg.Stream, "subjects", sc.Subjects, "retention", sc.Retention.String(), "storage", sc.Storage.String())
	return nil
}

func (s *Source) wantStream() jetstream.StreamConfig {
	sc := *s.cfg.CreateStream
	sc.Name = s.cfg.Stream
	return sc
}

// checkStream holds an existing stream of the source's own to the config:
// a difference is an error when the stream is shared, else the stream is
// brought to the config's settings.
func (s *Source) checkStream(ctx context.Context, have jetstream.StreamConfig) error {
	if !s.cfg.OwnStream || s.cfg.CreateStream == nil {
		return nil
	}
	want := s.wantStream()
	var d diffs
	d.add("subjects", have.Subjects, want.Subjects, slices.Equal(have.Subjects, want.Subjects))
	d.add("retention", have.Retention, want.Retention, have.Retention == want.Retention)
	d.add("storage", have.Storage, want.Storage, have.Storage == want.Storage)
	d.add("max_bytes", orNone(have.MaxBytes), orNone(want.MaxBytes), orNone(have.MaxBytes) == orNone(want.MaxBytes))
	d.add("discard", have.Discard, want.Discard, have.Discard == want.Discard)
	if len(d) == 0 {
		return nil
	}
	if s.cfg.Shared {
		return d.err(s.cfg, "stream "+s.cfg.Stream, "nats stream edit "+s.cfg.Stream)
	}
	// Only what JetStream can change in place is changed.
	up := have
	up.Subjects, up.MaxBytes, up.Discard = want.Subjects, want.MaxBytes, want.Discard
	if _, err := s.js.UpdateStream(ctx, up); err != nil {
		return fmt.Errorf("source %s: stream %s: bringing it to the config (%s): %w", s.cfg.Source, s.cfg.Stream, d, err)
	}
	s.log.Info("stream changed to the config's settings", "stream", s.cfg.Stream, "changes", d.String())
	return nil
}

// orNone shows a limit of 0 or less (none) as "none".
func orNone(n int64) any {
	if n <= 0 {
		return "none"
	}
	return n
}

// wantConsumer is the durable consumer the config asks for.
func (s *Source) wantConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
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
	}
}

// ensureConsumer creates the durable consumer when it is missing. An
// existing one is checked against the config when it is shared, else
// brought to the config's settings.
func (s *Source) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	want := s.wantConsumer()
	c, err := s.js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = s.js.CreateConsumer(ctx, s.cfg.Stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another instance made it meanwhile, with other settings.
			c, err = s.js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
		}
	}
	if err == nil {
		change, cerr := s.checkConsumer(c.CachedInfo().Config, want)
		if cerr != nil {
			return nil, cerr
		}
		if change {
			c, err = s.js.UpdateConsumer(ctx, s.cfg.Stream, want)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: consumer %s on stream %s: %w", s.cfg.Source, s.cfg.Durable, s.cfg.Stream, err)
	}
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
	return c, nil
}

// checkConsumer compares an existing consumer with the one the config asks
// for: a difference is an error when it is shared, else logged, and the
// consumer is to be changed.
func (s *Source) checkConsumer(have, want jetstream.ConsumerConfig) (change bool, err error) {
	var d diffs
	haveFilter := have.FilterSubject
	if haveFilter == "" && len(have.FilterSubjects) == 1 {
		haveFilter = have.FilterSubjects[0]
	}
	d.add("subject", haveFilter, want.FilterSubject, haveFilter == want.FilterSubject && len(have.FilterSubjects) <= 1)
	d.add("ack_wait", have.AckWait, want.AckWait, have.AckWait == want.AckWait)
	d.add("max_ack_pending", have.MaxAckPending, want.MaxAckPending, have.MaxAckPending == want.MaxAckPending)
	d.add("ack_policy", have.AckPolicy, want.AckPolicy, have.AckPolicy == want.AckPolicy)
	d.add("max_deliver", have.MaxDeliver, want.MaxDeliver, have.MaxDeliver == want.MaxDeliver)
	d.add("deliver_policy", have.DeliverPolicy, want.DeliverPolicy, have.DeliverPolicy == want.DeliverPolicy)
	d.add("max_waiting", have.MaxWaiting, want.MaxWaiting, have.MaxWaiting == want.MaxWaiting)
	if len(d) == 0 {
		return false, nil
	}
	if s.cfg.Shared {
		return false, d.err(s.cfg, "durable consumer "+s.cfg.Durable+" on stream "+s.cfg.Stream,
			"nats consumer edit "+s.cfg.Stream+" "+s.cfg.Durable+", or rm to make it again")
	}
	s.log.Info("changing the consumer to the config's settings", "stream", s.cfg.Stream, "durable", s.cfg.Durable, "changes", d.String())
	return true, nil
}

// diffs are the settings in which an existing stream or consumer differs
// from the config.
type diffs []diff

type diff struct {
	setting    string
	have, want any
}

func (d *diffs) add(setting string, have, want any, same bool) {
	if !same {
		*d = append(*d, diff{setting, have, want})
	}
}

func (d diffs) String() string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%s %v → %v", x.setting, x.have, x.want)
	}
	return strings.Join(parts, ", ")
}

// err says what differs in what, naming the config's key for each
// setting, and how to resolve it.
func (d diffs) err(cfg Config, what, fix string) error {
	parts := make([]string, len(d))
	for i, x := range d {
		key := x.setting
		if k, ok := cfg.Keys[key]; ok {
			key = k + " (" + x.setting + ")"
		}
		parts[i] = fmt.Sprintf("%s %v where this instance's config asks for %v", key, x.have, x.want)
	}
	return fmt.Errorf("source %s: %s has %s; every instance sharing it needs the same settings: change the config to agree, or, once no instance runs with the old settings, change it (%s)",
		cfg.Source, what, strings.Join(parts, ", "), fix)
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

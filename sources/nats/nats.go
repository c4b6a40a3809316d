package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/jsconsumer"
	"github.com/switchyard-dev/switchyard/internal/streak"
	"github.com/switchyard-dev/switchyard/router"
)

// Open returns the source for cfg (defaults applied, MaxAckPending
// resolved): a JetStream consumer when cfg names a stream, else a core NATS
// queue subscription. It creates the stream and the durable consumer when
// they are missing.
func Open(ctx context.Context, name string, cfg Config, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (router.Source, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.JetStream() {
		jc := consumerConfig(name, cfg)
		jc.Stream, jc.Subject, jc.Durable = cfg.Stream, cfg.Subject, cfg.DurableFor(name)
		jc.AckWait, jc.MaxAckPending, jc.Batch, jc.Wait = cfg.AckWait, cfg.MaxAckPending, cfg.Batch, 20*time.Second
		jc.Shared = cfg.Shared
		jc.CreateStream = &jetstream.StreamConfig{
			Subjects:  []string{cfg.Subject},
			Retention: jetstream.WorkQueuePolicy,
			Storage:   jetstream.FileStorage,
		}
		src, err := jsconsumer.Open(ctx, js, jc, log)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return src, nil
	}
	src, err := openCore(name, cfg, nc, log)
	if err != nil {
		return nil, err
	}
	return src, nil
}

// detailType is the detail-type of the events the source wraps payloads in.
const detailType = "NATS Message"

// consumerConfig is how both kinds of NATS source make events of payloads.
func consumerConfig(name string, cfg Config) jsconsumer.Config {
	return jsconsumer.Config{Source: name, Envelope: cfg.Envelope, Malformed: cfg.Malformed, DetailType: detailType}
}

// Decode makes the router message that the source named name with cfg
// hands out for a payload received on subject (no headers), with id as
// its message id, at now, without its handle, as jsconsumer.Config.Decode
// says; log nil logs nothing. The dry run (switchyard route) uses it.
func Decode(name string, cfg Config, subject string, body []byte, id string, now time.Time) (*router.Message, error) {
	jc := consumerConfig(name, cfg)
	return jc.Decode(subject, nil, body, id, now, now, nil)
}

// maxPendingBytes bounds the bytes of core NATS messages waiting for the
// router, whatever max_pending says.
const maxPendingBytes = 64 << 20

// Core is a core NATS queue subscription. Core NATS has no acks: a message
// is the source's once received, and one that is not delivered (at
// shutdown, or when the router falls behind by more than max_pending) is
// gone.
type Core struct {
	name  string
	cfg   Config
	sub   *nats.Subscription
	log   *slog.Logger
	start string

	mu      sync.Mutex // one Receive at a time
	seq     atomic.Uint64
	closed  atomic.Bool
	closing chan struct{}
	errs    *streak.Streak
}

func openCore(name string, cfg Config, nc *nats.Conn, log *slog.Logger) (*Core, error) {
	sub, err := nc.QueueSubscribeSync(cfg.Subject, cfg.Queue)
	if err != nil {
		return nil, fmt.Errorf("source %s: subscribe %s: %w", name, cfg.Subject, err)
	}
	// Bound what waits in memory; beyond it the client drops and counts.
	if err := sub.SetPendingLimits(cfg.MaxPending, maxPendingBytes); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	if err := nc.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("source %s: subscribe %s: %w", name, cfg.Subject, err)
	}
	log = log.With("source", name)
	return &Core{
		name: name, cfg: cfg, sub: sub, log: log,
		start:   strconv.FormatInt(time.Now().UnixNano(), 36),
		closing: make(chan struct{}),
		errs:    streak.New(log, "receive", "subject", cfg.Subject),
	}, nil
}

// Name returns the source's name.
func (c *Core) Name() string { return c.name }

// Pollers is one: a Receive takes everything already waiting.
func (c *Core) Pollers() int { return 1 }

// BatchSize is the most messages one Receive returns.
func (c *Core) BatchSize() int { return 100 }

// Dropped is how many messages the client dropped because the router fell
// behind by more than max_pending.
func (c *Core) Dropped() int {
	n, _ := c.sub.Dropped()
	return n
}

// Receive waits for a message, then takes what else is waiting, up to max.
func (c *Core) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, errors.New("source " + c.name + ": closed")
	}
	m, err := c.sub.NextMsgWithContext(ctx)
	if c.slow(err) {
		m, err = c.sub.NextMsgWithContext(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err = fmt.Errorf("source %s: %w", c.name, err)
		c.errs.Failed(ctx, c.closing, err)
		return nil, err
	}
	c.errs.Recovered()
	now := time.Now()
	out := []*router.Message{c.message(m, now)}
	waiting, _, _ := c.sub.Pending()
	for range min(max-1, waiting) {
		m, err := c.sub.NextMsg(time.Millisecond)
		if c.slow(err) {
			continue
		}
		if err != nil {
			break
		}
		out = append(out, c.message(m, now))
	}
	return out, nil
}

// slow logs, and reports, the client's notice that it dropped messages.
func (c *Core) slow(err error) bool {
	if !errors.Is(err, nats.ErrSlowConsumer) {
		return false
	}
	c.log.Warn("the router fell behind the subject: messages beyond max_pending were dropped", "dropped_total", c.Dropped(), "max_pending", c.cfg.MaxPending)
	return true
}

func (c *Core) message(m *nats.Msg, now time.Time) *router.Message {
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = c.name + ":" + c.start + ":" + strconv.FormatUint(c.seq.Add(1), 10)
	}
	jc := consumerConfig(c.name, c.cfg)
	msg, _ := jc.Decode(m.Subject, m.Header, m.Data, id, now, now, c.log)
	msg.Handle = coreHandle{c: c, id: id}
	return msg
}

// Close unsubscribes: messages the server sends after it go to the other
// members of the queue group, if any.
func (c *Core) Close(context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	close(c.closing)
	if err := c.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("source %s: unsubscribe: %w", c.name, err)
	}
	return nil
}

// coreHandle settles a core NATS message: there is nothing to settle, and
// no way to give a message back.
type coreHandle struct {
	c  *Core
	id string
}

func (coreHandle) Ack(context.Context) error { return nil }

// Nack cannot return the message: core NATS has no redelivery.
func (h coreHandle) Nack(context.Context, time.Duration) error {
	return fmt.Errorf("source %s: message %s is dropped: core NATS cannot redeliver (consume a JetStream stream for at-least-once)", h.c.name, h.id)
}

func (coreHandle) Extend(context.Context, time.Duration) error { return nil }

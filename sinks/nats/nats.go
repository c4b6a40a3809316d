package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Headers switchyard sets on every message it publishes.
const (
	HeaderDeliveryID = "Switchyard-Delivery-Id"
	HeaderEventID    = "Switchyard-Event-Id"
	HeaderRule       = "Switchyard-Rule"
	HeaderSource     = "Switchyard-Source"
)

// Sink publishes deliveries.
type Sink struct {
	name  string
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	holes bool
}

// New returns a sink for cfg on the connection.
func New(name string, cfg Config, nc *nats.Conn, js jetstream.JetStream) *Sink {
	return &Sink{name: name, cfg: cfg, nc: nc, js: js, holes: router.PlaceholderRE().MatchString(cfg.Subject)}
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// Deliver publishes one message: the payload (a dead letter's record and
// original body), with headers naming the delivery, event, rule and
// source, and the trace context as traceparent (and tracestate). With jetstream it returns once the stream has stored the
// message; a retry that the stream already has is recognised by its
// Nats-Msg-Id and not stored twice. With core NATS it returns once the
// message is written to a connected server; while disconnected, it fails
// (to be retried) rather than buffer what a crash would lose.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	subject, err := s.subject(d)
	if err != nil {
		return router.PermanentError(fmt.Errorf("nats %s: %w", s.name, err))
	}
	msg := nats.NewMsg(subject)
	msg.Data = d.Payload
	if d.DeadLetter != nil {
		msg.Data = router.DeadLetterDocument(d)
	}
	msg.Header.Set(HeaderDeliveryID, d.ID)
	msg.Header.Set(HeaderRule, d.Rule)
	if d.Message != nil {
		msg.Header.Set(HeaderSource, d.Message.Source)
		if d.Message.Event != nil {
			msg.Header.Set(HeaderEventID, d.Message.Event.ID)
		}
	}
	if tp := d.OutboundTrace(); tp.W3C() != "" {
		// NATS headers are case-sensitive: the lower-case W3C names, as
		// OpenTelemetry's NATS propagation uses.
		msg.Header.Set(router.HeaderTraceParent, tp.W3C())
		if tp.TraceState != "" && tp.TraceParent != "" {
			msg.Header.Set(router.HeaderTraceState, tp.TraceState)
		}
	}
	if d.Text && d.DeadLetter == nil {
		msg.Header.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		msg.Header.Set("Content-Type", "application/json")
	}
	if s.cfg.JetStream {
		return s.publishJS(ctx, msg, d.ID)
	}
	if !s.nc.IsConnected() {
		return router.RetryableError(fmt.Errorf("nats %s: publish %s: not connected (%s)", s.name, subject, s.nc.Status()), 0)
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("nats %s: publish %s: %w", s.name, subject, classify(err))
	}
	// Done once the server has it, not when it is in the client's buffer
	// (where a crash would lose it after its source message was acked).
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return router.RetryableError(fmt.Errorf("nats %s: publish %s: the server did not confirm: %w", s.name, subject, err), 0)
	}
	return nil
}

func (s *Sink) publishJS(ctx context.Context, msg *nats.Msg, id string) error {
	_, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err == nil {
		return nil // a duplicate is acknowledged too: the stream has it
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		// No stream captures the subject (or JetStream is not up yet).
		return router.RetryableError(fmt.Errorf("nats %s: publish %s: no JetStream stream answered for the subject: %w", s.name, msg.Subject, err), 0)
	}
	return fmt.Errorf("nats %s: publish %s: %w", s.name, msg.Subject, classify(err))
}

// subject fills the subject's placeholders; the result must be a valid
// subject with no wildcards.
func (s *Sink) subject(d *router.Delivery) (string, error) {
	if !s.holes {
		return s.cfg.Subject, nil
	}
	vars := router.DeliveryValues(d)
	var missing string
	subject := router.PlaceholderRE().ReplaceAllStringFunc(s.cfg.Subject, func(h string) string {
		name := h[1 : len(h)-1]
		v, ok := vars[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("subject placeholder <%s> has no value: the payload has no top-level field %q", missing, missing)
	}
	if err := names.CheckSubject(subject, false); err != nil {
		return "", fmt.Errorf("subject %q from %q: %w", subject, s.cfg.Subject, err)
	}
	return subject, nil
}

// JetStream error codes (nats-server's jetstream_errors) that say more
// than the HTTP-like status does.
const (
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	errCodeMemoryExceeded        jetstream.ErrorCode = 10028
	errCodeStorageExceeded       jetstream.ErrorCode = 10047
	errCodeMessageTooLarge       jetstream.ErrorCode = 10054
	errCodeStoreFailed           jetstream.ErrorCode = 10077
)

// classify says whether a failed publish is worth retrying.
func classify(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return router.PermanentError(err)
	case errors.As(err, &apiErr):
		switch {
		case apiErr.ErrorCode == errCodeMessageTooLarge,
			apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "too large"):
			return router.PermanentError(err)
		case apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "exceeded"),
			apiErr.ErrorCode == errCodeInsufficientResources,
			apiErr.ErrorCode == errCodeStorageExceeded,
			apiErr.ErrorCode == errCodeMemoryExceeded:
			// The stream is full (maximum messages or bytes, discard new)
			// or the server out of room: wait for consumers to make some.
			return router.ThrottledError(err, 0)
		case apiErr.Code == 503:
			return router.RetryableError(err, 0)
		case apiErr.Code >= 400 && apiErr.Code < 500:
			return router.PermanentError(err)
		}
	}
	// Timeouts, a lost connection, a server going away: try again.
	return router.RetryableError(err, 0)
}

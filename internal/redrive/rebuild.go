package redrive

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
	ecssource "github.com/switchyard-dev/switchyard/sources/ecs"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
	natssource "github.com/switchyard-dev/switchyard/sources/nats"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// Rebuilder makes a dead letter's delivery again as `switchyard run` made
// it: the body decoded as the source named in the record decodes what it
// receives, the payload rendered by the rule named in it (the whole event
// for a dead letter that names none), and the delivery id derived from the
// event id, the rule and the target. It is safe for concurrent use.
type Rebuilder struct {
	region  string
	sources map[string]config.Source
	table   *router.Table
	rules   map[string]int
}

// NewRebuilder returns a Rebuilder for the sources and rules of cfg.
func NewRebuilder(cfg *config.Config) (*Rebuilder, error) {
	table, err := router.NewTable(cfg.RouterRules())
	if err != nil {
		return nil, err
	}
	b := &Rebuilder{region: cfg.AWS.Region, sources: map[string]config.Source{}, table: table, rules: map[string]int{}}
	for _, s := range cfg.Sources {
		b.sources[s.Name] = s
	}
	for i, r := range table.Rules() {
		b.rules[r.Name] = i
	}
	return b, nil
}

// Delivery returns the delivery of a dead letter to target: the same id
// as the one that failed (from its record's target, or target for a dead
// letter that names none), its message, the payload its rule renders
// (text stays text), its attempts so far as Attempt (so that the new
// ones add to them) and its first error. Its retry budget and
// retry.max_age start afresh. The error says why it cannot be made: a
// source or rule the config no longer has, or a body its source refuses.
//
// A wrapped event's time is when the original message was sent, which
// the dead letter does not keep: its first attempt stands for it, to
// the second.
func (b *Rebuilder) Delivery(l *Letter, target string) (*router.Delivery, error) {
	rec := l.Record
	m, err := b.message(rec, l.Body, l.Attributes)
	if err != nil {
		return nil, err
	}
	d := &router.Delivery{Message: m, Rule: rec.Rule, Target: target, Attempt: rec.Attempts}
	if rec.FirstError != "" {
		d.FirstErr = errors.New(rec.FirstError)
	}
	if rec.Rule == "" {
		d.Payload, d.Whole = m.Event.JSON, true
	} else {
		i, ok := b.rules[rec.Rule]
		if !ok {
			return nil, fmt.Errorf("rule %q is not in the config: its payload cannot be rendered", rec.Rule)
		}
		rule := b.table.Rules()[i]
		d.Payload = b.table.Render(nil, i, m.Event)
		d.Text, d.Whole = rule.Input != nil && rule.Input.Text(), rule.Input == nil
	}
	eventID := m.Event.ID
	if eventID == "" {
		eventID = m.Source + "/" + m.ID
	}
	own := rec.Target
	if own == "" {
		own = target
	}
	d.ID = router.DeliveryID(eventID, rec.Rule, own)
	return d, nil
}

// message decodes the body as its source does.
func (b *Rebuilder) message(rec *router.DeadLetter, body []byte, attrs map[string]router.Attribute) (*router.Message, error) {
	src, ok := b.sources[rec.Source]
	if !ok {
		return nil, fmt.Errorf("source %q is not in the config: its body cannot be decoded as it was (sources: %s)", rec.Source,
			strings.Join(slices.Sorted(maps.Keys(b.sources)), ", "))
	}
	received := rec.FirstAttempt
	if received.IsZero() {
		received = rec.LastAttempt
	}
	var m *router.Message
	switch c := src.Config.(type) {
	case *sqssource.Config:
		msg := sqstypes.Message{MessageId: aws.String(rec.MessageID), Body: aws.String(string(body)), MessageAttributes: sqsAttributes(attrs)}
		m, _ = sqssource.Decode(src.Name, *c, sqssource.QueueOf(c.QueueURL, b.region), msg, received, nil)
	case *natssource.Config:
		m, _ = natssource.Decode(src.Name, *c, c.Subject, body, rec.MessageID, received)
	case *httpsource.Config:
		ms, err := httpsource.Decode(src.Name, *c, body, received, router.TraceContext{}, func() string { return rec.MessageID })
		if err != nil {
			return nil, fmt.Errorf("source %s refuses the body: %w", src.Name, err)
		}
		if len(ms) != 1 {
			return nil, fmt.Errorf("source %s: the body holds %d events, a dead letter's one", src.Name, len(ms))
		}
		m = ms[0]
	case *ecssource.Config:
		ev, err := router.ParseEvent(body, received)
		if err != nil {
			return nil, fmt.Errorf("source %s: the body is not an event: %w", src.Name, err)
		}
		m = &router.Message{Event: ev, Source: src.Name, ID: rec.MessageID, Body: body, Received: received}
	default:
		return nil, fmt.Errorf("source %s: its type %s cannot be redriven", src.Name, src.Type)
	}
	if m == nil || m.Event == nil {
		return nil, fmt.Errorf("source %s: the body cannot be decoded", src.Name)
	}
	// What the dead letter carries, for the dead letter of a redrive that
	// fails again.
	m.Malformed, m.Received = nil, time.Now()
	if len(m.Attributes) == 0 && len(rec.Attributes) > 0 {
		m.Attributes = rec.Attributes
	}
	if m.TypedAttributes == nil && len(attrs) > 0 {
		m.TypedAttributes = attrs
	}
	return m, nil
}

// sqsAttributes are attributes as an SQS message has them.
func sqsAttributes(attrs map[string]router.Attribute) map[string]sqstypes.MessageAttributeValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]sqstypes.MessageAttributeValue, len(attrs))
	for k, a := range attrs {
		out[k] = sqssink.AttributeValue(a)
	}
	return out
}

package sns

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/awstrace"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the SNS client the sink uses; *sns.Client has it. The
// client should not retry (aws.NopRetryer): the policy does.
type API interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Sink publishes each delivery to an SNS topic.
type Sink struct {
	name    string
	cfg     Config
	api     API
	fifo    bool
	subject *router.Setting
	group   *router.Setting // nil: the default group (FIFO) or none
	attrs   []attribute     // sorted by name
}

type attribute struct {
	name  string
	value *router.Setting
}

// New returns a sink for cfg, which must have passed Validate (defaults
// applied). It starts nothing.
func New(name string, cfg Config, api API) *Sink {
	topic, _ := ParseTopicARN(cfg.TopicARN)
	s := &Sink{name: name, cfg: cfg, api: api, fifo: topic.FIFO, subject: router.MustParseSetting(cfg.Subject)}
	if cfg.MessageGroupID != "" {
		s.group = router.MustParseSetting(cfg.MessageGroupID)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.MessageAttributes)) {
		s.attrs = append(s.attrs, attribute{name: k, value: router.MustParseSetting(cfg.MessageAttributes[k])})
	}
	return s
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// Deliver publishes one message: the payload as the body (a dead letter's
// as router.DeadLetterDocument), with the configured subject and
// attributes and switchyard's own, and the delivery's trace context in
// X-Ray form as the X-Amzn-Trace-Id header, which SNS continues the trace
// from. On a FIFO topic the message group is message_group_id (default:
// the source message's group, else the rule) and the deduplication id is
// the delivery id, so SNS drops a retry that comes within its 5-minute
// window.
//
// It fails for good, before calling SNS, when a setting's placeholder has
// no value or fills to something SNS refuses, and when the message and its
// attributes exceed max_message_size. SNS's answers are classified by
// classify.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	in, err := s.input(d)
	if err != nil {
		return router.PermanentError(fmt.Errorf("sns %s: %w", s.name, err))
	}
	if _, err := s.api.Publish(ctx, in, publishOptions(d)...); err != nil {
		return fmt.Errorf("sns %s: publish: %w", s.name, classify(err))
	}
	return nil
}

// input builds the Publish request for d; its error says why d cannot be
// published at all.
func (s *Sink) input(d *router.Delivery) (*sns.PublishInput, error) {
	body := d.Payload
	if d.DeadLetter != nil {
		body = router.DeadLetterDocument(d)
	}
	in := &sns.PublishInput{TopicArn: aws.String(s.cfg.TopicARN), Message: aws.String(text(body))}
	if len(body) == 0 {
		return nil, fmt.Errorf("the payload is empty, and SNS publishes no empty messages")
	}
	subject, err := s.subject.Render(d)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return nil, fmt.Errorf("subject %q: %w", clip(subject, 120), err)
		}
		in.Subject = aws.String(subject)
	}
	attrs := map[string]types.MessageAttributeValue{}
	add := func(k, v string) {
		if v != "" && len(attrs) < MaxAttributes {
			attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(text([]byte(v)))}
		}
	}
	for _, a := range s.attrs {
		v, err := a.value.Render(d)
		if err != nil {
			return nil, fmt.Errorf("message_attributes %s: %w", a.name, err)
		}
		add(a.name, v)
	}
	add("switchyard-delivery-id", d.ID)
	if m := d.Message; m != nil {
		if m.Event != nil {
			add("switchyard-event-id", m.Event.ID)
		}
		add("switchyard-rule", d.Rule)
		add("switchyard-source", m.Source)
		add("switchyard-message-id", m.ID)
	} else {
		add("switchyard-rule", d.Rule)
	}
	if len(attrs) > 0 {
		in.MessageAttributes = attrs
	}
	if n := messageSize(in); n > int(s.cfg.MaxMessageSize) {
		return nil, fmt.Errorf("the message and its attributes are %d bytes, over the topic's limit of %s (max_message_size; SNS's default is 256KiB)", n, s.cfg.MaxMessageSize)
	}
	group := ""
	switch {
	case s.group != nil:
		if group, err = s.group.Render(d); err != nil {
			return nil, fmt.Errorf("message_group_id: %w", err)
		}
		if err := names.CheckGroupID(group); err != nil {
			return nil, fmt.Errorf("message_group_id %q: %w", clip(group, 140), err)
		}
	case s.fifo:
		group = defaultGroup(d)
	}
	if group != "" {
		in.MessageGroupId = aws.String(group)
	}
	if s.fifo {
		in.MessageDeduplicationId = aws.String(d.ID)
	}
	return in, nil
}

// defaultGroup is a FIFO message's group when none is configured: the
// source message's group, else the rule, else the source; as a group id
// SNS takes (too long or odd characters would fail every delivery of the
// rule, so they are replaced).
func defaultGroup(d *router.Delivery) string {
	var g string
	if d.Message != nil {
		g = d.Message.Group
	}
	g = cmpOr(g, d.Rule)
	if g == "" && d.Message != nil {
		g = d.Message.Source
	}
	g = cmpOr(g, "switchyard")
	b := []byte(g)
	for i, c := range b {
		if c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	if len(b) > maxToken {
		b = b[:maxToken]
	}
	return string(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// messageSize is what SNS counts against MaximumMessageSize: the body's
// bytes and each attribute's name, type and value.
func messageSize(in *sns.PublishInput) int {
	n := len(aws.ToString(in.Message))
	for k, v := range in.MessageAttributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// text returns p as SNS text: p itself when it is valid UTF-8, else with
// U+FFFD for each byte that is not (SNS takes UTF-8 only).
func text(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	return strings.ToValidUTF8(string(p), "\uFFFD")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// publishOptions are the per-call options of a delivery's Publish: the
// X-Amzn-Trace-Id header, set after the SDK's recursion-detection step
// (which copies _X_AMZN_TRACE_ID), when the delivery has a trace context.
func publishOptions(d *router.Delivery) []func(*sns.Options) {
	h := d.OutboundTrace().XRayHeader()
	if h == "" {
		return nil
	}
	return []func(*sns.Options){func(o *sns.Options) {
		o.APIOptions = append(o.APIOptions, awstrace.APIOption(h))
	}}
}

// classify turns a Publish error into a delivery error: by SNS's error
// code (the model's @awsQueryError codes, which ErrorCode returns), then by
// HTTP status (429 throttled, 4xx permanent, 5xx retryable); anything
// without an answer is retryable.
func classify(err error) error { return awserr.Classify(err, publishCodes) }

// publishCodes are the errors Publish documents, and the generic ones AWS
// may answer any call with. KMS failures other than its throttling are the
// topic's key being missing, disabled, not allowed or not opted in, which
// no retry mends.
var publishCodes = awserr.Codes{
	Throttled: []string{"Throttled", "Throttling", "ThrottlingException", "KMSThrottling", "RequestThrottled"},
	Permanent: []string{"NotFound", "ResourceNotFound", "InvalidParameter", "ParameterValueInvalid", "InvalidParameterValue",
		"AuthorizationError", "InvalidSecurity", "EndpointDisabled", "PlatformApplicationDisabled",
		"KMSAccessDenied", "KMSDisabled", "KMSInvalidState", "KMSNotFound", "KMSOptInRequired",
		"ValidationException", "ValidationError", "AccessDenied", "AccessDeniedException", "MissingParameter",
		"InvalidClientTokenId", "SignatureDoesNotMatch", "MissingAuthenticationToken", "OptInRequired"},
	Retryable: []string{"InternalError", "InternalFailure", "ServiceUnavailable"},
}

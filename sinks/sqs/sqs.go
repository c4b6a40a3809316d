package sqs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the SQS client the sink uses; *sqs.Client has it. The
// client should not retry (aws.NopRetryer): the policy does.
type API interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Sink sends each delivery as an SQS message: the payload as the body, and
// attributes saying where it came from. A dead letter's body is the
// original message's body, and its attributes record why it failed.
type Sink struct {
	name string
	cfg  Config
	api  API
	fifo bool
}

// New returns a sink for cfg. It starts nothing.
func New(name string, cfg Config, api API) *Sink {
	return &Sink{name: name, cfg: cfg, api: api, fifo: strings.HasSuffix(cfg.QueueURL, ".fifo")}
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// maxErrorAttribute bounds an error string kept in an attribute.
const maxErrorAttribute = 1024

// Deliver sends one message, with the delivery's trace context in X-Ray
// form as the AWSTraceHeader system attribute. On a FIFO queue the message group is the
// source message's group (or the rule) and the deduplication id is the
// delivery id, so a retried send is not delivered twice.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	in := &sqs.SendMessageInput{
		QueueUrl:          aws.String(s.cfg.QueueURL),
		MessageBody:       aws.String(string(d.Payload)),
		MessageAttributes: Attributes(d),
	}
	if x := d.OutboundTrace().XRayHeader(); x != "" {
		in.MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
			string(types.MessageSystemAttributeNameForSendsAWSTraceHeader): {DataType: aws.String("String"), StringValue: aws.String(x)},
		}
	}
	if s.fifo {
		group := d.Message.Group
		if group == "" {
			group = d.Rule
		}
		if group == "" {
			group = d.Message.Source
		}
		in.MessageGroupId = aws.String(group)
		in.MessageDeduplicationId = aws.String(d.ID)
	}
	if _, err := s.api.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("sqs %s: send: %w", s.name, classify(err))
	}
	return nil
}

// Attributes are the message attributes of a delivery sent to SQS (at
// most 10, SQS's limit): for a dead letter its record, otherwise the
// delivery's origin.
func Attributes(d *router.Delivery) map[string]types.MessageAttributeValue {
	a := map[string]types.MessageAttributeValue{}
	str := func(k, v string) {
		if v != "" {
			if len(v) > maxErrorAttribute {
				v = v[:maxErrorAttribute]
			}
			a[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if dl := d.DeadLetter; dl != nil {
		str("switchyard-source", dl.Source)
		str("switchyard-message-id", dl.MessageID)
		str("switchyard-rule", dl.Rule)
		str("switchyard-target", dl.Target)
		a["switchyard-attempts"] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(dl.Attempts))}
		str("switchyard-first-error", dl.FirstError)
		str("switchyard-last-error", dl.LastError)
		str("switchyard-first-attempt", dl.FirstAttempt.UTC().Format(time.RFC3339Nano))
		str("switchyard-last-attempt", dl.LastAttempt.UTC().Format(time.RFC3339Nano))
		return a
	}
	str("switchyard-source", d.Message.Source)
	str("switchyard-message-id", d.Message.ID)
	str("switchyard-rule", d.Rule)
	str("switchyard-delivery-id", d.ID)
	if d.Message.Event != nil {
		str("switchyard-event-id", d.Message.Event.ID)
	}
	return a
}

// classify turns a SendMessage error into a delivery error.
func classify(err error) error { return awserr.Classify(err, sendCodes) }

var sendCodes = awserr.Codes{
	Throttled: []string{"RequestThrottled", "ThrottlingException", "KmsThrottled", "AWS.SimpleQueueService.RequestThrottled"},
	Permanent: []string{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "InvalidMessageContents", "InvalidParameterValue",
		"InvalidAttributeName", "InvalidAttributeValue", "UnsupportedOperation", "InvalidAddress", "InvalidSecurity",
		"AccessDenied", "AccessDeniedException", "KmsAccessDenied", "KmsDisabled", "KmsNotFound", "KmsInvalidState", "KmsInvalidKeyUsage",
		"MissingParameter", "InvalidParameterCombination"},
}

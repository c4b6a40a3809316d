package sqs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
//
// SQS carries text: a payload that is not valid UTF-8 (a dead letter's
// original body from NATS, say; events are UTF-8) is sent with U+FFFD for
// each invalid byte, as the SDK's encoder would write it anyway, but
// before the body's MD5 is taken, so that what is checked is what was
// sent. Characters SQS refuses (control characters other than
// tab, CR and LF; U+FFFE, U+FFFF) get its answer, InvalidMessageContents,
// which is permanent.
//
// An answer whose MD5OfMessageBody is not the body's MD5 is permanent, not
// retryable: SQS accepted the message (it has an id) and a retry would
// store another copy, yet what it stored is not what was sent, so it is
// not counted delivered either; the dead letter names the stored id.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	body := text(d.Payload)
	in := &sqs.SendMessageInput{
		QueueUrl:          aws.String(s.cfg.QueueURL),
		MessageBody:       aws.String(body),
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
	out, err := s.api.SendMessage(ctx, in, ownChecksum)
	if err != nil {
		return fmt.Errorf("sqs %s: send: %w", s.name, classify(err))
	}
	if sum := md5.Sum([]byte(body)); out.MD5OfMessageBody != nil && *out.MD5OfMessageBody != hex.EncodeToString(sum[:]) {
		return router.PermanentError(fmt.Errorf("sqs %s: send: accepted as message %s, but its MD5OfMessageBody %s is not the MD5 of the body sent (%x): not sent again, since the queue has it",
			s.name, aws.ToString(out.MessageId), *out.MD5OfMessageBody, sum))
	}
	return nil
}

// ownChecksum turns the SDK's MD5 check off for a send: Deliver makes it,
// and classifies a mismatch, which the SDK reports as an unclassified
// error (retryable) although SQS accepted the message.
func ownChecksum(o *sqs.Options) { o.DisableMessageChecksumValidation = true }

// text returns p as SQS text: p itself when it is valid UTF-8, else with
// U+FFFD for each byte that is not, as encoding/json and the SDK write it.
func text(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	return strings.Map(func(r rune) rune { return r }, string(p))
}

// attributeText makes v a string attribute value SQS accepts: at most
// maxErrorAttribute bytes, cut at a character's start, with anything SQS
// refuses (invalid UTF-8, control characters other than tab, CR and LF,
// U+FFFE, U+FFFF) replaced by U+FFFD. Attributes are switchyard's own
// record of a delivery: a target's odd error text must not make its dead
// letter undeliverable.
func attributeText(v string) string {
	if len(v) > maxErrorAttribute {
		cut := maxErrorAttribute
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return utf8.RuneError
		}
		return r // strings.Map writes U+FFFD for invalid UTF-8
	}, v)
}

// Attributes are the message attributes of a delivery sent to SQS (at
// most 10, SQS's limit): for a dead letter its record, otherwise the
// delivery's origin.
func Attributes(d *router.Delivery) map[string]types.MessageAttributeValue {
	a := map[string]types.MessageAttributeValue{}
	str := func(k, v string) {
		if v != "" {
			a[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(attributeText(v))}
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

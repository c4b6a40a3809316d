package sqs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/names"
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
	name  string
	cfg   Config
	api   API
	fifo  bool
	group *router.Setting // message_group_id; nil: the default group
}

// New returns a sink for cfg. It starts nothing.
func New(name string, cfg Config, api API) *Sink {
	s := &Sink{name: name, cfg: cfg, api: api, fifo: strings.HasSuffix(cfg.QueueURL, ".fifo")}
	if cfg.MessageGroupID != "" {
		s.group = router.MustParseSetting(cfg.MessageGroupID)
	}
	return s
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
		if s.group != nil {
			var err error
			if group, err = s.group.Render(d); err != nil {
				return router.PermanentError(fmt.Errorf("sqs %s: message_group_id: %w", s.name, err))
			}
			if err := names.CheckGroupID(group); err != nil {
				return router.PermanentError(fmt.Errorf("sqs %s: message_group_id: %w", s.name, err))
			}
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

// maxAttributes is SQS's limit of message attributes on a message.
const maxAttributes = 10

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
// most 10, SQS's limit). A delivery carries its origin: switchyard-source,
// -message-id, -rule, -delivery-id and -event-id. A dead letter carries
// the original message's attributes as they came (String, Number and
// Binary, custom labels kept), then its record: as the nine attributes
// switchyard-source, -message-id, -rule, -target, -attempts, -first-error,
// -last-error, -first-attempt and -last-attempt when they fit beside them
// (the original had at most one and none was left out), otherwise as one,
// switchyard-dead-letter, holding the record as JSON (router.DeadLetter's
// fields, without attributes, and dropped_attributes). Of the original's
// attributes, those named switchyard-* (an earlier hop's record) give way
// to the dead letter's own; those SQS would refuse (a NATS header's name
// with characters SQS does not allow, an empty value) and, beyond nine,
// those last by name are left out and named in dropped_attributes.
func Attributes(d *router.Delivery) map[string]types.MessageAttributeValue {
	a := map[string]types.MessageAttributeValue{}
	str := func(k, v string) {
		if v != "" {
			a[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(attributeText(v))}
		}
	}
	if dl := d.DeadLetter; dl != nil {
		var orig map[string]router.Attribute
		if d.Message != nil {
			orig = d.Message.MessageAttributes()
		} else {
			orig = (&router.Message{Attributes: dl.Attributes}).MessageAttributes()
		}
		var dropped []string
		for _, k := range slices.Sorted(maps.Keys(orig)) {
			v := orig[k]
			switch {
			case strings.HasPrefix(k, "switchyard-"):
				continue
			case !validAttribute(k, v) || len(a) == maxAttributes-1:
				dropped = append(dropped, k)
				continue
			}
			a[k] = AttributeValue(v)
		}
		if len(a) > 1 || len(dropped) > 0 {
			rec := struct {
				router.DeadLetter
				Dropped []string `json:"dropped_attributes,omitempty"`
			}{DeadLetter: *dl, Dropped: dropped}
			rec.Attributes = nil
			rec.FirstError, rec.LastError = attributeText(rec.FirstError), attributeText(rec.LastError)
			rec.FirstAttempt, rec.LastAttempt = rec.FirstAttempt.UTC(), rec.LastAttempt.UTC()
			b, _ := json.Marshal(rec)
			a["switchyard-dead-letter"] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(string(b))}
			return a
		}
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

// validAttribute reports whether SQS accepts a message attribute: a name
// of at most 256 letters, digits, '_', '-' and '.', not starting with AWS.
// or Amazon., with no leading, trailing or doubled '.'; a type of String,
// Number or Binary (with a label); a non-empty value of valid characters.
func validAttribute(name string, a router.Attribute) bool {
	if name == "" || len(name) > 256 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	base, _, _ := strings.Cut(a.DataType, ".")
	switch base {
	case "Binary":
		return len(a.BinaryValue) > 0
	case "String", "Number":
		if a.StringValue == "" || !utf8.ValidString(a.StringValue) {
			return false
		}
		for _, r := range a.StringValue {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0xD800 && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
				return false
			}
		}
		return true
	}
	return false
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

// AttributeValue is a as an SQS message attribute: a String or Number as
// its text, a Binary as its bytes, with its data type (labels kept).
func AttributeValue(a router.Attribute) types.MessageAttributeValue {
	v := types.MessageAttributeValue{DataType: aws.String(a.DataType)}
	if a.IsBinary() {
		v.BinaryValue = a.BinaryValue
	} else {
		v.StringValue = aws.String(a.StringValue)
	}
	return v
}

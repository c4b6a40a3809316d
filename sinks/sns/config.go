// Package sns is the SNS target: it publishes each delivery to a topic.
package sns

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: sns`.
type Config struct {
	// TopicARN is the topic to publish to,
	// arn:PARTITION:sns:REGION:ACCOUNT:NAME; a name ending .fifo is a FIFO
	// topic. Required.
	TopicARN string `yaml:"topic_arn"`
	// Subject is the message's subject, which email subscriptions show and
	// SNS puts in the JSON it delivers to other endpoints. It may hold
	// placeholders, as message_attributes' values. Once filled it must be
	// under 100 characters with no line breaks or other control
	// characters, or the delivery fails for good; one that fills to
	// nothing is left out. Default: none.
	Subject string `yaml:"subject"`
	// MessageAttributes are String message attributes added to each
	// message, name → value. Values may hold placeholders: <name> for a
	// top-level field of the payload or switchyard.delivery-id,
	// switchyard.event-id, switchyard.rule; <$.path> for a JSON path into
	// the event (<$.detail.orderId>). A placeholder with no value fails the
	// delivery for good; a value that fills to nothing leaves its attribute
	// out (SNS takes no empty values). Names are SNS's: up to 256 letters,
	// digits, '_', '-' and '.', not starting with AWS., Amazon. or
	// switchyard- (switchyard's own). At most 10, SNS's limit; switchyard
	// adds switchyard-delivery-id, -event-id, -rule, -source and
	// -message-id, in that order, while fewer than 10 are set. Default:
	// none.
	MessageAttributes map[string]string `yaml:"message_attributes"`
	// MessageGroupID is the message group on a FIFO topic, where messages
	// of a group are delivered in order; placeholders as in
	// message_attributes. It must fill to 1 to 128 letters, digits and
	// punctuation, or the delivery fails for good. Default on a FIFO topic:
	// the source message's group (an SQS FIFO MessageGroupId), else the
	// rule's name. On a standard topic SNS passes it to SQS subscriptions
	// (fair queues) only; default there: none. The deduplication id is the
	// delivery id, on FIFO topics only: a retry within SNS's 5-minute
	// deduplication window is not published twice.
	MessageGroupID string `yaml:"message_group_id"`
	// MaxMessageSize is the topic's MaximumMessageSize: a message whose
	// body and attributes are larger fails for good before it is sent.
	// 1KiB to 1MiB. Default 256KiB, SNS's default.
	MaxMessageSize size.Bytes `yaml:"max_message_size"`
}

// DefaultMaxMessageSize is the default of Config.MaxMessageSize.
const DefaultMaxMessageSize = 256 * size.KiB

// MaxAttributes is SNS's limit of message attributes on a message.
const MaxAttributes = 10

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
}

// Topic is an SNS topic, from its ARN.
type Topic struct {
	Partition, Region, Account, Name string
	// FIFO is whether the name ends .fifo.
	FIFO bool
}

// ParseTopicARN takes apart an SNS topic ARN,
// arn:PARTITION:sns:REGION:ACCOUNT:NAME, where NAME has 1 to 256 letters,
// digits, '-' and '_', and .fifo at the end for a FIFO topic.
func ParseTopicARN(arn string) (Topic, error) {
	if arn == "" {
		return Topic{}, errors.New("required (the topic's ARN, arn:aws:sns:REGION:ACCOUNT:NAME)")
	}
	f := strings.Split(arn, ":")
	if len(f) != 6 || f[0] != "arn" || !strings.HasPrefix(f[1], "aws") || f[2] != "sns" {
		return Topic{}, fmt.Errorf("%q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", arn)
	}
	if !names.IsRegion(f[3]) {
		return Topic{}, fmt.Errorf("%q is not an SNS topic ARN: %q is not a region", arn, f[3])
	}
	if len(f[4]) != 12 || strings.Trim(f[4], "0123456789") != "" {
		return Topic{}, fmt.Errorf("%q is not an SNS topic ARN: the account %q is not 12 digits", arn, f[4])
	}
	name := f[5]
	base, fifo := strings.CutSuffix(name, ".fifo")
	if base == "" || len(name) > 256 || strings.ContainsFunc(base, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return Topic{}, fmt.Errorf("%q is not an SNS topic ARN: a topic name has 1 to 256 letters, digits, '-' and '_' (and .fifo at the end for a FIFO topic)", arn)
	}
	return Topic{Partition: f[1], Region: f[3], Account: f[4], Name: name, FIFO: fifo}, nil
}

// Validate checks the topic ARN, the templates, the attribute names and
// the size limit.
func (c *Config) Validate() error {
	var errs []error
	if _, err := ParseTopicARN(c.TopicARN); err != nil {
		errs = append(errs, router.Fieldf("topic_arn", "%v", err))
	}
	if st, err := router.ParseSetting(c.Subject); err != nil {
		errs = append(errs, router.Fieldf("subject", "%v", err))
	} else if err := checkSubject(st.Literal("")); err != nil {
		errs = append(errs, router.Fieldf("subject", "%v", err))
	}
	if len(c.MessageAttributes) > MaxAttributes {
		errs = append(errs, router.Fieldf("message_attributes", "%d attributes exceed SNS's limit of %d", len(c.MessageAttributes), MaxAttributes))
	}
	for _, k := range slices.Sorted(maps.Keys(c.MessageAttributes)) {
		if err := checkAttributeName(k); err != nil {
			errs = append(errs, router.Fieldf("message_attributes", "%v", err))
		}
		if _, err := router.ParseSetting(c.MessageAttributes[k]); err != nil {
			errs = append(errs, router.Fieldf("message_attributes", "%s: %v", k, err))
		}
	}
	if c.MessageGroupID != "" {
		if st, err := router.ParseSetting(c.MessageGroupID); err != nil {
			errs = append(errs, router.Fieldf("message_group_id", "%v", err))
		} else if err := names.CheckGroupID(st.Literal("p")); err != nil {
			// Each placeholder stands for one character: the shortest
			// value it can have and still be taken.
			errs = append(errs, router.Fieldf("message_group_id", "%v", err))
		}
	}
	if c.MaxMessageSize < size.KiB || c.MaxMessageSize > size.MiB {
		errs = append(errs, router.Fieldf("max_message_size", "%s is outside SNS's range of 1KiB to 1MiB", c.MaxMessageSize))
	}
	return errors.Join(errs...)
}

// maxSubject is the length a subject must stay under, in characters.
const maxSubject = 100

// checkSubject checks a subject as SNS does: under 100 characters, UTF-8,
// no line breaks or other control characters.
func checkSubject(s string) error {
	if n := len([]rune(s)); n >= maxSubject {
		return fmt.Errorf("%d characters: SNS takes subjects under %d", n, maxSubject)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\uFFFD' }) {
		return errors.New("SNS takes no line breaks or other control characters in a subject")
	}
	return nil
}

// checkAttributeName checks a configured message attribute's name.
func checkAttributeName(name string) error {
	lower := strings.ToLower(name)
	switch {
	case name == "" || len(name) > 256:
		return fmt.Errorf("attribute name %q: SNS takes 1 to 256 characters", name)
	case strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon."):
		return fmt.Errorf("attribute name %q: AWS. and Amazon. are reserved by SNS", name)
	case strings.HasPrefix(lower, "switchyard-"):
		return fmt.Errorf("attribute name %q: switchyard- is reserved for switchyard's own attributes", name)
	case name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, ".."):
		return fmt.Errorf("attribute name %q: SNS takes no '.' at the start or end, nor two in a row", name)
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}):
		return fmt.Errorf("attribute name %q: SNS takes letters, digits, '_', '-' and '.'", name)
	}
	return nil
}

// maxToken is the longest group id SNS takes.
const maxToken = 128

// checkToken checks a message group id: 1 to 128 ASCII letters, digits
// and punctuation.

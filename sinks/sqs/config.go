// Package sqs is the SQS target: it sends each delivery as a message, and is
// what dead letters and forwarding use.
package sqs

import (
	"errors"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: sqs`.
type Config struct {
	// QueueURL is the queue to send to. Required.
	QueueURL string `yaml:"queue_url"`
	// MessageGroupID is the message group on a FIFO queue (.fifo), with
	// placeholders of the payload (<name>) or the event (<$.detail.id>); it
	// must fill to 1 to 128 letters, digits and punctuation, or the
	// delivery fails for good. Default: the source message's group (an SQS
	// FIFO MessageGroupId), else the rule's name. FIFO queues only.
	MessageGroupID string `yaml:"message_group_id"`
}

// SetDefaults does nothing: the queue is required, the group has a
// default of its own per delivery.
func (c *Config) SetDefaults() {}

// Validate checks the queue URL and the message group.
func (c *Config) Validate() error {
	var errs []error
	if _, err := names.ParseQueueURL(c.QueueURL); err != nil {
		errs = append(errs, router.Fieldf("queue_url", "%v", err))
	}
	if c.MessageGroupID != "" {
		st, err := router.ParseSetting(c.MessageGroupID)
		switch {
		case err != nil:
			errs = append(errs, router.Fieldf("message_group_id", "%v", err))
		case !strings.HasSuffix(c.QueueURL, ".fifo"):
			errs = append(errs, router.Fieldf("message_group_id", "a standard queue has no message groups: it is for FIFO queues (.fifo) only"))
		default:
			// Each placeholder stands for one character: the shortest value
			// it can have and still be taken.
			if err := names.CheckGroupID(st.Literal("p")); err != nil {
				errs = append(errs, router.Fieldf("message_group_id", "%v", err))
			}
		}
	}
	return errors.Join(errs...)
}

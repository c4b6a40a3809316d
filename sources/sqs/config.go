// Package sqs is the SQS source: it long-polls a queue and hands its
// messages to the router, deleting each only once every delivery it
// produced has resolved.
package sqs

import (
	"errors"
	"time"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: sqs`.
type Config struct {
	// QueueURL is the queue to consume. Required.
	QueueURL string `yaml:"queue_url"`
	// Envelope says how message bodies become events. Default auto.
	Envelope router.Envelope `yaml:"envelope"`
	// MaxMessages is how many messages one receive asks for, 1 to 10.
	// Default 10.
	MaxMessages int `yaml:"max_messages"`
	// WaitTime is the long-poll wait of one receive, at most 20s.
	// Default 20s.
	WaitTime time.Duration `yaml:"wait_time"`
	// VisibilityTimeout is how long a received message stays invisible; it
	// is extended while the message's deliveries are still running, so it
	// bounds how soon a crashed instance's messages reappear. Default 60s.
	VisibilityTimeout time.Duration `yaml:"visibility_timeout"`
	// Pollers is how many receive loops run at once. Default 1.
	Pollers int `yaml:"pollers"`
	// Malformed says what happens to a body that does not fit the
	// envelope: wrap (it becomes an event whose detail is the body) or
	// dead_letter (it goes to DeadLetter). Default wrap.
	Malformed string `yaml:"malformed"`
	// DeadLetter names the target that receives malformed bodies.
	DeadLetter string `yaml:"dead_letter"`

	// Raw hands bodies out as they are, with no event (a target's backlog
	// queue, whose bodies are backlog entries). Not a key of the file.
	Raw bool `yaml:"-"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Envelope == "" {
		c.Envelope = router.EnvelopeAuto
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = 10
	}
	if c.WaitTime == 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = 60 * time.Second
	}
	if c.Pollers == 0 {
		c.Pollers = 1
	}
	if c.Malformed == "" {
		c.Malformed = router.MalformedWrap
	}
}

// DeadLetterTarget names the target malformed bodies go to, if any.
func (c *Config) DeadLetterTarget() string {
	if c.Malformed == router.MalformedDeadLetter {
		return c.DeadLetter
	}
	return ""
}

// Validate checks the fields against SQS's limits.
func (c *Config) Validate() error {
	var errs []error
	if _, err := names.ParseQueueURL(c.QueueURL); err != nil {
		errs = append(errs, router.Fieldf("queue_url", "%v", err))
	}
	if c.MaxMessages < 1 || c.MaxMessages > 10 {
		errs = append(errs, router.Fieldf("max_messages", "%d is outside SQS's range of 1 to 10", c.MaxMessages))
	}
	if c.WaitTime < 0 || c.WaitTime > 20*time.Second {
		errs = append(errs, router.Fieldf("wait_time", "%s exceeds the SQS long-poll maximum of 20s", c.WaitTime))
	}
	if c.VisibilityTimeout < time.Second || c.VisibilityTimeout > 12*time.Hour {
		errs = append(errs, router.Fieldf("visibility_timeout", "%s is outside SQS's range of 1s to 12h", c.VisibilityTimeout))
	}
	if c.Pollers < 1 || c.Pollers > 64 {
		errs = append(errs, router.Fieldf("pollers", "%d is outside the range of 1 to 64", c.Pollers))
	}
	errs = append(errs, router.CheckMalformed(c.Envelope, c.Malformed, c.DeadLetter))
	return errors.Join(errs...)
}

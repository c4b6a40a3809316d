// Package nats is the NATS source: a JetStream durable consumer, or a core
// NATS subscription with a queue group.
package nats

import (
	"errors"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: nats`.
type Config struct {
	// Subject is the subject, or JetStream filter subject, to consume.
	// Required.
	Subject string `yaml:"subject"`
	// Stream is the JetStream stream; empty means core NATS.
	Stream string `yaml:"stream"`
	// Durable is the JetStream durable consumer name. Default switchyard.
	Durable string `yaml:"durable"`
	// Queue is the queue group for core NATS. Default switchyard.
	Queue string `yaml:"queue"`
	// Envelope says how payloads become events. Default auto.
	Envelope router.Envelope `yaml:"envelope"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Stream != "" && c.Durable == "" {
		c.Durable = "switchyard"
	}
	if c.Stream == "" && c.Queue == "" {
		c.Queue = "switchyard"
	}
	if c.Envelope == "" {
		c.Envelope = router.EnvelopeAuto
	}
}

// Validate checks the subject and names.
func (c *Config) Validate() error {
	var errs []error
	if err := names.CheckSubject(c.Subject, true); err != nil {
		errs = append(errs, router.Fieldf("subject", "%v", err))
	}
	if c.Stream != "" && strings.ContainsAny(c.Stream, " \t.*>/\\") {
		errs = append(errs, router.Fieldf("stream", "stream names may not contain spaces, ., *, >, / or \\"))
	}
	if c.Durable != "" && strings.ContainsAny(c.Durable, " \t.*>/\\") {
		errs = append(errs, router.Fieldf("durable", "consumer names may not contain spaces, ., *, >, / or \\"))
	}
	if c.Stream != "" && c.Queue != "" {
		errs = append(errs, router.Fieldf("queue", "queue groups are for core NATS; a JetStream durable is already shared"))
	}
	return errors.Join(errs...)
}

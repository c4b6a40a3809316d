// Package nats is the NATS target: it publishes each delivery to a subject,
// with core NATS or, for at-least-once into a stream, with JetStream.
package nats

import (
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: nats`.
type Config struct {
	// Subject is where deliveries are published. Required. It may hold
	// <name> placeholders: the top-level fields of the delivery's payload,
	// and <switchyard.rule>, <switchyard.event-id> and
	// <switchyard.delivery-id>.
	Subject string `yaml:"subject"`
	// JetStream publishes through JetStream: the stream that captures the
	// subject acknowledges each message, and de-duplicates retries by
	// their delivery id (Nats-Msg-Id). Default false: core NATS, where a
	// publish is done once the server has it.
	JetStream bool `yaml:"jetstream"`
}

// SetDefaults does nothing: the defaults are the zero values.
func (c *Config) SetDefaults() {}

// Validate checks the subject, with its placeholders standing for a token.
func (c *Config) Validate() error {
	if c.Subject == "" {
		return router.Fieldf("subject", "required")
	}
	if err := names.CheckSubject(router.PlaceholderRE().ReplaceAllString(c.Subject, "p"), false); err != nil {
		return router.Fieldf("subject", "%v", err)
	}
	return nil
}

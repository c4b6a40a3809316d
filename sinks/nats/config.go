// Package nats is the NATS target: it publishes each delivery to a subject,
// through JetStream when the subject belongs to a stream.
package nats

import (
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: nats`.
type Config struct {
	// Subject is where deliveries are published. Required.
	Subject string `yaml:"subject"`
}

// SetDefaults does nothing: the one field is required.
func (c *Config) SetDefaults() {}

// Validate checks the subject.
func (c *Config) Validate() error {
	if err := names.CheckSubject(c.Subject, false); err != nil {
		return router.Fieldf("subject", "%v", err)
	}
	return nil
}

// Package sqs is the SQS target: it sends each delivery as a message, and is
// what dead letters and forwarding use.
package sqs

import (
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: sqs`.
type Config struct {
	// QueueURL is the queue to send to. Required.
	QueueURL string `yaml:"queue_url"`
}

// SetDefaults does nothing: the one field is required.
func (c *Config) SetDefaults() {}

// Validate checks the queue URL.
func (c *Config) Validate() error {
	if _, err := names.ParseQueueURL(c.QueueURL); err != nil {
		return router.Fieldf("queue_url", "%v", err)
	}
	return nil
}

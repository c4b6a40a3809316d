// Package nats is the NATS source: a JetStream durable consumer, or a core
// NATS subscription with a queue group.
package nats

import (
	"errors"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: nats`.
type Config struct {
	// Subject is the subject, or JetStream filter subject, to consume.
	// Required.
	Subject string `yaml:"subject"`
	// Stream is the JetStream stream; empty means core NATS. A stream that
	// does not exist is created (a file-backed work queue on Subject).
	Stream string `yaml:"stream"`
	// Durable is the JetStream durable consumer name, shared by every
	// instance of switchyard that consumes the stream. Default: the
	// source's name.
	Durable string `yaml:"durable"`
	// AckWait is how long a message handed out may go unacked before the
	// server redelivers it; switchyard extends it while deliveries run, so
	// it bounds how soon a crashed instance's messages come back.
	// JetStream only. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending is the most messages handed out and not yet acked.
	// JetStream only. Default: the file's max_in_flight.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Shared says other instances may use the durable (nats.url is set):
	// an existing one with other settings is an error, not brought to
	// this config's. Not a key of the file.
	Shared bool `yaml:"-"`
	// Batch is the most messages one fetch takes. JetStream only.
	// Default 100.
	Batch int `yaml:"batch"`
	// Queue is the queue group for core NATS. Default switchyard.
	Queue string `yaml:"queue"`
	// MaxPending is how many core NATS messages may wait for the router
	// before further ones are dropped (and counted). Core NATS only.
	// Default 10000.
	MaxPending int `yaml:"max_pending"`
	// Envelope says how payloads become events. Default auto.
	Envelope router.Envelope `yaml:"envelope"`
	// Malformed says what happens to a payload that does not fit the
	// envelope: wrap or dead_letter. Default wrap.
	Malformed string `yaml:"malformed"`
	// DeadLetter names the target that receives malformed payloads.
	DeadLetter string `yaml:"dead_letter"`
}

// JetStream reports whether the source consumes a stream.
func (c *Config) JetStream() bool { return c.Stream != "" }

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.JetStream() {
		if c.AckWait == 0 {
			c.AckWait = 30 * time.Second
		}
		if c.Batch == 0 {
			c.Batch = 100
		}
	} else {
		if c.Queue == "" {
			c.Queue = "switchyard"
		}
		if c.MaxPending == 0 {
			c.MaxPending = 10000
		}
	}
	if c.Envelope == "" {
		c.Envelope = router.EnvelopeAuto
	}
	if c.Malformed == "" {
		c.Malformed = router.MalformedWrap
	}
}

// DurableFor is the durable consumer of the source named name: Durable,
// or the name as NATS accepts it (names.Token).
func (c *Config) DurableFor(name string) string {
	if c.Durable != "" {
		return c.Durable
	}
	return names.Token(name)
}

// DeadLetterTarget names the target malformed payloads go to, if any.
func (c *Config) DeadLetterTarget() string {
	if c.Malformed == router.MalformedDeadLetter {
		return c.DeadLetter
	}
	return ""
}

// Validate checks the subject, names and limits, and that options of one
// mode are not given in the other.
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
	if c.JetStream() {
		for _, f := range []struct {
			key string
			set bool
		}{{"queue", c.Queue != ""}, {"max_pending", c.MaxPending != 0}} {
			if f.set {
				errs = append(errs, router.Fieldf(f.key, "core NATS only; with a stream, the durable consumer is shared and bounded by max_ack_pending"))
			}
		}
		if c.AckWait < time.Second {
			errs = append(errs, router.Fieldf("ack_wait", "must be at least 1s"))
		}
		if c.MaxAckPending < 0 {
			errs = append(errs, router.Fieldf("max_ack_pending", "must be positive"))
		}
		if c.Batch < 1 || c.Batch > 1000 {
			errs = append(errs, router.Fieldf("batch", "%d is outside the range of 1 to 1000", c.Batch))
		}
	} else {
		for _, f := range []struct {
			key string
			set bool
		}{{"durable", c.Durable != ""}, {"ack_wait", c.AckWait != 0}, {"max_ack_pending", c.MaxAckPending != 0}, {"batch", c.Batch != 0}} {
			if f.set {
				errs = append(errs, router.Fieldf(f.key, "JetStream only (set stream); core NATS has no acks"))
			}
		}
		if c.MaxPending < 1 {
			errs = append(errs, router.Fieldf("max_pending", "must be at least 1"))
		}
	}
	errs = append(errs, router.CheckMalformed(c.Envelope, c.Malformed, c.DeadLetter))
	return errors.Join(errs...)
}

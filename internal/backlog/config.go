// Package backlog holds targets' backlogs: durable stores for the
// deliveries a target cannot take now (its circuit breaker is open, or too
// many of its deliveries wait), drained back into that target alone. A
// backlog is a JetStream stream (on the embedded server, or replicated on a
// NATS cluster) or an SQS queue, which outlives the loss of the whole task.
package backlog

import (
	"errors"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

// The backlog kinds.
const (
	TypeJetStream = "jetstream"
	TypeSQS       = "sqs"
)

// Config is a target's `backlog:` block.
type Config struct {
	// Type is jetstream (a JetStream stream: on the embedded server, its
	// store dir; with nats.url, the cluster) or sqs (an SQS queue, which
	// survives the loss of the task). Required.
	Type string `yaml:"type"`
	// QueueURL is the backlog's SQS queue (type sqs), a standard queue of
	// its own. Required for sqs.
	QueueURL string `yaml:"queue_url"`
	// Stream is the backlog's JetStream stream (type jetstream). Default
	// SWITCHYARD_BACKLOG_<target>.
	Stream string `yaml:"stream"`
	// Replicas is how many copies a NATS cluster keeps of the stream (type
	// jetstream, with nats.url; 1 to 5). Default 1.
	Replicas int `yaml:"replicas"`
	// MaxBytes bounds the stream (type jetstream), such as 10GiB. When it
	// is full, deliveries wait in memory, as with no backlog. Default: no
	// bound but the disk.
	MaxBytes size.Bytes `yaml:"max_bytes"`
	// MaxWaiting is how many of the target's deliveries may wait in
	// memory (for a concurrency slot, a rate token or a retry) before the
	// next ones go to the backlog; while the breaker is open, all go.
	// Default: a tenth of max_in_flight.
	MaxWaiting int `yaml:"max_waiting"`
}

// SetDefaults fills the defaults that need nothing but the block.
func (c *Config) SetDefaults() {
	if c.Type == TypeJetStream && c.Replicas == 0 {
		c.Replicas = 1
	}
}

// StreamPrefix begins the default names of backlog streams.
const StreamPrefix = "SWITCHYARD_BACKLOG_"

// StreamFor is the default stream of target's backlog.
func StreamFor(target string) string { return StreamPrefix + names.Token(target) }

// subjectFor is the subject of target's backlog stream.
func subjectFor(target string) string { return "switchyard.backlog." + names.Token(target) }

// Validate checks the block on its own.
func (c *Config) Validate() error {
	var errs []error
	switch c.Type {
	case TypeJetStream:
		if c.QueueURL != "" {
			errs = append(errs, router.Fieldf("queue_url", "only for type sqs"))
		}
		if c.Stream != "" && (strings.ContainsAny(c.Stream, " \t.*>/\\") || len(c.Stream) > 255) {
			errs = append(errs, router.Fieldf("stream", "%q is not a JetStream stream name (letters, digits, '-' and '_')", c.Stream))
		}
		if c.Replicas < 1 || c.Replicas > 5 {
			errs = append(errs, router.Fieldf("replicas", "must be 1 to 5, got %d", c.Replicas))
		}
		if c.MaxBytes < 0 {
			errs = append(errs, router.Fieldf("max_bytes", "must be positive"))
		}
	case TypeSQS:
		q, err := names.ParseQueueURL(c.QueueURL)
		switch {
		case c.QueueURL == "":
			errs = append(errs, router.Fieldf("queue_url", "required for type sqs: the backlog's own standard queue"))
		case err != nil:
			errs = append(errs, router.Fieldf("queue_url", "%v", err))
		case strings.HasSuffix(q.Name, ".fifo"):
			errs = append(errs, router.Fieldf("queue_url", "a backlog is a standard queue: ordered (FIFO) deliveries never go to a backlog"))
		}
		for key, set := range map[string]bool{"stream": c.Stream != "", "replicas": c.Replicas != 0, "max_bytes": c.MaxBytes != 0} {
			if set {
				errs = append(errs, router.Fieldf(key, "only for type jetstream"))
			}
		}
	case "":
		errs = append(errs, router.Fieldf("type", "required: jetstream or sqs"))
	default:
		errs = append(errs, router.Fieldf("type", "unknown backlog type %q (valid: jetstream, sqs)", c.Type))
	}
	if c.MaxWaiting < 0 {
		errs = append(errs, router.Fieldf("max_waiting", "must be 0 or more, got %d", c.MaxWaiting))
	}
	return errors.Join(errs...)
}

// Package ledger is the delivery ledger on a JetStream key-value bucket:
// the embedded server's file store, or a NATS cluster's (every instance of
// a fleet then shares it).
package ledger

import (
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is the `ledger:` block of the config file.
type Config struct {
	// Enabled turns the ledger on. Default true: a message that comes back
	// skips its deliveries that resolved, and the others carry their
	// attempts, age and ECS launch generation.
	Enabled *bool `yaml:"enabled"`
	// Bucket is the JetStream key-value bucket. Default switchyard_ledger.
	// Deployments that share a NATS cluster but not their deliveries (a
	// staging and a production, with the same rules and targets) each need
	// their own.
	Bucket string `yaml:"bucket"`
	// TTL is how long a record is kept after it was last written. It must
	// outlast any way a message can come back: SQS keeps a message at most
	// 14 days, so the default is 336h (14 days). A record that expired
	// leaves its delivery at-least-once, nothing worse.
	TTL time.Duration `yaml:"ttl"`
	// Replicas is how many copies a NATS cluster keeps of the bucket (1 to
	// 5; only with nats.url). Default 1; 3 on a cluster survives the loss
	// of a server.
	Replicas int `yaml:"replicas"`
}

// DefaultBucket is the default Config.Bucket.
const DefaultBucket = "switchyard_ledger"

// DefaultTTL is the default Config.TTL: SQS's longest retention.
const DefaultTTL = 14 * 24 * time.Hour

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// On reports whether the ledger is enabled (defaults applied).
func (c *Config) On() bool { return c.Enabled == nil || *c.Enabled }

// Validate checks the fields on their own.
func (c *Config) Validate() error {
	var errs []error
	if c.TTL < time.Minute {
		errs = append(errs, router.Fieldf("ttl", "%s is too short: a record must outlive every redelivery of its message (default 336h, SQS's longest retention)", c.TTL))
	}
	if !bucketRE().MatchString(c.Bucket) {
		errs = append(errs, router.Fieldf("bucket", "%q is not a key-value bucket name (letters, digits, '-' and '_')", c.Bucket))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, router.Fieldf("replicas", "must be 1 to 5, got %d", c.Replicas))
	}
	return errors.Join(errs...)
}

// bucketRE is what JetStream accepts as a bucket name.
var bucketRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`) })

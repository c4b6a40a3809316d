// Package policy wraps every target in its delivery policy: bounded
// concurrency, a token-bucket rate, a per-attempt timeout, a circuit
// breaker, retries with jittered exponential backoff, and a dead-letter
// target. This file is the policy's section of the config file.
package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is one named policy from the config file's `policies` section. The
// zero value of each field means its default, listed on the field; a target
// that names no policy gets Default().
type Config struct {
	// Concurrency bounds the target's calls in flight. Default 64.
	Concurrency int `yaml:"concurrency"`
	// Rate is a token-bucket limit on calls, such as 200/s. Default: none.
	Rate Rate `yaml:"rate"`
	// Timeout bounds each attempt. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry bounds how often and how long a delivery is retried.
	Retry Retry `yaml:"retry"`
	// Breaker configures the target's circuit breaker.
	Breaker Breaker `yaml:"breaker"`
	// DeadLetter names the target that receives deliveries that failed for
	// good. Default: none, so they are nacked back to their source.
	DeadLetter string `yaml:"dead_letter"`
	// Scope is whom Concurrency and Rate bound: instance (each switchyard
	// process on its own) or fleet (every instance sharing the NATS
	// cluster together: the rate's tokens are shared, the concurrency
	// divided among the live instances). Default instance.
	Scope string `yaml:"scope"`
}

// The values of Config.Scope.
const (
	ScopeInstance = "instance"
	ScopeFleet    = "fleet"
)

// Retry bounds the attempt loop of one delivery.
type Retry struct {
	// Attempts is the most calls made for one delivery, the first included.
	// Default 5.
	Attempts int `yaml:"attempts"`
	// Initial is the first backoff; each later one doubles, with full jitter.
	// Default 200ms.
	Initial time.Duration `yaml:"initial"`
	// Max caps a single backoff. Default 30s.
	Max time.Duration `yaml:"max"`
	// MaxAge is how long after its first attempt a delivery may still be
	// tried (waiting on an open breaker included). Default 1h.
	MaxAge time.Duration `yaml:"max_age"`
}

// Breaker configures a circuit breaker (github.com/sony/gobreaker/v2).
type Breaker struct {
	// Failures is how many consecutive failed attempts open it. Default 5.
	Failures int `yaml:"failures"`
	// Open is how long it stays open before probing. Default 30s.
	Open time.Duration `yaml:"open"`
	// HalfOpen is how many probe calls it lets through when half-open.
	// Default 1.
	HalfOpen int `yaml:"half_open"`
}

// Default returns the policy a target gets when it names none.
func Default() Config {
	var c Config
	c.SetDefaults()
	return c
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Retry.Attempts == 0 {
		c.Retry.Attempts = 5
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = 200 * time.Millisecond
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 30 * time.Second
	}
	if c.Retry.MaxAge == 0 {
		c.Retry.MaxAge = time.Hour
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.Open == 0 {
		c.Breaker.Open = 30 * time.Second
	}
	if c.Breaker.HalfOpen == 0 {
		c.Breaker.HalfOpen = 1
	}
	if c.Scope == "" {
		c.Scope = ScopeInstance
	}
}

// Validate checks the policy on its own; the config loader checks that
// DeadLetter names a target.
func (c *Config) Validate() error {
	var errs []error
	if c.Concurrency < 0 {
		errs = append(errs, router.Fieldf("concurrency", "must be at least 1, got %d", c.Concurrency))
	}
	if c.Timeout < 0 {
		errs = append(errs, router.Fieldf("timeout", "must be positive"))
	}
	if c.Retry.Attempts < 0 {
		errs = append(errs, router.Fieldf("retry.attempts", "must be at least 1, got %d", c.Retry.Attempts))
	}
	if c.Retry.Initial > c.Retry.Max {
		errs = append(errs, router.Fieldf("retry.initial", "%s is more than retry.max (%s)", c.Retry.Initial, c.Retry.Max))
	}
	if c.Breaker.Failures < 0 {
		errs = append(errs, router.Fieldf("breaker.failures", "must be at least 1, got %d", c.Breaker.Failures))
	}
	if c.Scope != ScopeInstance && c.Scope != ScopeFleet {
		errs = append(errs, router.Fieldf("scope", "%q is not a scope (valid: instance, fleet)", c.Scope))
	}
	if c.Breaker.HalfOpen < 0 {
		errs = append(errs, router.Fieldf("breaker.half_open", "must be at least 1, got %d", c.Breaker.HalfOpen))
	}
	return errors.Join(errs...)
}

// Rate is a number of events per period, written N/s, N/m, N/h or N/DURATION
// (for example 200/s, 6000/m, 1/5s). The zero Rate means unlimited.
type Rate struct {
	N   float64
	Per time.Duration
}

// PerSecond returns the rate in events per second, 0 for unlimited.
func (r Rate) PerSecond() float64 {
	if r.Per == 0 {
		return 0
	}
	return r.N / r.Per.Seconds()
}

func (r Rate) String() string {
	if r.Per == 0 {
		return "unlimited"
	}
	n := strconv.FormatFloat(r.N, 'f', -1, 64)
	switch r.Per {
	case time.Second:
		return n + "/s"
	case time.Minute:
		return n + "/m"
	case time.Hour:
		return n + "/h"
	}
	return n + "/" + r.Per.String()
}

// ParseRate parses the forms listed on Rate.
func ParseRate(s string) (Rate, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("invalid rate %q: want events per period, such as 100/s, 6000/m or 1/5s", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(n > 0) || n > 1e9 {
		return Rate{}, fmt.Errorf("invalid rate %q: the count must be a positive number", s)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hour":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("invalid rate %q: the period must be s, m, h or a duration such as 5s", s)
		}
	}
	return Rate{N: n, Per: d}, nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseRate.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

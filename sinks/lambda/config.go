// Package lambda is the Lambda target: it invokes a function with each
// delivery, synchronously or as an asynchronous event.
package lambda

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: lambda`.
type Config struct {
	// Function is the function's name, partial ARN or ARN. Required.
	Function string `yaml:"function"`
	// Invocation is request_response (wait for the result) or event
	// (asynchronous). Default request_response.
	Invocation string `yaml:"invocation"`
	// Qualifier is a version or alias to invoke. Default: none ($LATEST).
	Qualifier string `yaml:"qualifier"`
	// Batch invokes the function with several deliveries at once, in the
	// event shape of Lambda's SQS event-source mapping. Default: off.
	Batch *Batch `yaml:"batch"`
	// PermanentErrors are function errors (the errorType of the function's
	// error answer, such as ValidationError) that no retry can cure: a
	// delivery that meets one is dead-lettered at once. Other function
	// errors are retried. request_response only.
	PermanentErrors []string `yaml:"permanent_errors"`
}

// Batch configures batch mode.
type Batch struct {
	// Size is the most records in one invocation, 1 to 10000. Default 10.
	Size int `yaml:"size"`
	// Window is how long the first delivery waits for others, at most 5m.
	// Default 0: whatever is waiting goes at once.
	Window time.Duration `yaml:"window"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Invocation == "" {
		c.Invocation = "request_response"
	}
	if c.Batch != nil && c.Batch.Size == 0 {
		c.Batch.Size = 10
	}
}

// Validate checks the function name and invocation type.
func (c *Config) Validate() error {
	var errs []error
	q, err := names.CheckFunction(c.Function)
	switch {
	case err != nil:
		errs = append(errs, router.Fieldf("function", "%v", err))
	case q != "" && c.Qualifier != "" && q != c.Qualifier:
		errs = append(errs, router.Fieldf("qualifier", "%q conflicts with the function's own qualifier %q; keep one", c.Qualifier, q))
	}
	if c.Invocation != "request_response" && c.Invocation != "event" {
		errs = append(errs, router.Fieldf("invocation", "unknown invocation %q (valid: request_response, event)", c.Invocation))
	}
	seen := map[string]bool{}
	for i, e := range c.PermanentErrors {
		switch {
		case strings.TrimSpace(e) == "":
			errs = append(errs, router.Fieldf(fmt.Sprintf("permanent_errors[%d]", i), "empty: want an errorType, such as ValidationError"))
		case seen[e]:
			errs = append(errs, router.Fieldf(fmt.Sprintf("permanent_errors[%d]", i), "%q is listed twice", e))
		}
		seen[e] = true
	}
	if len(c.PermanentErrors) > 0 && c.Invocation == "event" {
		errs = append(errs, router.Fieldf("permanent_errors", "needs invocation: request_response: an event invocation has no answer to read an error from"))
	}
	if b := c.Batch; b != nil {
		if b.Size < 1 || b.Size > 10000 {
			errs = append(errs, router.Fieldf("batch.size", "%d is outside the range of 1 to 10000", b.Size))
		}
		if b.Window < 0 || b.Window > 5*time.Minute {
			errs = append(errs, router.Fieldf("batch.window", "%s is outside the range of 0 to 5m", b.Window))
		}
		if c.Invocation == "event" {
			errs = append(errs, router.Fieldf("batch", "batch mode needs invocation: request_response, to read which records failed"))
		}
	}
	return errors.Join(errs...)
}

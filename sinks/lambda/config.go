// Package lambda is the Lambda target: it invokes a function with each
// delivery, synchronously or as an asynchronous event.
package lambda

import (
	"errors"

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
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Invocation == "" {
		c.Invocation = "request_response"
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
	return errors.Join(errs...)
}

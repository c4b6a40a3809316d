// Package stepfunctions is the Step Functions target: it starts an
// execution of a state machine with each delivery, named after the
// delivery so that a retry never starts a second one.
package stepfunctions

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// The values of Config.Mode.
const (
	// ModeStandard starts each execution with StartExecution and counts the
	// delivery done once it has started.
	ModeStandard = "standard"
	// ModeExpressSync runs each execution of an Express workflow with
	// StartSyncExecution and counts the delivery done when it succeeded.
	ModeExpressSync = "express_sync"
)

// MaxNamePrefix is the longest name_prefix: an execution name has at most
// 80 characters, and the delivery's part of it 32.
const MaxNamePrefix = 80 - 32

// Config is a target of `type: stepfunctions`.
type Config struct {
	// StateMachine is the state machine's ARN,
	// arn:aws:states:REGION:ACCOUNT:stateMachine:NAME. Required.
	StateMachine string `yaml:"state_machine"`
	// Mode is standard (StartExecution: delivered once the execution has
	// started) or express_sync (StartSyncExecution of an Express workflow:
	// delivered once it has succeeded). Default standard.
	Mode string `yaml:"mode"`
	// NamePrefix starts every execution's name, before the delivery id: at
	// most 48 letters, digits, '-' and '_'. Default: none.
	NamePrefix string `yaml:"name_prefix"`
	// PermanentErrors are the error names (a Fail state's Error,
	// States.TaskFailed, States.Timeout...) of express_sync executions that
	// go to the dead letter at once; other failed executions are retried.
	// Default: none.
	PermanentErrors []string `yaml:"permanent_errors"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeStandard
	}
}

var prefixRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Za-z_-]*$`) })

// Validate checks the state machine ARN, the mode, the name prefix and the
// error names.
func (c *Config) Validate() error {
	var errs []error
	if _, err := names.ParseStateMachineARN(c.StateMachine); err != nil {
		errs = append(errs, router.Fieldf("state_machine", "%v", err))
	}
	if c.Mode != ModeStandard && c.Mode != ModeExpressSync {
		errs = append(errs, router.Fieldf("mode", "unknown mode %q (valid: %s, %s)", c.Mode, ModeStandard, ModeExpressSync))
	}
	if len(c.NamePrefix) > MaxNamePrefix || !prefixRE().MatchString(c.NamePrefix) {
		errs = append(errs, router.Fieldf("name_prefix", "want at most %d letters, digits, '-' or '_' (execution names are at most 80 characters, and the delivery id takes 32)", MaxNamePrefix))
	}
	if len(c.PermanentErrors) > 0 && c.Mode == ModeStandard {
		errs = append(errs, router.Fieldf("permanent_errors", "needs mode: %s: in mode %s the delivery is done once the execution has started, and its outcome is not waited for", ModeExpressSync, ModeStandard))
	}
	for i, e := range c.PermanentErrors {
		switch {
		case e == "":
			errs = append(errs, router.Fieldf(fmt.Sprintf("permanent_errors[%d]", i), "empty error name (is an environment variable unset?)"))
		case slices.Index(c.PermanentErrors, e) < i:
			errs = append(errs, router.Fieldf(fmt.Sprintf("permanent_errors[%d]", i), "%q is listed twice", e))
		}
	}
	return errors.Join(errs...)
}

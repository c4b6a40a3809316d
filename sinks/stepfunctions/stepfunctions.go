package stepfunctions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the Step Functions client the sink uses; *sfn.Client
// has it. The client should not retry (aws.NopRetryer): the policy does.
type API interface {
	StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StartSyncExecution(context.Context, *sfn.StartSyncExecutionInput, ...func(*sfn.Options)) (*sfn.StartSyncExecutionOutput, error)
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// MaxInput is Step Functions' limit on an execution's input: 256 KiB of
// UTF-8.
const MaxInput = 256 << 10

// maxTraceHeader is the longest traceHeader Step Functions accepts.
const maxTraceHeader = 256

// Sink starts an execution of a state machine with each delivery. It
// keeps no state between deliveries: Deliver is safe for concurrent use.
type Sink struct {
	name    string
	cfg     Config
	api     API
	machine names.StateMachine
}

// New returns a sink for cfg, which must be valid (defaults applied). It
// starts nothing.
func New(name string, cfg Config, api API) *Sink {
	m, _ := names.ParseStateMachineARN(cfg.StateMachine)
	return &Sink{name: name, cfg: cfg, api: api, machine: m}
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// Deliver starts one execution whose input is the delivery's payload (a
// text payload as a JSON string, a dead letter as
// router.DeadLetterDocument) and whose name is name_prefix and the
// delivery id, the same for every attempt. The delivery's trace context
// (OutboundTrace) goes as the traceHeader, in X-Ray form. An input over
// MaxInput is a permanent failure, found before any call.
//
// In mode standard the delivery is done once the execution has started.
// Step Functions answers a start with the name and input of a running
// execution with that execution, and ExecutionAlreadyExists when it has
// ended or its input differs: then DescribeExecution tells the two apart,
// and an execution with this delivery's input (a start whose answer was
// lost, a redelivered message) counts as delivered, while one with another
// input is a permanent failure naming it. Step Functions keeps names 90
// days.
//
// In mode express_sync the execution runs to its end within the call: it
// is delivered when it succeeded; when it failed or timed out, the
// failure is retryable, or permanent when its error (States.Timeout for a
// timeout that names none) is one of permanent_errors. Express executions
// are not idempotent: a retry after an answer that was lost runs the
// workflow again, under the same name.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	input := router.JSONPayload(d)
	if len(input) > MaxInput {
		return router.PermanentError(fmt.Errorf("stepfunctions %s: the input is %d bytes, over Step Functions' limit of %d bytes (256 KiB): not sent", s.name, len(input), MaxInput))
	}
	name := ExecutionName(s.cfg.NamePrefix, d.ID)
	var trace *string
	if x := d.OutboundTrace().XRayHeader(); x != "" && len(x) <= maxTraceHeader {
		trace = aws.String(x)
	}
	if s.cfg.Mode == ModeExpressSync {
		return s.runSync(ctx, name, string(input), trace)
	}
	_, err := s.api.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(s.cfg.StateMachine),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
		TraceHeader:     trace,
	})
	var exists *types.ExecutionAlreadyExists
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exists):
		return s.existing(ctx, name, string(input))
	}
	return fmt.Errorf("stepfunctions %s: StartExecution: %w", s.name, classify(err))
}

// existing decides a start that found an execution of the same name:
// delivered when it has this input, a permanent failure otherwise.
func (s *Sink) existing(ctx context.Context, name, input string) error {
	arn := s.machine.ExecutionARN(name)
	out, err := s.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		// The execution existed a moment ago: whether it is this
		// delivery's is still to be found out, by a later attempt.
		return fmt.Errorf("stepfunctions %s: execution %s exists; DescribeExecution: %w", s.name, arn, classify(err))
	}
	if aws.ToString(out.Input) == input {
		return nil // started before: a lost answer, or a message that came back
	}
	return router.PermanentError(fmt.Errorf("stepfunctions %s: execution %s (%s, started %s) exists with another input: not started again; Step Functions keeps an execution's name 90 days (did name_prefix or the rule's input change?)",
		s.name, arn, out.Status, aws.ToTime(out.StartDate).UTC().Format("2006-01-02T15:04:05Z")))
}

// runSync runs an express execution and classifies how it ended.
func (s *Sink) runSync(ctx context.Context, name, input string, trace *string) error {
	out, err := s.api.StartSyncExecution(ctx, &sfn.StartSyncExecutionInput{
		StateMachineArn: aws.String(s.cfg.StateMachine),
		Name:            aws.String(name),
		Input:           aws.String(input),
		TraceHeader:     trace,
	})
	if err != nil {
		return fmt.Errorf("stepfunctions %s: StartSyncExecution: %w", s.name, classify(err))
	}
	if out.Status == types.SyncExecutionStatusSucceeded {
		return nil
	}
	errName := aws.ToString(out.Error)
	if errName == "" && out.Status == types.SyncExecutionStatusTimedOut {
		errName = "States.Timeout"
	}
	err = fmt.Errorf("stepfunctions %s: execution %s %s: %s: %s", s.name, aws.ToString(out.ExecutionArn), out.Status, errName, clip(aws.ToString(out.Cause), 512))
	if errName != "" && slices.Contains(s.cfg.PermanentErrors, errName) {
		return router.PermanentError(err)
	}
	// The workflow ran and failed: worth another try, as a function error is.
	return router.RetryableError(err, 0)
}

// ExecutionName is the name of a delivery's executions: prefix and the
// delivery id when that is made of letters, digits, '-' and '_' and the
// whole fits Step Functions' 80 characters (switchyard's ids are 32 hex
// digits), else prefix and 32 hex digits of the id's SHA-256. It is the
// same for every attempt of the delivery.
func ExecutionName(prefix, id string) string {
	if id != "" && len(prefix)+len(id) <= 80 && plain(id) {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:16])
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// classify turns a Step Functions error into a delivery error.
func classify(err error) error { return awserr.Classify(err, codes) }

// codes classify Step Functions' errors. ExecutionLimitExceeded (too many
// open executions) passes as executions end, so it is a throttle, not a
// failure of the target.
var codes = awserr.Codes{
	Throttled: []string{"ThrottlingException", "KmsThrottlingException", "ExecutionLimitExceeded"},
	Permanent: []string{"InvalidArn", "StateMachineDoesNotExist", "StateMachineDeleting", "InvalidExecutionInput", "InvalidName",
		"ValidationException", "StateMachineTypeNotSupported", "AccessDeniedException", "AccessDenied",
		"KmsAccessDeniedException", "KmsInvalidStateException", "UnrecognizedClientException", "InvalidSignatureException"},
	Retryable: []string{"ExecutionDoesNotExist"},
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package awstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/names"
)

// Step Functions state machine types.
const (
	StateMachineStandard = "STANDARD"
	StateMachineExpress  = "EXPRESS"
)

// Step Functions execution statuses.
const (
	ExecutionRunning   = "RUNNING"
	ExecutionSucceeded = "SUCCEEDED"
	ExecutionFailed    = "FAILED"
	ExecutionTimedOut  = "TIMED_OUT"
	ExecutionAborted   = "ABORTED"
)

// SFNInputLimit is Step Functions' limit on an execution's input: 256 KiB
// of UTF-8 (the input member's length constraint in the API).
const SFNInputLimit = 262144

// sfnTraceHeaderLimit is the traceHeader member's length constraint.
const sfnTraceHeaderLimit = 256

// StateMachine is a programmable state machine of the Step Functions
// endpoint.
type StateMachine struct {
	// Name is the state machine's name (1 to 80 characters Step Functions
	// accepts in names).
	Name string
	// Type is StateMachineStandard (the default) or StateMachineExpress.
	Type string
	// Handler decides how each execution ends. Executions started by
	// StartExecution run it on a goroutine the server owns, with a context
	// that Server.Close cancels; with no Handler they stay RUNNING until
	// StepFunctions.Finish. A StartSyncExecution call runs it on the
	// request's goroutine and answers with its result; with no Handler the
	// execution succeeds with its input as its output. A panicking Handler
	// fails the execution (error States.Runtime).
	Handler ExecutionHandler
	// Latency delays every execution, on the server's clock, before the
	// Handler runs.
	Latency time.Duration
	// Deleting makes every start answer StateMachineDeleting, as for a
	// state machine whose deletion is under way.
	Deleting bool
}

// ExecutionHandler is a state machine's work: it sees the execution as
// started and returns how it ends. It must return once ctx is done.
type ExecutionHandler func(ctx context.Context, ex Execution) ExecutionResult

// ExecutionResult is how an execution ends.
type ExecutionResult struct {
	// Status is ExecutionSucceeded (the default), ExecutionFailed,
	// ExecutionTimedOut or ExecutionAborted.
	Status string
	// Output is a succeeded execution's output, JSON; default "{}".
	Output string
	// Error and Cause are a failed execution's error name (the Error of a
	// Fail state, States.TaskFailed...) and its cause, sent as given.
	Error, Cause string
}

// Succeeded is a succeeded execution's result with output.
func Succeeded(output string) ExecutionResult {
	return ExecutionResult{Status: ExecutionSucceeded, Output: output}
}

// Failed is a failed execution's result.
func Failed(errorName, cause string) ExecutionResult {
	return ExecutionResult{Status: ExecutionFailed, Error: errorName, Cause: cause}
}

// Execution is one execution as the endpoint knows it.
type Execution struct {
	// ARN is the execution's ARN: ...:execution:MACHINE:NAME for a
	// standard workflow, ...:express:MACHINE:NAME:ID for an express one.
	ARN             string
	StateMachineARN string
	Name            string
	// Type is the state machine's type.
	Type string
	// Sync is true for an execution started by StartSyncExecution.
	Sync bool
	// Input is the execution's input as sent ("{}" when none was).
	Input string
	// TraceHeader is the traceHeader member as sent ("" when none was).
	TraceHeader string
	// Status is ExecutionRunning until the execution ends.
	Status               string
	Output, Error, Cause string
	StartDate, StopDate  time.Time
}

// StepFunctions is the Step Functions endpoint (AWS JSON 1.0, X-Amz-Target
// AWSStepFunctions.<Operation>): StartExecution, StartSyncExecution and
// DescribeExecution, on state machines registered with CreateStateMachine.
// Errors are AWS JSON 1.0 bodies whose __type is
// com.amazonaws.swf.service.v2.model#<Code>, as Step Functions sends them.
// Its methods are safe for concurrent use.
//
// Behaviour follows the API reference:
//   - StartExecution of a STANDARD state machine is idempotent: with the
//     name and input of an execution that is still RUNNING it succeeds and
//     answers that execution's ARN and start date, starting nothing; with
//     the name of one that has ended, or another input, it is
//     ExecutionAlreadyExists. Names are unique per state machine (AWS
//     keeps them 90 days; here, for the server's life).
//   - StartExecution of an EXPRESS state machine is not idempotent: every
//     call starts an execution, names repeat freely, and its ARN is
//     ...:express:MACHINE:NAME:ID.
//   - StartSyncExecution runs an EXPRESS state machine and answers with
//     how it ended (status, output or error and cause); on a STANDARD one
//     it is StateMachineTypeNotSupported.
//   - DescribeExecution describes standard executions; an express
//     execution's ARN is InvalidArn, as express executions are not kept.
//   - A missing name is a random UUID; a name Step Functions refuses is
//     InvalidName; input that is not JSON is InvalidExecutionInput; input
//     over 256 KiB, or a traceHeader over 256 characters, is a
//     ValidationException, as the members' length constraints are.
//
// Choices where the API reference leaves room: a state machine ARN in
// another account is AccessDeniedException, in another region
// StateMachineDoesNotExist, and one that is not a state machine ARN at all
// (a version or alias too: not served) InvalidArn. A TIMED_OUT execution
// carries the Error its handler gave, none by default.
type StepFunctions struct {
	s *Server

	mu       sync.Mutex
	machines map[string]*StateMachine
	execs    []*Execution          // in start order
	standard map[string]*Execution // standard executions by ARN
}

func newStepFunctions(s *Server) *StepFunctions {
	return &StepFunctions{s: s, machines: map[string]*StateMachine{}, standard: map[string]*Execution{}}
}

// CreateStateMachine registers m, replacing a state machine of the same
// name (executions under way keep the old definition), and returns its ARN.
func (f *StepFunctions) CreateStateMachine(m StateMachine) (string, error) {
	if !names.ValidStepFunctionsName(m.Name) {
		return "", fmt.Errorf("awstest: invalid state machine name %q", m.Name)
	}
	switch m.Type {
	case "":
		m.Type = StateMachineStandard
	case StateMachineStandard, StateMachineExpress:
	default:
		return "", fmt.Errorf("awstest: state machine type %q (want %s or %s)", m.Type, StateMachineStandard, StateMachineExpress)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.machines[m.Name] = &m
	return f.StateMachineARN(m.Name), nil
}

// StateMachineARN returns the ARN of state machine name.
func (f *StepFunctions) StateMachineARN(name string) string {
	return "arn:aws:states:" + f.s.region + ":" + f.s.account + ":stateMachine:" + name
}

// ExecutionARN returns the ARN of the standard execution name of state
// machine machine.
func (f *StepFunctions) ExecutionARN(machine, name string) string {
	return "arn:aws:states:" + f.s.region + ":" + f.s.account + ":execution:" + machine + ":" + name
}

// Executions returns the executions of state machine name (of all for ""),
// in the order they started: each execution once, however many calls
// asked for it. Calls an injected Fault answered started nothing, unless
// it was a Commit fault.
func (f *StepFunctions) Executions(name string) []Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Execution
	for _, ex := range f.execs {
		if name == "" || strings.HasSuffix(ex.StateMachineARN, ":stateMachine:"+name) {
			out = append(out, *ex)
		}
	}
	return out
}

// Execution returns the execution with ARN arn.
func (f *StepFunctions) Execution(arn string) (Execution, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ex := range f.execs {
		if ex.ARN == arn {
			return *ex, true
		}
	}
	return Execution{}, false
}

// Finish ends the RUNNING execution arn with r, as its state machine
// would; it fails for an unknown execution or one that has ended.
func (f *StepFunctions) Finish(arn string, r ExecutionResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ex := range f.execs {
		if ex.ARN == arn {
			if ex.Status != ExecutionRunning {
				return fmt.Errorf("awstest: execution %s has ended (%s)", arn, ex.Status)
			}
			f.closeLocked(ex, r)
			return nil
		}
	}
	return fmt.Errorf("awstest: no execution %s", arn)
}

func (f *StepFunctions) closeLocked(ex *Execution, r ExecutionResult) {
	ex.Status = r.Status
	if ex.Status == "" {
		ex.Status = ExecutionSucceeded
	}
	ex.StopDate = f.s.clock.Now()
	if ex.Status == ExecutionSucceeded {
		ex.Output = r.Output
		if ex.Output == "" {
			ex.Output = "{}"
		}
	}
	ex.Error, ex.Cause = r.Error, r.Cause
}

// sfnResource names the state machine a request is about, for fault
// matching: the NAME of its stateMachineArn or executionArn.
func sfnResource(body []byte) string {
	var in struct {
		StateMachineARN string `json:"stateMachineArn"`
		ExecutionARN    string `json:"executionArn"`
	}
	_ = json.Unmarshal(body, &in)
	arn := in.StateMachineARN
	if arn == "" {
		arn = in.ExecutionARN
	}
	if f := strings.Split(arn, ":"); len(f) >= 7 {
		return f[6]
	}
	return arn
}

func (f *StepFunctions) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	switch c.op {
	case "StartExecution":
		out, err = f.start(c, false)
	case "StartSyncExecution":
		out, err = f.start(c, true)
	case "DescribeExecution":
		out, err = f.describe(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: Step Functions operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "states", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON10, out)
}

func validationErr(member, constraint string) *APIError {
	return apiErr("ValidationException", "1 validation error detected: Value at '%s' failed to satisfy constraint: %s", member, constraint)
}

// machine resolves a stateMachineArn to its state machine.
func (f *StepFunctions) machine(arn string) (*StateMachine, *APIError) {
	p := strings.Split(arn, ":")
	if len(p) != 7 || p[0] != "arn" || p[2] != "states" || p[5] != "stateMachine" || p[6] == "" {
		return nil, apiErr("InvalidArn", "Invalid Arn: 'Resource type not valid in this context: %s'", arn)
	}
	if p[4] != f.s.account {
		return nil, &APIError{Code: "AccessDeniedException", Message: "User is not authorized to access this resource: " + arn}
	}
	notFound := apiErr("StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn)
	if p[3] != f.s.region {
		return nil, notFound
	}
	f.mu.Lock()
	m := f.machines[p[6]]
	f.mu.Unlock()
	switch {
	case m == nil:
		return nil, notFound
	case m.Deleting:
		return nil, apiErr("StateMachineDeleting", "State machine is being deleted: '%s'", arn)
	}
	return m, nil
}

type startOut struct {
	ExecutionARN string  `json:"executionArn"`
	StartDate    float64 `json:"startDate"`
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (f *StepFunctions) start(c *call, sync bool) (any, *APIError) {
	var in struct {
		StateMachineARN *string `json:"stateMachineArn"`
		Name            *string `json:"name"`
		Input           *string `json:"input"`
		TraceHeader     *string `json:"traceHeader"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	if in.StateMachineARN == nil {
		return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'stateMachineArn' failed to satisfy constraint: Member must not be null")
	}
	if n := len(*in.StateMachineARN); n < 1 || n > 256 {
		return nil, validationErr("stateMachineArn", "Member must have length between 1 and 256")
	}
	if in.Name != nil {
		if n := len([]rune(*in.Name)); n < 1 || n > 80 {
			return nil, validationErr("name", "Member must have length between 1 and 80")
		}
		if !names.ValidStepFunctionsName(*in.Name) {
			return nil, apiErr("InvalidName", "Invalid Name: '%s'", *in.Name)
		}
	}
	if in.Input != nil && len(*in.Input) > SFNInputLimit {
		return nil, validationErr("input", fmt.Sprintf("Member must have length less than or equal to %d", SFNInputLimit))
	}
	if in.TraceHeader != nil && len(*in.TraceHeader) > sfnTraceHeaderLimit {
		return nil, validationErr("traceHeader", fmt.Sprintf("Member must have length less than or equal to %d", sfnTraceHeaderLimit))
	}
	m, aerr := f.machine(*in.StateMachineARN)
	if aerr != nil {
		return nil, aerr
	}
	input := "{}"
	if in.Input != nil {
		input = *in.Input
	}
	if !json.Valid([]byte(input)) {
		var v any
		err := json.Unmarshal([]byte(input), &v)
		return nil, apiErr("InvalidExecutionInput", "Invalid State Machine Execution Input: '%v'", err)
	}
	if sync && m.Type != StateMachineExpress {
		return nil, apiErr("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
	}
	name := newID()
	if in.Name != nil {
		name = *in.Name
	}
	ex := &Execution{
		StateMachineARN: f.StateMachineARN(m.Name), Name: name, Type: m.Type, Sync: sync,
		Input: input, Status: ExecutionRunning, StartDate: f.s.clock.Now(),
	}
	if in.TraceHeader != nil {
		ex.TraceHeader = *in.TraceHeader
	}
	f.mu.Lock()
	if m.Type == StateMachineStandard {
		ex.ARN = f.ExecutionARN(m.Name, name)
		if old := f.standard[ex.ARN]; old != nil {
			defer f.mu.Unlock()
			if old.Status == ExecutionRunning && old.Input == input {
				return startOut{ExecutionARN: old.ARN, StartDate: epoch(old.StartDate)}, nil
			}
			return nil, apiErr("ExecutionAlreadyExists", "Execution Already Exists: '%s'", old.ARN)
		}
		f.standard[ex.ARN] = ex
	} else {
		ex.ARN = "arn:aws:states:" + f.s.region + ":" + f.s.account + ":express:" + m.Name + ":" + name + ":" + newID()
	}
	f.execs = append(f.execs, ex)
	started := *ex
	f.mu.Unlock()

	if !sync {
		if m.Handler != nil {
			f.s.async.Add(1)
			go func() {
				defer f.s.async.Done()
				r, ok := f.run(f.s.base, m, started)
				if !ok {
					return // the server is closing
				}
				f.mu.Lock()
				if ex.Status == ExecutionRunning { // Finish may have ended it
					f.closeLocked(ex, r)
				}
				f.mu.Unlock()
			}()
		}
		return startOut{ExecutionARN: started.ARN, StartDate: epoch(started.StartDate)}, nil
	}

	r, ok := f.run(c.ctx, m, started)
	if !ok {
		r = ExecutionResult{Status: ExecutionAborted}
	}
	if m.Handler == nil && r.Status == ExecutionSucceeded && r.Output == "" {
		r.Output = input
	}
	f.mu.Lock()
	f.closeLocked(ex, r)
	done := *ex
	f.mu.Unlock()
	return syncOut(done), nil
}

// run waits the state machine's latency and runs its handler; ok is false
// when ctx ended first.
func (f *StepFunctions) run(ctx context.Context, m *StateMachine, ex Execution) (r ExecutionResult, ok bool) {
	if m.Latency > 0 {
		if err := f.s.sleep(ctx, m.Latency); err != nil {
			return r, false
		}
	}
	if m.Handler == nil {
		return ExecutionResult{Status: ExecutionSucceeded}, true
	}
	defer func() {
		if p := recover(); p != nil {
			r, ok = Failed("States.Runtime", fmt.Sprintf("handler panicked: %v", p)), true
		}
	}()
	return m.Handler(ctx, ex), true
}

type ioDetails struct {
	Included bool `json:"included"`
}

type syncExecutionOut struct {
	ExecutionARN    string     `json:"executionArn"`
	StateMachineARN string     `json:"stateMachineArn,omitempty"`
	Name            string     `json:"name,omitempty"`
	StartDate       float64    `json:"startDate"`
	StopDate        float64    `json:"stopDate"`
	Status          string     `json:"status"`
	Error           string     `json:"error,omitempty"`
	Cause           string     `json:"cause,omitempty"`
	Input           string     `json:"input,omitempty"`
	InputDetails    *ioDetails `json:"inputDetails,omitempty"`
	Output          string     `json:"output,omitempty"`
	OutputDetails   *ioDetails `json:"outputDetails,omitempty"`
	TraceHeader     string     `json:"traceHeader,omitempty"`
	BillingDetails  struct {
		BilledMemoryUsedInMB         int64 `json:"billedMemoryUsedInMB"`
		BilledDurationInMilliseconds int64 `json:"billedDurationInMilliseconds"`
	} `json:"billingDetails"`
}

func syncOut(ex Execution) syncExecutionOut {
	o := syncExecutionOut{
		ExecutionARN: ex.ARN, StateMachineARN: ex.StateMachineARN, Name: ex.Name,
		StartDate: epoch(ex.StartDate), StopDate: epoch(ex.StopDate), Status: ex.Status,
		Error: ex.Error, Cause: ex.Cause, Input: ex.Input, InputDetails: &ioDetails{Included: true},
		TraceHeader: ex.TraceHeader,
	}
	if ex.Status == ExecutionSucceeded {
		o.Output, o.OutputDetails = ex.Output, &ioDetails{Included: true}
	}
	o.BillingDetails.BilledMemoryUsedInMB = 64
	o.BillingDetails.BilledDurationInMilliseconds = max(100, ex.StopDate.Sub(ex.StartDate).Milliseconds())
	return o
}

type describeOut struct {
	ExecutionARN    string     `json:"executionArn"`
	StateMachineARN string     `json:"stateMachineArn"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	StartDate       float64    `json:"startDate"`
	StopDate        *float64   `json:"stopDate,omitempty"`
	Input           string     `json:"input"`
	InputDetails    ioDetails  `json:"inputDetails"`
	Output          string     `json:"output,omitempty"`
	OutputDetails   *ioDetails `json:"outputDetails,omitempty"`
	Error           string     `json:"error,omitempty"`
	Cause           string     `json:"cause,omitempty"`
	TraceHeader     string     `json:"traceHeader,omitempty"`
}

func (f *StepFunctions) describe(c *call) (any, *APIError) {
	var in struct {
		ExecutionARN *string `json:"executionArn"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	if in.ExecutionARN == nil {
		return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'executionArn' failed to satisfy constraint: Member must not be null")
	}
	arn := *in.ExecutionARN
	p := strings.Split(arn, ":")
	switch {
	case len(p) >= 6 && p[0] == "arn" && p[2] == "states" && p[5] == "express":
		return nil, apiErr("InvalidArn", "Invalid Arn: 'Resource type not valid in this context: express'")
	case len(p) != 8 || p[0] != "arn" || p[2] != "states" || p[5] != "execution":
		return nil, apiErr("InvalidArn", "Invalid Arn: 'Resource type not valid in this context: %s'", arn)
	}
	f.mu.Lock()
	ex := f.standard[arn]
	var cp Execution
	if ex != nil {
		cp = *ex
	}
	f.mu.Unlock()
	if ex == nil {
		return nil, apiErr("ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn)
	}
	out := describeOut{
		ExecutionARN: cp.ARN, StateMachineARN: cp.StateMachineARN, Name: cp.Name, Status: cp.Status,
		StartDate: epoch(cp.StartDate), Input: cp.Input, InputDetails: ioDetails{Included: true},
		Error: cp.Error, Cause: cp.Cause, TraceHeader: cp.TraceHeader,
	}
	if cp.Status != ExecutionRunning {
		stop := epoch(cp.StopDate)
		out.StopDate = &stop
	}
	if cp.Status == ExecutionSucceeded {
		out.Output, out.OutputDetails = cp.Output, &ioDetails{Included: true}
	}
	return out, nil
}

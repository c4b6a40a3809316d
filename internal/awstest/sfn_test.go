package awstest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func createMachine(t *testing.T, s *awstest.Server, m awstest.StateMachine) string {
	t.Helper()
	arn, err := s.StepFunctions().CreateStateMachine(m)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// StartExecution of a standard workflow is idempotent by name while the
// execution runs and the input is the same; a different input, or an
// execution that has ended, is ExecutionAlreadyExists.
func TestStepFunctions_StandardIdempotency(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	arn := createMachine(t, s, awstest.StateMachine{Name: "orders"})
	c := s.SFNClient()
	start := func(name, input string) (*sfn.StartExecutionOutput, error) {
		return c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(name), Input: aws.String(input)})
	}

	first, err := start("d-1", `{"n":1}`)
	if err != nil {
		t.Fatal(err)
	}
	wantARN := "arn:aws:states:us-east-1:123456789012:execution:orders:d-1"
	if aws.ToString(first.ExecutionArn) != wantARN || !first.StartDate.Equal(clk.Now()) {
		t.Fatalf("start: %s at %v", aws.ToString(first.ExecutionArn), first.StartDate)
	}
	clk.Advance(time.Second)
	again, err := start("d-1", `{"n":1}`)
	if err != nil || aws.ToString(again.ExecutionArn) != wantARN || !again.StartDate.Equal(first.StartDate.UTC()) {
		t.Fatalf("same name and input while running: %+v, %v; want the first start's answer", again, err)
	}
	var exists *sfntypes.ExecutionAlreadyExists
	if _, err := start("d-1", `{"n":2}`); !errors.As(err, &exists) || httpStatus(t, err) != 400 {
		t.Errorf("other input while running: %v, want ExecutionAlreadyExists", err)
	}
	if n := len(s.StepFunctions().Executions("orders")); n != 1 {
		t.Fatalf("%d executions, want 1", n)
	}

	if err := s.StepFunctions().Finish(wantARN, awstest.Succeeded(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := start("d-1", `{"n":1}`); !errors.As(err, &exists) || !strings.Contains(err.Error(), wantARN) {
		t.Errorf("same name and input once ended: %v, want ExecutionAlreadyExists naming it", err)
	}
	d, err := c.DescribeExecution(t.Context(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(wantARN)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != sfntypes.ExecutionStatusSucceeded || aws.ToString(d.Input) != `{"n":1}` || aws.ToString(d.Output) != `{"ok":true}` ||
		aws.ToString(d.Name) != "d-1" || aws.ToString(d.StateMachineArn) != arn || d.StopDate == nil || !d.StopDate.Equal(clk.Now()) {
		t.Errorf("describe: %+v", d)
	}

	// No name: a fresh UUID each time, so two executions.
	for range 2 {
		if _, err := c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	ex := s.StepFunctions().Executions("orders")
	if len(ex) != 3 || ex[1].Name == ex[2].Name || ex[1].Input != "{}" {
		t.Errorf("unnamed executions: %+v", ex)
	}
}

// Express workflows are not idempotent: StartExecution starts one per
// call, names repeating; StartSyncExecution answers with the outcome the
// handler decides.
func TestStepFunctions_Express(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	arn := createMachine(t, s, awstest.StateMachine{Name: "score", Type: awstest.StateMachineExpress,
		Handler: func(_ context.Context, ex awstest.Execution) awstest.ExecutionResult {
			switch {
			case strings.Contains(ex.Input, "bad"):
				return awstest.Failed("BadOrder", "no such order")
			case strings.Contains(ex.Input, "slow"):
				return awstest.ExecutionResult{Status: awstest.ExecutionTimedOut, Error: "States.Timeout"}
			case strings.Contains(ex.Input, "panic"):
				panic("boom")
			}
			return awstest.Succeeded(`{"score":7}`)
		}})
	c := s.SFNClient()
	for range 2 {
		out, err := c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("same"), Input: aws.String(`{}`)})
		if err != nil || !strings.HasPrefix(aws.ToString(out.ExecutionArn), "arn:aws:states:us-east-1:123456789012:express:score:same:") {
			t.Fatalf("express start: %+v, %v", out, err)
		}
	}
	waitFor(t, "two ended executions", func() bool {
		ex := s.StepFunctions().Executions("score")
		return len(ex) == 2 && ex[0].Status == awstest.ExecutionSucceeded && ex[1].Status == awstest.ExecutionSucceeded && ex[0].ARN != ex[1].ARN
	})

	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for _, tc := range []struct {
		input, status, errName, output string
	}{
		{`{"id":1}`, "SUCCEEDED", "", `{"score":7}`},
		{`{"bad":1}`, "FAILED", "BadOrder", ""},
		{`{"slow":1}`, "TIMED_OUT", "States.Timeout", ""},
		{`{"panic":1}`, "FAILED", "States.Runtime", ""},
	} {
		out, err := c.StartSyncExecution(t.Context(), &sfn.StartSyncExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("n"),
			Input: aws.String(tc.input), TraceHeader: aws.String(trace)})
		if err != nil {
			t.Fatalf("%s: %v", tc.input, err)
		}
		if string(out.Status) != tc.status || aws.ToString(out.Error) != tc.errName || aws.ToString(out.Output) != tc.output ||
			aws.ToString(out.Input) != tc.input || aws.ToString(out.TraceHeader) != trace || out.StopDate == nil {
			t.Errorf("%s: status %s error %q output %q input %q trace %q", tc.input, out.Status, aws.ToString(out.Error), aws.ToString(out.Output), aws.ToString(out.Input), aws.ToString(out.TraceHeader))
		}
	}
	ex := s.StepFunctions().Executions("score")
	if len(ex) != 6 || !ex[2].Sync || ex[2].TraceHeader != trace {
		t.Errorf("executions: %+v", ex)
	}
	_, err := c.DescribeExecution(t.Context(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ex[2].ARN)})
	if code := apiCode(t, err); code != "InvalidArn" {
		t.Errorf("describe an express execution: %s", code)
	}

	// With no handler a sync execution passes its input through.
	plain := createMachine(t, s, awstest.StateMachine{Name: "pass", Type: awstest.StateMachineExpress})
	out, err := c.StartSyncExecution(t.Context(), &sfn.StartSyncExecutionInput{StateMachineArn: aws.String(plain), Input: aws.String(`[1,2]`)})
	if err != nil || out.Status != sfntypes.SyncExecutionStatusSucceeded || aws.ToString(out.Output) != `[1,2]` {
		t.Errorf("pass-through: %+v, %v", out, err)
	}
}

// A standard execution with a handler ends by itself; one without stays
// running; Close ends the handlers' context.
func TestStepFunctions_StandardHandler(t *testing.T) {
	t.Parallel()
	s := awstest.NewTestServer(t, awstest.Options{})
	arn := createMachine(t, s, awstest.StateMachine{Name: "job", Handler: func(_ context.Context, ex awstest.Execution) awstest.ExecutionResult {
		if ex.Input == `"fail"` {
			return awstest.Failed("States.TaskFailed", "task failed")
		}
		return awstest.Succeeded(ex.Input)
	}})
	c := s.SFNClient()
	for _, name := range []string{"ok", "fail"} {
		if _, err := c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(name), Input: aws.String(`"` + name + `"`)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both executions to end", func() bool {
		ex := s.StepFunctions().Executions("job")
		return len(ex) == 2 && ex[0].Status != awstest.ExecutionRunning && ex[1].Status != awstest.ExecutionRunning
	})
	d, err := c.DescribeExecution(t.Context(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(s.StepFunctions().ExecutionARN("job", "fail"))})
	if err != nil || d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "States.TaskFailed" || aws.ToString(d.Cause) != "task failed" || d.Output != nil {
		t.Errorf("failed execution: %+v, %v", d, err)
	}
	if err := s.StepFunctions().Finish(s.StepFunctions().ExecutionARN("job", "ok"), awstest.Succeeded("{}")); err == nil {
		t.Error("Finish ended an execution that had ended")
	}

	blocked := createMachine(t, s, awstest.StateMachine{Name: "blocked", Handler: func(ctx context.Context, _ awstest.Execution) awstest.ExecutionResult {
		<-ctx.Done()
		return awstest.ExecutionResult{Status: awstest.ExecutionAborted}
	}})
	if _, err := c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(blocked)}); err != nil {
		t.Fatal(err)
	}
	s.Close() // returns: the handler's context ends
}

func TestStepFunctions_Errors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	std := createMachine(t, s, awstest.StateMachine{Name: "std"})
	gone := createMachine(t, s, awstest.StateMachine{Name: "gone", Deleting: true})
	c := s.SFNClient()
	for _, tc := range []struct {
		name string
		in   sfn.StartExecutionInput
		code string
	}{
		{"no such machine", sfn.StartExecutionInput{StateMachineArn: aws.String(s.StepFunctions().StateMachineARN("nope"))}, "StateMachineDoesNotExist"},
		{"other region", sfn.StartExecutionInput{StateMachineArn: aws.String("arn:aws:states:eu-west-1:123456789012:stateMachine:std")}, "StateMachineDoesNotExist"},
		{"other account", sfn.StartExecutionInput{StateMachineArn: aws.String("arn:aws:states:us-east-1:999999999999:stateMachine:std")}, "AccessDeniedException"},
		{"not an ARN", sfn.StartExecutionInput{StateMachineArn: aws.String("std")}, "InvalidArn"},
		{"alias ARN", sfn.StartExecutionInput{StateMachineArn: aws.String(std + ":PROD")}, "InvalidArn"},
		{"deleting", sfn.StartExecutionInput{StateMachineArn: aws.String(gone)}, "StateMachineDeleting"},
		{"bad name", sfn.StartExecutionInput{StateMachineArn: aws.String(std), Name: aws.String("a/b")}, "InvalidName"},
		{"long name", sfn.StartExecutionInput{StateMachineArn: aws.String(std), Name: aws.String(strings.Repeat("n", 81))}, "ValidationException"},
		{"input not JSON", sfn.StartExecutionInput{StateMachineArn: aws.String(std), Input: aws.String("{")}, "InvalidExecutionInput"},
		{"input too large", sfn.StartExecutionInput{StateMachineArn: aws.String(std), Input: aws.String(`"` + strings.Repeat("x", awstest.SFNInputLimit) + `"`)}, "ValidationException"},
		{"trace header too long", sfn.StartExecutionInput{StateMachineArn: aws.String(std), TraceHeader: aws.String(strings.Repeat("t", 257))}, "ValidationException"},
	} {
		_, err := c.StartExecution(t.Context(), &tc.in)
		if code := apiCode(t, err); code != tc.code {
			t.Errorf("%s: %s (%v), want %s", tc.name, code, err, tc.code)
		}
	}
	_, err := c.StartSyncExecution(t.Context(), &sfn.StartSyncExecutionInput{StateMachineArn: aws.String(std)})
	var notSupported *sfntypes.StateMachineTypeNotSupported
	if !errors.As(err, &notSupported) {
		t.Errorf("sync execution of a standard workflow: %v", err)
	}
	_, err = c.DescribeExecution(t.Context(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(s.StepFunctions().ExecutionARN("std", "never"))})
	var missing *sfntypes.ExecutionDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("describe a missing execution: %v", err)
	}
	if n := len(s.StepFunctions().Executions("")); n != 0 {
		t.Errorf("%d executions started by failed calls", n)
	}
}

// Faults are scripted per operation and state machine; a Commit fault
// starts the execution and loses the answer, so a retry with the same name
// and input is answered as the first start, not started again.
func TestStepFunctions_Faults(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	arn := createMachine(t, s, awstest.StateMachine{Name: "orders"})
	other := createMachine(t, s, awstest.StateMachine{Name: "other"})
	c := s.SFNClient()
	start := func(arn string) error {
		_, err := c.StartExecution(t.Context(), &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String("d-1"), Input: aws.String(`{}`)})
		return err
	}
	s.InjectFault(awstest.FaultRule{Op: "states:StartExecution", Resource: "orders", Times: 1, Fault: awstest.Throttled()})
	if err := start(other); err != nil {
		t.Fatalf("a fault for orders failed other: %v", err)
	}
	err := start(arn)
	if code := apiCode(t, err); code != "ThrottlingException" || httpStatus(t, err) != 400 {
		t.Errorf("throttled: %s %d", code, httpStatus(t, err))
	}
	s.FailNext("states:StartExecution", 1, awstest.InternalError("InternalFailure"))
	if err := start(arn); apiCode(t, err) != "InternalFailure" || httpStatus(t, err) != 500 {
		t.Errorf("internal failure: %v", err)
	}
	s.FailNext("states:StartExecution", 1, awstest.Fault{Commit: true, Drop: true})
	if err := start(arn); err == nil {
		t.Fatal("the dropped answer reached the client")
	}
	if n := len(s.StepFunctions().Executions("orders")); n != 1 {
		t.Fatalf("a committed start left %d executions", n)
	}
	if err := start(arn); err != nil {
		t.Errorf("retry after a lost answer: %v", err)
	}
	if n := len(s.StepFunctions().Executions("orders")); n != 1 || s.Calls("states:StartExecution") != 5 {
		t.Errorf("%d executions after %d calls, want 1 after 5", n, s.Calls("states:StartExecution"))
	}
}

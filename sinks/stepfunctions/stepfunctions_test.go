package stepfunctions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func server(t *testing.T) *awstest.Server {
	t.Helper()
	return awstest.NewTestServer(t, awstest.Options{})
}

func machine(t *testing.T, srv *awstest.Server, m awstest.StateMachine) string {
	t.Helper()
	arn, err := srv.StepFunctions().CreateStateMachine(m)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func delivery(id, payload string) *router.Delivery {
	return &router.Delivery{
		ID: id, Rule: "r", Target: "flow", Payload: []byte(payload),
		Message: &router.Message{ID: "m-" + id, Source: "jobs", Body: []byte(`{"raw":1}`)},
	}
}

func sink(t *testing.T, srv *awstest.Server, cfg Config) *Sink {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New("flow", cfg, srv.SFNClient())
}

func ptr[T any](v T) *T { return &v }

const id = "0123456789abcdef0123456789abcdef" // a delivery id as router.DeliveryID makes them

func TestStepFunctionsSink_StartsAnExecution(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "orders"})
	s := sink(t, srv, Config{StateMachine: arn, NamePrefix: "sy-"})
	d := delivery(id, `{"order":"o-1"}`)
	d.Message.Trace = router.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ex := srv.StepFunctions().Executions("orders")
	if len(ex) != 1 {
		t.Fatalf("%d executions", len(ex))
	}
	got := ex[0]
	if got.Name != "sy-"+id || got.Input != `{"order":"o-1"}` || got.Status != awstest.ExecutionRunning ||
		got.TraceHeader != "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" {
		t.Errorf("execution: %+v", got)
	}
}

func TestStepFunctionsSink_PayloadForms(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "audit"})
	s := sink(t, srv, Config{StateMachine: arn})
	text := delivery("text", `order o-1 is "late"`)
	text.Text = true
	letter := delivery("letter", `original body`)
	letter.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-l", Rule: "r", Target: "x", Attempts: 3, LastError: "503"}
	for _, d := range []*router.Delivery{text, letter} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ex := srv.StepFunctions().Executions("audit")
	if len(ex) != 2 || ex[0].Input != `"order o-1 is \"late\""` {
		t.Fatalf("executions: %+v", ex)
	}
	var doc struct {
		DeadLetter struct {
			Attempts int `json:"attempts"`
		} `json:"dead_letter"`
		Body string `json:"body"`
	}
	if err := json.Unmarshal([]byte(ex[1].Input), &doc); err != nil || doc.DeadLetter.Attempts != 3 || doc.Body != "original body" {
		t.Errorf("dead letter as %s: %v", ex[1].Input, err)
	}
}

// Every failure Step Functions can answer is classified as the policy
// needs, and names what failed.
func TestStepFunctionsSink_ClassifiesFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    *awstest.Fault                   // the StartExecution's, if any
		arn      func(srv *awstest.Server) string // default: a state machine that exists
		class    router.Class
		contains string
	}{
		{name: "throttled", fault: ptr(awstest.Throttled()), class: router.Throttled, contains: "ThrottlingException"},
		{name: "too many open executions", fault: &awstest.Fault{Code: "ExecutionLimitExceeded"}, class: router.Throttled, contains: "ExecutionLimitExceeded"},
		{name: "KMS throttled", fault: &awstest.Fault{Code: "KmsThrottlingException"}, class: router.Throttled, contains: "KmsThrottlingException"},
		{name: "internal failure", fault: ptr(awstest.InternalError("InternalFailure")), class: router.Retryable, contains: "InternalFailure"},
		{name: "503", fault: ptr(awstest.Unavailable()), class: router.Retryable, contains: "503"},
		{name: "connection reset", fault: &awstest.Fault{Drop: true}, class: router.Retryable, contains: "StartExecution"},
		{name: "invalid ARN", fault: &awstest.Fault{Code: "InvalidArn"}, class: router.Permanent, contains: "InvalidArn"},
		{name: "invalid input", fault: &awstest.Fault{Code: "InvalidExecutionInput"}, class: router.Permanent, contains: "InvalidExecutionInput"},
		{name: "invalid name", fault: &awstest.Fault{Code: "InvalidName"}, class: router.Permanent, contains: "InvalidName"},
		{name: "validation", fault: &awstest.Fault{Code: "ValidationException"}, class: router.Permanent, contains: "ValidationException"},
		{name: "KMS access denied", fault: &awstest.Fault{Code: "KmsAccessDeniedException"}, class: router.Permanent, contains: "KmsAccessDeniedException"},
		{name: "other 4xx", fault: &awstest.Fault{Status: 403, Code: "SomethingNew"}, class: router.Permanent, contains: "SomethingNew"},
		{name: "no such state machine", arn: func(srv *awstest.Server) string {
			return srv.StepFunctions().StateMachineARN("missing")
		}, class: router.Permanent, contains: "StateMachineDoesNotExist"},
		{name: "being deleted", arn: func(srv *awstest.Server) string {
			return machine(t, srv, awstest.StateMachine{Name: "gone", Deleting: true})
		}, class: router.Permanent, contains: "StateMachineDeleting"},
		{name: "another account", arn: func(*awstest.Server) string {
			return "arn:aws:states:us-east-1:999999999999:stateMachine:m"
		}, class: router.Permanent, contains: "AccessDeniedException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t)
			arn := machine(t, srv, awstest.StateMachine{Name: "m"})
			if tc.arn != nil {
				arn = tc.arn(srv)
			}
			if tc.fault != nil {
				srv.FailNext("states:StartExecution", 1, *tc.fault)
			}
			err := sink(t, srv, Config{StateMachine: arn}).Deliver(t.Context(), delivery(id, `{}`))
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if c := router.ClassOf(err); c != tc.class {
				t.Errorf("class %s, want %s: %v", c, tc.class, err)
			}
			if !strings.Contains(err.Error(), tc.contains) || !strings.HasPrefix(err.Error(), "stepfunctions flow: ") {
				t.Errorf("error %q does not name the target and %q", err, tc.contains)
			}
			if n := len(srv.StepFunctions().Executions("")); n != 0 {
				t.Errorf("%d executions started by a failed call", n)
			}
		})
	}
}

// A retryable failure retried succeeds with one execution.
func TestStepFunctionsSink_RetriesA5xx(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "m"})
	s := sink(t, srv, Config{StateMachine: arn})
	srv.FailNext("states:StartExecution", 1, awstest.InternalError("InternalFailure"))
	d := delivery(id, `{"n":1}`)
	if err := s.Deliver(t.Context(), d); router.ClassOf(err) != router.Retryable {
		t.Fatalf("first attempt: %v", err)
	}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if n := len(srv.StepFunctions().Executions("m")); n != 1 || srv.Calls("states:StartExecution") != 2 {
		t.Errorf("%d executions after %d calls", n, srv.Calls("states:StartExecution"))
	}
}

// The endpoint started the execution but its answer was lost: the retry,
// with the same name and input, starts nothing more, whether the execution
// is still running (Step Functions answers the start again) or has ended
// (it answers ExecutionAlreadyExists, and DescribeExecution shows the same
// input). The same name with another input is a permanent failure.
func TestStepFunctionsSink_IdempotentAcrossALostAnswer(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "m"})
	s := sink(t, srv, Config{StateMachine: arn, NamePrefix: "p_"})
	d := delivery(id, `{"n":1}`)
	srv.FailNext("states:StartExecution", 1, awstest.Fault{Commit: true, Drop: true})
	if err := s.Deliver(t.Context(), d); err == nil || router.ClassOf(err) != router.Retryable {
		t.Fatalf("lost answer: %v, want a retryable failure", err)
	}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("retry while the execution runs: %v", err)
	}
	ex := srv.StepFunctions().Executions("m")
	if len(ex) != 1 {
		t.Fatalf("%d executions, want 1", len(ex))
	}
	if err := srv.StepFunctions().Finish(ex[0].ARN, awstest.Failed("States.TaskFailed", "it ran")); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("retry once the execution ended: %v", err)
	}
	if n := len(srv.StepFunctions().Executions("m")); n != 1 || srv.Calls("states:DescribeExecution") != 1 {
		t.Errorf("%d executions, %d DescribeExecution calls; want 1 and 1", n, srv.Calls("states:DescribeExecution"))
	}

	changed := delivery(id, `{"n":2}`)
	err := s.Deliver(t.Context(), changed)
	if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), ex[0].ARN) || !strings.Contains(err.Error(), "another input") {
		t.Errorf("same name, other input: %v (%s), want a permanent failure naming the execution", err, router.ClassOf(err))
	}
	if n := len(srv.StepFunctions().Executions("m")); n != 1 {
		t.Errorf("%d executions", n)
	}
}

// When DescribeExecution fails, whose execution it is stays open: the
// failure is classified as that call's, for a later attempt to find out.
func TestStepFunctionsSink_DescribeFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault awstest.Fault
		class router.Class
	}{
		{"throttled", awstest.Throttled(), router.Throttled},
		{"5xx", awstest.Unavailable(), router.Retryable},
		{"gone meanwhile", awstest.Fault{Code: "ExecutionDoesNotExist"}, router.Retryable},
		{"access denied", awstest.Fault{Code: "AccessDeniedException"}, router.Permanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t)
			arn := machine(t, srv, awstest.StateMachine{Name: "m"})
			s := sink(t, srv, Config{StateMachine: arn})
			d := delivery(id, `{}`)
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			if err := srv.StepFunctions().Finish(srv.StepFunctions().ExecutionARN("m", id), awstest.Succeeded("{}")); err != nil {
				t.Fatal(err)
			}
			srv.FailNext("states:DescribeExecution", 1, tc.fault)
			err := s.Deliver(t.Context(), d)
			if router.ClassOf(err) != tc.class || !strings.Contains(err.Error(), "DescribeExecution") {
				t.Errorf("%v (%s), want %s", err, router.ClassOf(err), tc.class)
			}
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Errorf("the next attempt: %v", err)
			}
		})
	}
}

func TestStepFunctionsSink_RefusesAnOversizeInputBeforeTheCall(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "m"})
	s := sink(t, srv, Config{StateMachine: arn})
	at := `"` + strings.Repeat("x", MaxInput-2) + `"`
	if err := s.Deliver(t.Context(), delivery("a", at)); err != nil {
		t.Fatalf("an input of exactly 256 KiB: %v", err)
	}
	err := s.Deliver(t.Context(), delivery("b", at+" "))
	if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), "262145 bytes") || !strings.Contains(err.Error(), "256 KiB") {
		t.Errorf("oversize input: %v (%s)", err, router.ClassOf(err))
	}
	if n := srv.Calls("states:StartExecution"); n != 1 {
		t.Errorf("%d calls, want only the one that fit", n)
	}
}

func TestStepFunctionsSink_ExpressSync(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "score", Type: awstest.StateMachineExpress,
		Handler: func(_ context.Context, ex awstest.Execution) awstest.ExecutionResult {
			var in struct{ Case string }
			json.Unmarshal([]byte(ex.Input), &in)
			switch in.Case {
			case "invalid":
				return awstest.Failed("InvalidOrder", "order o-1 has no lines")
			case "flaky":
				return awstest.Failed("States.TaskFailed", "downstream 503")
			case "slow":
				return awstest.ExecutionResult{Status: awstest.ExecutionTimedOut}
			}
			return awstest.Succeeded(`{"ok":true}`)
		}})
	s := sink(t, srv, Config{StateMachine: arn, Mode: ModeExpressSync, PermanentErrors: []string{"InvalidOrder", "States.Timeout"}})
	for _, tc := range []struct {
		input    string
		ok       bool
		class    router.Class
		contains string
	}{
		{`{"case":"fine"}`, true, 0, ""},
		{`{"case":"invalid"}`, false, router.Permanent, "FAILED: InvalidOrder: order o-1 has no lines"},
		{`{"case":"flaky"}`, false, router.Retryable, "FAILED: States.TaskFailed: downstream 503"},
		{`{"case":"slow"}`, false, router.Permanent, "TIMED_OUT: States.Timeout"},
	} {
		err := s.Deliver(t.Context(), delivery(id, tc.input))
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.input, err)
			}
			continue
		}
		if err == nil || router.ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: %v (%s), want %s naming %q", tc.input, err, router.ClassOf(err), tc.class, tc.contains)
		}
	}
	ex := srv.StepFunctions().Executions("score")
	if len(ex) != 4 || !ex[0].Sync || ex[0].Name != id {
		t.Errorf("executions: %+v", ex)
	}

	// A standard state machine cannot run synchronously.
	std := machine(t, srv, awstest.StateMachine{Name: "std"})
	err := sink(t, srv, Config{StateMachine: std, Mode: ModeExpressSync}).Deliver(t.Context(), delivery(id, `{}`))
	if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), "StateMachineTypeNotSupported") {
		t.Errorf("sync on a standard workflow: %v", err)
	}
}

// The trace context goes as traceHeader in X-Ray form, and none is sent
// when Step Functions would refuse it.
func TestStepFunctionsSink_TraceHeader(t *testing.T) {
	const xr = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "m", Type: awstest.StateMachineExpress})
	for _, mode := range []string{ModeStandard, ModeExpressSync} {
		s := sink(t, srv, Config{StateMachine: arn, Mode: mode})
		for _, x := range []string{xr, "", xr + ";Lineage=" + strings.Repeat("a", 256)} {
			d := delivery(id, `{}`)
			d.Trace = router.TraceContext{XRay: x}
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
		}
	}
	ex := srv.StepFunctions().Executions("m")
	want := []string{xr, "", "", xr, "", ""}
	if len(ex) != len(want) {
		t.Fatalf("%d executions", len(ex))
	}
	for i, w := range want {
		if ex[i].TraceHeader != w {
			t.Errorf("execution %d: traceHeader %q, want %q", i, ex[i].TraceHeader, w)
		}
	}
}

func TestStepFunctionsSink_ContextCancelIsRetryable(t *testing.T) {
	srv := server(t)
	arn := machine(t, srv, awstest.StateMachine{Name: "m", Type: awstest.StateMachineExpress, Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := sink(t, srv, Config{StateMachine: arn, Mode: ModeExpressSync}).Deliver(ctx, delivery(id, `{}`))
	if err == nil || router.ClassOf(err) != router.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver = %v (%s)", err, router.ClassOf(err))
	}
}

func TestExecutionName(t *testing.T) {
	for _, tc := range []struct{ prefix, id, want string }{
		{"", id, id},
		{"orders-", id, "orders-" + id},
		{"", "d-1_A", "d-1_A"},
		{"", "a/b", "c14cddc033f64b9dea80ea675cf280a0"},
		{"p", "", "pe3b0c44298fc1c149afbf4c8996fb924"},
		{strings.Repeat("p", 48), strings.Repeat("i", 33), strings.Repeat("p", 48) + "8d2f721aeee1b909b9755c57700d3781"},
	} {
		got := ExecutionName(tc.prefix, tc.id)
		if got != tc.want || len(got) > 80 {
			t.Errorf("ExecutionName(%q, %q) = %q, want %q", tc.prefix, tc.id, got, tc.want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
	for _, tc := range []struct {
		name string
		cfg  Config
		errs []string
	}{
		{"minimal", Config{StateMachine: arn}, nil},
		{"express", Config{StateMachine: arn, Mode: ModeExpressSync, NamePrefix: "a-b_C", PermanentErrors: []string{"X", "States.Timeout"}}, nil},
		{"missing", Config{}, []string{"state_machine: required"}},
		{"not an ARN", Config{StateMachine: "orders"}, []string{"state_machine: not a state machine ARN"}},
		{"mode", Config{StateMachine: arn, Mode: "sync"}, []string{`mode: unknown mode "sync" (valid: standard, express_sync)`}},
		{"prefix characters", Config{StateMachine: arn, NamePrefix: "a.b"}, []string{"name_prefix: want at most 48"}},
		{"prefix length", Config{StateMachine: arn, NamePrefix: strings.Repeat("p", 49)}, []string{"name_prefix: want at most 48"}},
		{"permanent errors in standard mode", Config{StateMachine: arn, PermanentErrors: []string{"X"}}, []string{"permanent_errors: needs mode: express_sync"}},
		{"bad error names", Config{StateMachine: arn, Mode: ModeExpressSync, PermanentErrors: []string{"X", "", "X"}},
			[]string{"permanent_errors[1]: empty error name", `permanent_errors[2]: "X" is listed twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.SetDefaults()
			err := tc.cfg.Validate()
			var got []string
			for _, fe := range router.FieldErrors(err) {
				got = append(got, fe.Field+": "+fe.Msg)
			}
			if len(got) != len(tc.errs) {
				t.Fatalf("errors %q, want %q", got, tc.errs)
			}
			for i, want := range tc.errs {
				if !strings.HasPrefix(got[i], want) {
					t.Errorf("error %q, want %q", got[i], want)
				}
			}
		})
	}
}

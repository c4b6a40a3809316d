package awstest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func register(t *testing.T, s *awstest.Server, fn awstest.Function) {
	t.Helper()
	if err := s.Lambda().Register(fn); err != nil {
		t.Fatal(err)
	}
}

func echo(_ context.Context, inv awstest.Invocation) awstest.Result {
	return awstest.Result{Payload: inv.Payload, Log: "echoing " + inv.FunctionName}
}

func TestLambda_InvokeByNameARNAndQualifier(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	register(t, s, awstest.Function{Name: "thumb", Handler: echo, Versions: []string{"1", "2"}, Aliases: map[string]string{"live": "2"}})
	c := s.LambdaClient()
	tests := []struct {
		name, fn, qualifier, version string
	}{
		{"name", "thumb", "", "$LATEST"},
		{"name with alias", "thumb:live", "", "2"},
		{"partial ARN", "123456789012:function:thumb", "", "$LATEST"},
		{"ARN", "arn:aws:lambda:us-east-1:123456789012:function:thumb", "", "$LATEST"},
		{"ARN with version", "arn:aws:lambda:us-east-1:123456789012:function:thumb:1", "", "1"},
		{"Qualifier parameter", "thumb", "live", "2"},
		{"$LATEST", "thumb", "$LATEST", "$LATEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &lambda.InvokeInput{FunctionName: &tt.fn, Payload: []byte(`{"k":"v"}`)}
			if tt.qualifier != "" {
				in.Qualifier = &tt.qualifier
			}
			out, err := c.Invoke(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != 200 || string(out.Payload) != `{"k":"v"}` || aws.ToString(out.ExecutedVersion) != tt.version || out.FunctionError != nil {
				t.Fatalf("out %+v payload %s", out, out.Payload)
			}
		})
	}
	recs := s.Lambda().Invocations("thumb")
	if len(recs) != len(tests) || recs[1].Qualifier != "live" || recs[1].ExecutedVersion != "2" || recs[0].Type != awstest.InvocationRequestResponse {
		t.Fatalf("records %+v", recs)
	}
}

func TestLambda_InvocationTypes(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	release := make(chan struct{})
	register(t, s, awstest.Function{Name: "f", Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
		if inv.Type == awstest.InvocationEvent {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return awstest.Result{Payload: []byte(`"done"`)}
	}})
	c := s.LambdaClient()
	out, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{}`)})
	if err != nil || out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("event: %+v %v", out, err)
	}
	waitFor(t, "the event to start", func() bool { return s.Lambda().InFlight("f") == 1 })
	if r := s.Lambda().Invocations("f")[0]; r.Done || r.StatusCode != 202 {
		t.Fatalf("record %+v", r)
	}
	close(release)
	waitFor(t, "the event to finish", func() bool { return s.Lambda().Invocations("f")[0].Done })

	out, err = c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), InvocationType: lambdatypes.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Fatalf("dry run: %+v %v", out, err)
	}
	if n := len(s.Lambda().Invocations("f")); n != 2 {
		t.Fatalf("%d records", n)
	}
	_, err = c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("missing"), InvocationType: lambdatypes.InvocationTypeDryRun})
	var nf *lambdatypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("dry run of a missing function: %v", err)
	}
}

func TestLambda_FunctionErrors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	register(t, s, awstest.Function{Name: "f", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		switch string(inv.Payload) {
		case `"unhandled"`:
			return awstest.ErrorResult("ValueError", "bad input")
		case `"handled"`:
			r := awstest.ErrorResult("Custom", "handled")
			r.FunctionError = "Handled"
			return r
		case `"panic"`:
			panic("boom")
		case `"service"`:
			return awstest.Result{Err: &awstest.APIError{Code: "ServiceException", Message: "internal"}}
		}
		return awstest.JSONResult(map[string]int{"ok": 1})
	}})
	c := s.LambdaClient()
	for _, tt := range []struct{ payload, fnErr, errType string }{
		{`"unhandled"`, "Unhandled", "ValueError"},
		{`"handled"`, "Handled", "Custom"},
		{`"panic"`, "Unhandled", "Runtime.ExitError"},
	} {
		out, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(tt.payload)})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ ErrorMessage, ErrorType string }
		if out.StatusCode != 200 || aws.ToString(out.FunctionError) != tt.fnErr || json.Unmarshal(out.Payload, &doc) != nil || doc.ErrorType != tt.errType || doc.ErrorMessage == "" {
			t.Fatalf("%s: %+v %s", tt.payload, out, out.Payload)
		}
	}
	_, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`"service"`)})
	var se *lambdatypes.ServiceException
	if !errors.As(err, &se) || se.ErrorMessage() != "internal" || httpStatus(t, err) != 500 {
		t.Fatalf("service: %v", err)
	}
}

func TestLambda_ThrottlesAboveReservedConcurrency(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	release := make(chan struct{})
	register(t, s, awstest.Function{Name: "f", Concurrency: 1, ThrottleRetryAfter: 2 * time.Second,
		Handler: func(ctx context.Context, _ awstest.Invocation) awstest.Result {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return awstest.Result{Payload: []byte("{}")}
		}})
	c := s.LambdaClient()
	first := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("f")})
		first <- err
	}()
	waitFor(t, "the first call to run", func() bool { return s.Lambda().InFlight("f") == 1 })
	_, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")})
	var tm *lambdatypes.TooManyRequestsException
	if !errors.As(err, &tm) {
		t.Fatalf("got %T %v", err, err)
	}
	if aws.ToString(tm.RetryAfterSeconds) != "2" || tm.Reason != lambdatypes.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded ||
		aws.ToString(tm.Type) != "User" || tm.ErrorMessage() != "Rate Exceeded." || httpStatus(t, err) != 429 {
		t.Fatalf("throttle %+v", tm)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatalf("after the slot freed: %v", err)
	}
	recs := s.Lambda().Invocations("f")
	if len(recs) != 3 || recs[1].StatusCode != 429 || recs[1].ErrorCode != "TooManyRequestsException" {
		t.Fatalf("records %+v", recs)
	}
}

func TestLambda_ScriptedThrottleCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	register(t, s, awstest.Function{Name: "f"})
	s.FailNext("lambda:Invoke", 1, awstest.TooManyRequests(1500*time.Millisecond))
	_, err := s.LambdaClient().Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")})
	var tm *lambdatypes.TooManyRequestsException
	if !errors.As(err, &tm) || aws.ToString(tm.RetryAfterSeconds) != "2" {
		t.Fatalf("got %v", err)
	}
}

func TestLambda_RequestErrors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, func(o *awstest.Options) { o.Lambda.AsyncPayloadLimit = 1024 })
	register(t, s, awstest.Function{Name: "f"})
	c := s.LambdaClient()
	big := []byte(`"` + strings.Repeat("x", awstest.LambdaSyncPayloadLimit) + `"`)
	tests := []struct {
		name  string
		in    lambda.InvokeInput
		check func(*testing.T, error)
	}{
		{"missing function", lambda.InvokeInput{FunctionName: aws.String("nope")}, func(t *testing.T, err error) {
			var e *lambdatypes.ResourceNotFoundException
			if !errors.As(err, &e) || httpStatus(t, err) != 404 || !strings.Contains(e.ErrorMessage(), "function:nope") {
				t.Fatalf("got %v", err)
			}
		}},
		{"unknown qualifier", lambda.InvokeInput{FunctionName: aws.String("f"), Qualifier: aws.String("7")}, isA[*lambdatypes.ResourceNotFoundException]("ResourceNotFoundException")},
		{"conflicting qualifiers", lambda.InvokeInput{FunctionName: aws.String("f:a"), Qualifier: aws.String("b")}, isA[*lambdatypes.InvalidParameterValueException]("InvalidParameterValueException")},
		{"payload not JSON", lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte("{nope")}, func(t *testing.T, err error) {
			var e *lambdatypes.InvalidRequestContentException
			if !errors.As(err, &e) || httpStatus(t, err) != 400 || aws.ToString(e.Type) != "User" {
				t.Fatalf("got %v", err)
			}
		}},
		{"sync payload over 6 MB", lambda.InvokeInput{FunctionName: aws.String("f"), Payload: big}, func(t *testing.T, err error) {
			var e *lambdatypes.RequestTooLargeException
			if !errors.As(err, &e) || httpStatus(t, err) != 413 {
				t.Fatalf("got %v", err)
			}
		}},
		{"event payload over the async limit", lambda.InvokeInput{FunctionName: aws.String("f"), InvocationType: lambdatypes.InvocationTypeEvent,
			Payload: []byte(`"` + strings.Repeat("x", 2000) + `"`)}, isA[*lambdatypes.RequestTooLargeException]("RequestTooLargeException")},
		{"bad client context", lambda.InvokeInput{FunctionName: aws.String("f"), ClientContext: aws.String("%%%")}, isA[*lambdatypes.InvalidParameterValueException]("InvalidParameterValueException")},
		{"another account", lambda.InvokeInput{FunctionName: aws.String("999999999999:function:f")}, hasCode("AccessDeniedException")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			_, err := c.Invoke(t.Context(), &in)
			tt.check(t, err)
		})
	}
}

func TestLambda_LogTailClientContextAndLatency(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	register(t, s, awstest.Function{Name: "f", Handler: echo, Latency: time.Second})
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
	done := make(chan *lambda.InvokeOutput, 1)
	go func() {
		out, err := s.LambdaClient().Invoke(context.Background(), &lambda.InvokeInput{
			FunctionName: aws.String("f"), LogType: lambdatypes.LogTypeTail, ClientContext: &cc, Payload: []byte(`1`),
		})
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	waitFor(t, "the latency to start", func() bool { return clk.Timers() == 1 })
	clk.Advance(time.Second)
	out := <-done
	if out == nil {
		t.FailNow()
	}
	log, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil || !strings.Contains(string(log), "echoing f") || !strings.HasPrefix(string(log), "START RequestId: ") {
		t.Fatalf("log %q %v", log, err)
	}
	if r := s.Lambda().Invocations("f")[0]; string(r.ClientContext) != `{"custom":{"k":"v"}}` || r.LogType != "Tail" {
		t.Fatalf("record %+v", r)
	}
}

func TestLambda_AutoCreate(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, func(o *awstest.Options) { o.Lambda.AutoCreate = true })
	out, err := s.LambdaClient().Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("anything")})
	if err != nil || string(out.Payload) != "{}" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestLambda_OversizedResponseIsAFunctionError(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, func(o *awstest.Options) { o.Lambda.SyncPayloadLimit = 100 })
	register(t, s, awstest.Function{Name: "f", Handler: func(context.Context, awstest.Invocation) awstest.Result {
		return awstest.JSONResult(strings.Repeat("x", 200))
	}})
	out, err := s.LambdaClient().Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "Function.ResponseSizeTooLarge") {
		t.Fatalf("%+v %s", out, out.Payload)
	}
}

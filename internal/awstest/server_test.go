package awstest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// epoch is where every manual clock starts.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newServer starts a server on a manual clock; opts may adjust its options.
func newServer(t *testing.T, opts ...func(*awstest.Options)) (*awstest.Server, *awstest.ManualClock) {
	t.Helper()
	clk := awstest.NewManualClock(epoch)
	o := awstest.Options{Clock: clk}
	for _, fn := range opts {
		fn(&o)
	}
	return awstest.NewTestServer(t, o), clk
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// apiCode returns the smithy.APIError code of err, failing if there is none.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not a smithy.APIError", err, err)
	}
	return ae.ErrorCode()
}

// httpStatus returns the HTTP status the SDK saw for err.
func httpStatus(t *testing.T, err error) int {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v has no HTTP response", err)
	}
	return re.HTTPStatusCode()
}

func createQueue(t *testing.T, s *awstest.Server, name string, attrs map[string]string) string {
	t.Helper()
	u, err := s.SQS().CreateQueue(name, attrs)
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return u
}

func TestServer_RejectsUnsignedRequests(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	createQueue(t, s, "q", nil)
	anon := func(o *aws.Config) { o.Credentials = aws.AnonymousCredentials{} }
	cfg := s.AWSConfig()
	anon(&cfg)

	_, err := sqs.NewFromConfig(cfg).GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String("q")})
	if got := apiCode(t, err); got != "MissingAuthenticationToken" {
		t.Errorf("sqs: code %q, want MissingAuthenticationToken", got)
	}
	if got := httpStatus(t, err); got != http.StatusForbidden {
		t.Errorf("sqs: status %d, want 403", got)
	}
	_, err = lambda.NewFromConfig(cfg).Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")})
	if got := apiCode(t, err); got != "MissingAuthenticationTokenException" {
		t.Errorf("lambda: code %q", got)
	}
	_, err = ecs.NewFromConfig(cfg).ListTasks(t.Context(), &ecs.ListTasksInput{})
	if got := apiCode(t, err); got != "MissingAuthenticationTokenException" {
		t.Errorf("ecs: code %q", got)
	}
	if n := s.Calls("sqs:GetQueueUrl"); n != 1 {
		t.Errorf("unsigned calls are still counted: got %d", n)
	}
}

func TestServer_AllowUnsignedServesAnonymousClients(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, func(o *awstest.Options) { o.AllowUnsigned = true })
	createQueue(t, s, "q", nil)
	cfg := s.AWSConfig()
	cfg.Credentials = aws.AnonymousCredentials{}
	if _, err := sqs.NewFromConfig(cfg).GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String("q")}); err != nil {
		t.Fatal(err)
	}
}

func TestServer_UnknownTargetIsUnknownOperation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	for _, target := range []string{"AmazonSQS.NoSuchThing", "AmazonEC2ContainerServiceV20141113.CreateService", ""} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "UnknownOperationException") {
			t.Errorf("target %q: %d %s", target, resp.StatusCode, body)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestServer_StartOnRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	s := awstest.New(awstest.Options{})
	defer s.Close()
	if err := s.StartOn("0.0.0.0:0"); err == nil {
		t.Fatal("listening on 0.0.0.0 was allowed")
	}
	if s.URL() != "" {
		t.Fatalf("URL %q before start", s.URL())
	}
}

func TestServer_CloseEndsLongPollsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	clk := awstest.NewManualClock(epoch)
	s := awstest.New(awstest.Options{Clock: clk})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	u := createQueue(t, s, "q", nil)
	done := make(chan error, 1)
	go func() {
		_, err := s.SQSClient().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &u, WaitTimeSeconds: 20})
		done <- err
	}()
	waitFor(t, "the long poll to wait", func() bool { return s.SQS().Waiting("q") == 1 })
	s.Close()
	s.Close()
	<-done // returned without the clock moving
	if err := s.Start(); err == nil {
		t.Fatal("a closed server started again")
	}
}

func TestFault_FailNextThenRecover(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	s.FailNext("sqs:ReceiveMessage", 2, awstest.Throttled())
	for i := range 2 {
		_, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &u})
		if got := apiCode(t, err); got != "ThrottlingException" {
			t.Fatalf("call %d: code %q", i, got)
		}
		if st := httpStatus(t, err); st != 400 {
			t.Fatalf("call %d: status %d", i, st)
		}
	}
	if _, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &u}); err != nil {
		t.Fatalf("third call: %v", err)
	}
	st := s.Stats()
	if st.Calls["sqs:ReceiveMessage"] != 3 || st.Faults["sqs:ReceiveMessage"] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFault_TypedSQSErrorThroughFault(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	s.FailNext("sqs:SendMessage", 1, awstest.Fault{Code: "QueueDoesNotExist", Message: "gone"})
	_, err := s.SQSClient().SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x")})
	var qdne *sqstypes.QueueDoesNotExist
	if !errors.As(err, &qdne) {
		t.Fatalf("got %T %v", err, err)
	}
	if qdne.ErrorCode() != "AWS.SimpleQueueService.NonExistentQueue" || qdne.ErrorFault() != smithy.FaultClient {
		t.Fatalf("code %q fault %v", qdne.ErrorCode(), qdne.ErrorFault())
	}
}

func TestFault_ResourceScopedRuleAppliesToOneFunction(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	for _, n := range []string{"f", "g"} {
		if err := s.Lambda().Register(awstest.Function{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	s.InjectFault(awstest.FaultRule{Op: "lambda:Invoke", Resource: "f", Times: 3, Fault: awstest.Unavailable()})
	c := s.LambdaClient()
	for i := range 3 {
		_, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("g")})
		if err != nil {
			t.Fatalf("g: %v", err)
		}
		_, err = c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f")})
		if got := apiCode(t, err); got != "UnknownError" || httpStatus(t, err) != 503 {
			t.Fatalf("f call %d: %v", i, err)
		}
	}
	if _, err := c.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatalf("f after 3 faults: %v", err)
	}
}

func TestFault_LatencyWaitsOnTheClock(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", nil)
	remove := s.InjectFault(awstest.FaultRule{Op: "sqs:DeleteMessageBatch", Fault: awstest.Fault{Latency: 200 * time.Millisecond}})
	defer remove()
	done := make(chan error, 1)
	go func() {
		_, err := s.SQSClient().DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{
			QueueUrl: &u, Entries: []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("a"), ReceiptHandle: aws.String("bogus")}},
		})
		done <- err
	}()
	waitFor(t, "the delay to start", func() bool { return clk.Timers() == 1 })
	select {
	case err := <-done:
		t.Fatalf("returned before the clock moved: %v", err)
	default:
	}
	clk.Advance(200 * time.Millisecond)
	if err := <-done; err != nil {
		t.Fatalf("after latency: %v", err)
	}
	if n := s.Stats().Faults["sqs:DeleteMessageBatch"]; n != 0 {
		t.Fatalf("latency alone counted as %d faults", n)
	}
}

func TestFault_HookSeesOperationAndBody(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	s.SetHook(func(op string, r *http.Request) *awstest.Fault {
		b, _ := io.ReadAll(r.Body)
		if op == "sqs:SendMessage" && strings.Contains(string(b), "poison") {
			f := awstest.InternalError("InternalError")
			return &f
		}
		return nil
	})
	c := s.SQSClient()
	if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("fine")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("poison")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InternalError" || ae.ErrorFault() != smithy.FaultServer || httpStatus(t, err) != 500 {
		t.Fatalf("got %v", err)
	}
}

func TestFault_DropLooksLikeAReset(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	s.FailNext("ecs:ListTasks", 1, awstest.Fault{Drop: true})
	_, err := s.ECSClient().ListTasks(t.Context(), &ecs.ListTasksInput{})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("want a transport error, got %v", err)
	}
	if _, err := s.ECSClient().ListTasks(t.Context(), &ecs.ListTasksInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestFault_TypedECSAndLambdaErrors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	if err := s.Lambda().Register(awstest.Function{Name: "f"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		op    string
		fault awstest.Fault
		call  func() error
		check func(t *testing.T, err error)
	}{
		{
			name: "ecs ServerException", op: "ecs:ListTasks", fault: awstest.InternalError("ServerException"),
			call: func() error { _, err := s.ECSClient().ListTasks(t.Context(), &ecs.ListTasksInput{}); return err },
			check: func(t *testing.T, err error) {
				var e *ecstypes.ServerException
				if !errors.As(err, &e) || httpStatus(t, err) != 500 {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "ecs AccessDeniedException", op: "ecs:ListTasks", fault: awstest.Fault{Code: "AccessDeniedException", Message: "no"},
			call: func() error { _, err := s.ECSClient().ListTasks(t.Context(), &ecs.ListTasksInput{}); return err },
			check: func(t *testing.T, err error) {
				var e *ecstypes.AccessDeniedException
				if !errors.As(err, &e) || e.ErrorMessage() != "no" {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "ecs ThrottlingException", op: "ecs:ListTasks", fault: awstest.Throttled(),
			call: func() error { _, err := s.ECSClient().ListTasks(t.Context(), &ecs.ListTasksInput{}); return err },
			check: func(t *testing.T, err error) {
				if apiCode(t, err) != "ThrottlingException" {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "lambda EC2ThrottledException", op: "lambda:Invoke", fault: awstest.Fault{Code: "EC2ThrottledException", Message: "ec2"},
			call: func() error {
				_, err := s.LambdaClient().Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f")})
				return err
			},
			check: func(t *testing.T, err error) {
				if apiCode(t, err) != "EC2ThrottledException" || httpStatus(t, err) != 502 {
					t.Fatalf("got %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.FailNext(tt.op, 1, tt.fault)
			tt.check(t, tt.call())
		})
	}
}

func TestStats_CountsCallsPerOperation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	for range 3 {
		if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x")}); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Calls["sqs:SendMessage"] != 3 || st.Queues["q"].Visible != 3 {
		t.Fatalf("stats %+v", st)
	}
	s.ResetStats()
	if s.Calls("sqs:SendMessage") != 0 {
		t.Fatal("reset kept counts")
	}
}

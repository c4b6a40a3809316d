package awstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/internal/bodycopy"
)

// Identity the server assumes when none is configured, and the static
// credentials its clients sign with. Signatures are never checked.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	AccessKeyID      = "AKIAAWSTEST000000000"
	SecretAccessKey  = "awstest-secret-access-key"
)

// maxRequestBody bounds what the server reads of any request: above Lambda's
// 6 MB synchronous payload limit, so that limit can be reported as AWS does.
const maxRequestBody = 8 << 20

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Region appears in ARNs and queue URLs. Default DefaultRegion.
	Region string
	// AccountID appears in ARNs and queue URLs. Default DefaultAccountID.
	AccountID string
	// Clock drives visibility timeouts, delays, long-poll deadlines, task
	// timestamps and injected latency. Default RealClock.
	Clock Clock
	// AllowUnsigned serves requests that carry no Authorization header.
	// By default they are refused as AWS refuses them (MissingAuthenticationToken).
	AllowUnsigned bool
	// Lambda configures the Lambda endpoint.
	Lambda LambdaOptions
	// ECS configures the ECS endpoint.
	ECS ECSOptions
	// ProbeLatency measures receive-to-invoke latency: see
	// [Server.ReceiveToInvoke]. It keeps one entry per message received.
	ProbeLatency bool
}

// Hook is consulted for every call that no FaultRule matched; a non-nil
// Fault is applied to the call. op is "service:Operation"; r's body can be
// read again. A Hook runs on the request's goroutine and must be safe for
// concurrent use.
type Hook func(op string, r *http.Request) *Fault

// Server serves SQS, Lambda, ECS, S3, SSM, SNS, Kinesis, Step Functions
// and EventBridge on one URL. New starts nothing; Start, StartOn or
// NewTestServer listen on loopback. Every method is safe for concurrent
// use.
//
// Lock order: Server.mu is never held while a service's own mutex is taken,
// nor the other way round.
type Server struct {
	region, account string
	clock           Clock
	allowUnsigned   bool

	sqs    *SQS
	lambda *Lambda
	ecs    *ECS
	s3     *S3
	ssm    *SSM
	sfn    *StepFunctions
	events *EventBridge
	probe  *probe // nil unless Options.ProbeLatency

	sns     *SNS
	kinesis *Kinesis

	mu     sync.Mutex
	calls  map[string]int64
	faults map[string]int64
	rules  []*faultRule
	hook   Hook
	ts     *httptest.Server
	closed bool

	base       context.Context // cancelled by Close: ends long polls, latency, handlers
	cancelBase context.CancelFunc
	closeOnce  sync.Once
	async      sync.WaitGroup // asynchronous (Event) invocations
	transport  *http.Transport
	httpClient *http.Client
}

// New returns a Server that is an http.Handler and listens nowhere yet.
func New(opts Options) *Server {
	s := &Server{
		region:        opts.Region,
		account:       opts.AccountID,
		clock:         opts.Clock,
		allowUnsigned: opts.AllowUnsigned,
		calls:         map[string]int64{},
		faults:        map[string]int64{},
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if s.clock == nil {
		s.clock = RealClock{}
	}
	if opts.ProbeLatency {
		s.probe = newProbe()
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.transport = &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	// The SDK clients' request bodies are copied: see internal/bodycopy.
	s.httpClient = &http.Client{Transport: bodycopy.Transport(s.transport)}
	s.sqs = newSQS(s)
	s.lambda = newLambda(s, opts.Lambda)
	s.ecs = newECS(s, opts.ECS)
	s.s3 = newS3(s)
	s.ssm = newSSM(s)
	s.sns = newSNS(s)
	s.kinesis = newKinesis(s)
	s.sfn = newStepFunctions(s)
	s.events = newEventBridge(s)
	return s
}

// NewTestServer returns a started Server that tb's cleanup closes.
func NewTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		tb.Fatalf("awstest: start: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start listens on 127.0.0.1 on a free port and serves. It fails if the
// server was started or closed before.
func (s *Server) Start() error { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr, which must be a loopback address (127.0.0.0/8,
// ::1 or localhost), and serves.
func (s *Server) StartOn(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("awstest: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("awstest: listen address %q is not loopback", addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("awstest: server is closed")
	}
	if s.ts != nil {
		return errors.New("awstest: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("awstest: listen: %w", err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // dropped connections are scripted
	ts.Start()
	s.ts = ts
	return nil
}

// URL returns the base URL ("http://127.0.0.1:port"), or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Close ends long polls, injected delays and running handlers (through their
// context), stops listening, waits for requests and asynchronous invocations
// to finish and closes the clients' idle connections. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancelBase()
		s.mu.Lock()
		s.closed = true
		ts := s.ts
		s.mu.Unlock()
		if ts != nil {
			ts.Close()
		}
		s.async.Wait()
		s.transport.CloseIdleConnections()
	})
}

// Clock returns the server's clock.
func (s *Server) Clock() Clock { return s.clock }

// Region returns the region in the server's ARNs.
func (s *Server) Region() string { return s.region }

// AccountID returns the account in the server's ARNs.
func (s *Server) AccountID() string { return s.account }

// SQS returns the SQS endpoint's state and test helpers.
func (s *Server) SQS() *SQS { return s.sqs }

// Lambda returns the Lambda endpoint's state and test helpers.
func (s *Server) Lambda() *Lambda { return s.lambda }

// ECS returns the ECS endpoint's state and test helpers.
func (s *Server) ECS() *ECS { return s.ecs }

// S3 returns the S3 endpoint's state and test helpers.
func (s *Server) S3() *S3 { return s.s3 }

// SSM returns the SSM endpoint's state and test helpers.
func (s *Server) SSM() *SSM { return s.ssm }

// SNS returns the SNS endpoint's state and test helpers.
func (s *Server) SNS() *SNS { return s.sns }

// Kinesis returns the Kinesis endpoint's state and test helpers.
func (s *Server) Kinesis() *Kinesis { return s.kinesis }

// StepFunctions returns the Step Functions endpoint's state and test helpers.
func (s *Server) StepFunctions() *StepFunctions { return s.sfn }

// EventBridge returns the EventBridge endpoint's state and test helpers.
func (s *Server) EventBridge() *EventBridge { return s.events }

// AWSConfig returns a config for code under test: BaseEndpoint is URL(),
// region is the server's, credentials are static, and the HTTP client is the
// server's own (Close releases its connections). Retryer is aws.NopRetryer,
// so a scripted fault reaches the caller as sent; code that owns its retries
// sets its own Retryer. Call it after Start.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   s.httpClient,
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// SQSClient returns an SQS client for AWSConfig, with optFns applied.
func (s *Server) SQSClient(optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(s.AWSConfig(), optFns...)
}

// LambdaClient returns a Lambda client for AWSConfig, with optFns applied.
func (s *Server) LambdaClient(optFns ...func(*lambda.Options)) *lambda.Client {
	return lambda.NewFromConfig(s.AWSConfig(), optFns...)
}

// ECSClient returns an ECS client for AWSConfig, with optFns applied.
func (s *Server) ECSClient(optFns ...func(*ecs.Options)) *ecs.Client {
	return ecs.NewFromConfig(s.AWSConfig(), optFns...)
}

// SFNClient returns a Step Functions client for AWSConfig, with optFns
// applied. StartSyncExecution goes to URL() as it is: the SDK would send it
// to the host sync-<host> (AWS's sync-states endpoint), which a loopback
// address has not.
func (s *Server) SFNClient(optFns ...func(*sfn.Options)) *sfn.Client {
	return sfn.NewFromConfig(s.AWSConfig(), append([]func(*sfn.Options){withoutHostPrefix}, optFns...)...)
}

// withoutHostPrefix turns off the SDK's endpoint host prefixes.
func withoutHostPrefix(o *sfn.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("AWSTestNoHostPrefix",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
			}), middleware.Before)
	})
}

// EventBridgeClient returns an EventBridge client for AWSConfig, with
// optFns applied.
func (s *Server) EventBridgeClient(optFns ...func(*eventbridge.Options)) *eventbridge.Client {
	return eventbridge.NewFromConfig(s.AWSConfig(), optFns...)
}

// Setenv points the SDK's default chain (config.LoadDefaultConfig) at the
// server for the rest of tb, through the process environment: static
// credentials, the server's region, AWS_ENDPOINT_URL for every service, and
// no shared config files, profile or instance metadata. Tests that call it
// cannot run in parallel (testing.T.Setenv refuses).
func (s *Server) Setenv(tb testing.TB) {
	tb.Helper()
	none := filepath.Join(tb.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": AccessKeyID, "AWS_SECRET_ACCESS_KEY": SecretAccessKey, "AWS_REGION": s.region,
		"AWS_ENDPOINT_URL": s.URL(), "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		tb.Setenv(k, v)
	}
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SSM", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		tb.Setenv(k, "") // restored after tb
		os.Unsetenv(k)
	}
}

// S3Client returns an S3 client for AWSConfig, with optFns applied. The
// endpoint being an IP address, the SDK addresses buckets path style.
func (s *Server) S3Client(optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), optFns...)
}

// SSMClient returns an SSM client for AWSConfig, with optFns applied.
func (s *Server) SSMClient(optFns ...func(*ssm.Options)) *ssm.Client {
	return ssm.NewFromConfig(s.AWSConfig(), optFns...)
}

// SNSClient returns an SNS client for AWSConfig, with optFns applied.
func (s *Server) SNSClient(optFns ...func(*sns.Options)) *sns.Client {
	return sns.NewFromConfig(s.AWSConfig(), optFns...)
}

// KinesisClient returns a Kinesis client for AWSConfig, with optFns applied.
func (s *Server) KinesisClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(s.AWSConfig(), optFns...)
}

// Calls returns how many requests for op ("sqs:ReceiveMessage") arrived,
// faulted ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.calls[op])
}

// Stats is a snapshot of what the server has seen.
type Stats struct {
	// Calls counts requests per operation, faulted ones included.
	Calls map[string]int64 `json:"calls"`
	// Faults counts requests per operation answered by an injected fault
	// (latency alone is not a fault).
	Faults map[string]int64 `json:"faults"`
	// Queues holds each queue's message counts.
	Queues map[string]QueueCounts `json:"queues"`
}

// Stats returns a snapshot of the counters and queue depths.
func (s *Server) Stats() Stats {
	st := Stats{Calls: map[string]int64{}, Faults: map[string]int64{}}
	s.mu.Lock()
	for k, v := range s.calls {
		st.Calls[k] = v
	}
	for k, v := range s.faults {
		st.Faults[k] = v
	}
	s.mu.Unlock()
	st.Queues = s.sqs.allCounts()
	return st
}

// ResetStats zeroes the call and fault counters and the latency probe.
func (s *Server) ResetStats() {
	if s.probe != nil {
		s.probe.reset()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int64{}
	s.faults = map[string]int64{}
}

// call is one request on its way through the server.
type call struct {
	svc      string // "sqs", "lambda", "ecs", "s3", "ssm", "states", "events"
	op       string // "ReceiveMessage"
	name     string // "sqs:ReceiveMessage"
	resource string // queue, function, cluster, bucket, parameter, state machine or event bus name
	r        *http.Request
	ctx      context.Context // r's context, also cancelled by Close
	body     []byte
	// entryFault fails only some entries of an SQS batch call.
	entryFault *Fault
}

const (
	sqsTargetPrefix = "AmazonSQS."
	ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."
	ssmTargetPrefix = "AmazonSSM."
	sfnTargetPrefix = "AWSStepFunctions."
	eventsPrefix    = "AWSEvents."
	lambdaInvoke    = "/2015-03-31/functions/"
)

const kinesisTargetPrefix = "Kinesis_20131202."

// StatsPath serves Stats as JSON to GET requests, unsigned.
const StatsPath = "/_awstest/stats"

// ServeHTTP routes by X-Amz-Target (SQS, ECS, SSM, Kinesis, Step Functions,
// EventBridge), path (Lambda) or method (S3: requests other than POST
// without X-Amz-Target), counts the call, applies faults and answers. GET
// StatsPath answers Stats as JSON.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatsPath && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, contentJSON, s.Stats())
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_awstest/") && s.serveControl(w, r) {
		return
	}
	w.Header().Set("X-Amzn-Requestid", newID())
	c := &call{r: r}
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(r.URL.Path, lambdaInvoke):
		c.svc = "lambda"
		name, ok := lambdaFunctionFromPath(r.URL.EscapedPath())
		if !ok || r.Method != http.MethodPost {
			writeAPIError(w, "lambda", &APIError{Status: http.StatusNotFound, Code: "UnknownOperationException", Message: "Unknown operation " + r.Method + " " + r.URL.Path})
			return
		}
		c.op, c.resource = "Invoke", lambdaShortName(name)
	case strings.HasPrefix(target, sqsTargetPrefix):
		c.svc, c.op = "sqs", strings.TrimPrefix(target, sqsTargetPrefix)
	case strings.HasPrefix(target, ecsTargetPrefix):
		c.svc, c.op = "ecs", strings.TrimPrefix(target, ecsTargetPrefix)
	case strings.HasPrefix(target, ssmTargetPrefix):
		c.svc, c.op = "ssm", strings.TrimPrefix(target, ssmTargetPrefix)
	case strings.HasPrefix(target, kinesisTargetPrefix):
		c.svc, c.op = "kinesis", strings.TrimPrefix(target, kinesisTargetPrefix)
	case target == "" && r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		// SNS speaks awsQuery: the operation is the form's Action.
		c.svc, c.op = "sns", snsAction(r)
	case strings.HasPrefix(target, sfnTargetPrefix):
		c.svc, c.op = "states", strings.TrimPrefix(target, sfnTargetPrefix)
	case strings.HasPrefix(target, eventsPrefix):
		c.svc, c.op = "events", strings.TrimPrefix(target, eventsPrefix)
	case target == "" && r.Method != http.MethodPost:
		c.svc, c.op = "s3", "Unsupported"
		if _, key := s3Address(r); r.Method == http.MethodGet && key != "" {
			c.op = "GetObject"
		}
		c.resource = s3Resource(r)
	default:
		svc := "ecs"
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0") {
			svc = "sqs"
		}
		writeAPIError(w, svc, &APIError{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "awstest: no operation for X-Amz-Target " + fmt.Sprintf("%q", target)})
		return
	}
	c.name = c.svc + ":" + c.op
	s.mu.Lock()
	s.calls[c.name]++
	s.mu.Unlock()

	if (c.svc == "sqs" || c.svc == "ecs" || c.svc == "ssm" || c.svc == "kinesis" || c.svc == "states" || c.svc == "events") && r.Method != http.MethodPost {
		writeAPIError(w, c.svc, &APIError{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "awstest: the JSON protocols take POST"})
		return
	}
	if !s.allowUnsigned && r.Header.Get("Authorization") == "" {
		writeAPIError(w, c.svc, missingAuth(c.svc))
		return
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		writeAPIError(w, c.svc, &APIError{Status: http.StatusBadRequest, Code: "SerializationException", Message: "awstest: read request body: " + err.Error()})
		return
	}
	if len(body) > maxRequestBody {
		code := "RequestEntityTooLarge"
		if c.svc == "lambda" {
			code = "RequestTooLargeException"
		}
		writeAPIError(w, c.svc, &APIError{Status: http.StatusRequestEntityTooLarge, Code: code, Message: "Request must be smaller than " + fmt.Sprint(maxRequestBody) + " bytes"})
		return
	}
	c.body = body
	switch c.svc {
	case "sqs":
		c.resource = sqsResource(body)
	case "ecs":
		c.resource = ecsResource(body)
	case "ssm":
		c.resource = ssmResource(body)
	case "sns":
		c.resource = snsResource(body)
	case "kinesis":
		c.resource = kinesisResource(body)
	case "states":
		c.resource = sfnResource(body)
	case "events":
		c.resource = eventsResource(body)
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	c.ctx = ctx

	f := s.matchFault(c)
	if f != nil && f.Latency > 0 {
		if err := s.sleep(ctx, f.Latency); err != nil {
			return // the client went away or the server is closing
		}
	}
	if f != nil && f.isError() {
		s.mu.Lock()
		s.faults[c.name]++
		s.mu.Unlock()
		if len(f.BatchEntries) > 0 {
			c.entryFault = f
		} else {
			if f.Commit {
				s.dispatch(httptest.NewRecorder(), c)
			}
			s.writeFault(w, c, f)
			return
		}
	}
	s.dispatch(w, c)
}

func (s *Server) dispatch(w http.ResponseWriter, c *call) {
	switch c.svc {
	case "sqs":
		s.sqs.serve(w, c)
	case "ecs":
		s.ecs.serve(w, c)
	case "lambda":
		s.lambda.serve(w, c)
	case "s3":
		s.s3.serve(w, c)
	case "ssm":
		s.ssm.serve(w, c)
	case "sns":
		s.sns.serve(w, c)
	case "kinesis":
		s.kinesis.serve(w, c)
	case "states":
		s.sfn.serve(w, c)
	case "events":
		s.events.serve(w, c)
	}
}

// sleep waits d on the server's clock, or until ctx ends.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	ch, stop := s.clock.NewTimer(d)
	defer stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func missingAuth(svc string) *APIError {
	e := &APIError{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}
	if svc == "s3" {
		// S3 serves anonymous requests, and refuses them on private buckets.
		return &APIError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied"}
	}
	if svc == "sns" {
		e.Code = "MissingAuthenticationToken"
	}
	if svc == "sqs" {
		// SQS names it without the suffix (its Common Errors); the query
		// code is what the SDK reports as ErrorCode().
		e.Code = "MissingAuthenticationToken"
		e.Message = "The request must contain either a valid (registered) AWS access key ID or X.509 certificate."
	}
	return e
}

// readable returns a copy of r whose body can be read again.
func readable(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	return r2
}

// newID returns a random UUID (version 4) string.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

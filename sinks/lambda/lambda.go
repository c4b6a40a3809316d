package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the Lambda client the sink uses; *lambda.Client has
// it. The client should not retry (aws.NopRetryer): the policy does.
type API interface {
	Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Sink invokes a Lambda function with each delivery.
type Sink struct {
	name  string
	cfg   Config
	api   API
	batch *batcher // nil unless batch mode
}

// New returns a sink for cfg (defaults applied). It starts nothing; in
// batch mode, Close sends what is still waiting.
func New(name string, cfg Config, api API) *Sink {
	s := &Sink{name: name, cfg: cfg, api: api}
	if cfg.Batch != nil {
		s.batch = &batcher{s: s, in: make(chan *pending), closing: make(chan struct{}), closed: make(chan struct{})}
	}
	return s
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// maxClientContext is Lambda's limit on the base64 client context.
const maxClientContext = 3583

// Deliver invokes the function once with the delivery's payload (text
// payloads as a JSON string, dead letters as router.DeadLetterDocument).
// Synchronous invocations carry the delivery and event ids in the client
// context's custom fields. The delivery's trace context (OutboundTrace)
// goes as the X-Amzn-Trace-Id header, in X-Ray form.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	if s.batch != nil {
		return s.deliverBatched(ctx, d)
	}
	in := &lambda.InvokeInput{
		FunctionName: aws.String(s.cfg.Function),
		Payload:      router.JSONPayload(d),
	}
	if s.cfg.Qualifier != "" {
		in.Qualifier = aws.String(s.cfg.Qualifier)
	}
	if s.cfg.Invocation == "event" {
		in.InvocationType = types.InvocationTypeEvent
	} else {
		in.InvocationType = types.InvocationTypeRequestResponse
		in.ClientContext = clientContext(d)
	}
	out, err := s.api.Invoke(ctx, in, invokeOptions(d)...)
	if err != nil {
		return classify(err)
	}
	if out.FunctionError != nil {
		// The function ran and failed: worth another try, with its error.
		return router.RetryableError(fmt.Errorf("lambda %s: function error (%s): %s", s.cfg.Function, aws.ToString(out.FunctionError), clip(out.Payload, 512)), 0)
	}
	return nil
}

// clientContext is the base64 JSON client context with the delivery's
// ids, or nil when it would exceed Lambda's limit.
func clientContext(d *router.Delivery) *string {
	cc := map[string]any{"custom": map[string]string{
		"switchyard_delivery_id": d.ID, "switchyard_rule": d.Rule, "switchyard_message_id": d.Message.ID,
	}}
	b, _ := json.Marshal(cc)
	s := base64.StdEncoding.EncodeToString(b)
	if len(s) > maxClientContext {
		return nil
	}
	return &s
}

// classify turns an Invoke error into a delivery error: throttles carry
// Lambda's Retry-After; the request's own faults are permanent; 5xx and
// transport errors are retryable.
func classify(err error) error {
	var tooMany *types.TooManyRequestsException
	if errors.As(err, &tooMany) {
		var after time.Duration
		if s, perr := strconv.Atoi(aws.ToString(tooMany.RetryAfterSeconds)); perr == nil {
			after = time.Duration(s) * time.Second
		}
		return router.ThrottledError(err, after)
	}
	return awserr.Classify(err, invokeCodes)
}

var invokeCodes = awserr.Codes{
	Throttled: []string{"TooManyRequestsException", "EC2ThrottledException", "ThrottlingException"},
	Permanent: []string{"ResourceNotFoundException", "InvalidRequestContentException", "RequestTooLargeException",
		"InvalidParameterValueException", "UnsupportedMediaTypeException", "ResourceConflictException",
		"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"},
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/batch"
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
	batch *batch.Batcher[*pending] // nil unless batch mode
}

// New returns a sink for cfg (defaults applied). It starts nothing; in
// batch mode, Close sends what is still waiting.
func New(name string, cfg Config, api API) *Sink {
	s := &Sink{name: name, cfg: cfg, api: api}
	if cfg.Batch != nil {
		s.batch = s.newBatcher()
	}
	return s
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// maxClientContext is Lambda's limit on the base64 client context.
const maxClientContext = 3583

// Lambda's payload limits (Lambda quotas): 6 MB for a synchronous
// (request_response) invocation, 1 MB for an asynchronous (event) one. A
// payload over them is refused before the call: Lambda would answer
// RequestTooLargeException, after the bytes were sent.
const (
	maxSyncPayload  = 6 << 20
	maxAsyncPayload = 1 << 20
)

// tooLarge is the permanent error of a payload of n bytes over limit.
func (s *Sink) tooLarge(n, limit int) error {
	return router.PermanentError(fmt.Errorf("lambda %s: the payload is %d bytes, over Lambda's limit of %d bytes (%d MB) for %s invocations: not sent",
		s.cfg.Function, n, limit, limit>>20, s.cfg.Invocation))
}

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
	limit := maxSyncPayload
	if s.cfg.Invocation == "event" {
		limit = maxAsyncPayload
	}
	if len(in.Payload) > limit {
		return s.tooLarge(len(in.Payload), limit)
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
		return s.functionError(out)
	}
	return nil
}

// functionError is the delivery error of a function that ran and failed:
// permanent when its errorType is one of permanent_errors, else worth
// another try.
func (s *Sink) functionError(out *lambda.InvokeOutput) error {
	var answer struct {
		ErrorType string `json:"errorType"`
	}
	json.Unmarshal(out.Payload, &answer) // not JSON: no errorType
	err := fmt.Errorf("lambda %s: function error (%s): %s", s.cfg.Function, aws.ToString(out.FunctionError), clip(out.Payload, 512))
	if answer.ErrorType != "" && slices.Contains(s.cfg.PermanentErrors, answer.ErrorType) {
		return router.PermanentError(fmt.Errorf("%w (%s is one of permanent_errors)", err, answer.ErrorType))
	}
	return router.RetryableError(err, 0)
}

// clientContext is the base64 JSON client context with the delivery's
// ids, or nil when it would exceed Lambda's limit. It is written by hand:
// json.Marshal of a map (reflection, sorted keys) was a few percent of
// switchyard's CPU per invocation.
func clientContext(d *router.Delivery) *string {
	b := make([]byte, 0, 96+len(d.ID)+len(d.Message.ID)+len(d.Rule))
	b = append(b, `{"custom":{"switchyard_delivery_id":`...)
	b = appendJSONString(b, d.ID)
	b = append(b, `,"switchyard_message_id":`...)
	b = appendJSONString(b, d.Message.ID)
	b = append(b, `,"switchyard_rule":`...)
	b = appendJSONString(b, d.Rule)
	b = append(b, "}}"...)
	if base64.StdEncoding.EncodedLen(len(b)) > maxClientContext {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
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

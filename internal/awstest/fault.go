package awstest

import (
	"net/http"
	"time"
)

// Fault is what an injected failure does to a call. Latency alone delays the
// call, which then proceeds; any of Code, Status, Body or Drop makes the call
// fail. The error is rendered in the protocol of the service called: for SQS
// an AWS JSON 1.0 body {"__type":"com.amazonaws.sqs#Code","message":...} and
// the x-amzn-query-error header; for ECS an AWS JSON 1.1 body
// {"__type":"Code","message":...}, as for SSM and EventBridge; for Step Functions an AWS
// JSON 1.0 body {"__type":"com.amazonaws.swf.service.v2.model#Code",...}; for Lambda the X-Amzn-Errortype
// header and a body {"Type":...,"message":...,"Reason":...}; for S3 an XML
// <Error><Code>...</Code><Message>...</Message>...</Error>.
type Fault struct {
	// Status is the HTTP status. Zero means the status AWS uses for Code
	// (the SDK models' @httpError, e.g. 404 for Lambda's
	// ResourceNotFoundException, 429 for TooManyRequestsException, 500 for
	// ServiceException), else 400 (500 for codes naming an internal failure).
	Status int
	// Code is the AWS error code, e.g. "ThrottlingException",
	// "QueueDoesNotExist", "ServiceException". Empty with a Status: the
	// response carries Body (or nothing) and no error code, as a load
	// balancer's 502 or 503 would; the SDK then reports "UnknownError".
	Code string
	// Message is the error message.
	Message string
	// Type is Lambda's "Type" member; default "User" below 500, else "Service".
	Type string
	// Reason is Lambda's TooManyRequestsException Reason
	// (e.g. "ReservedFunctionConcurrentInvocationLimitExceeded").
	Reason string
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds (rounded up); the Lambda SDK reads it into RetryAfterSeconds.
	RetryAfter time.Duration
	// Header holds extra response headers.
	Header http.Header
	// Body replaces the AWS-shaped body (a Code then travels in the
	// X-Amzn-Errortype header only), e.g. to send a truncated or HTML body.
	Body []byte
	// Latency delays the call on the server's clock before anything else.
	Latency time.Duration
	// Drop closes the connection without a response (a reset, as far as the
	// client can tell).
	Drop bool
	// Commit runs the operation, with its effects, before the fault replaces
	// its response: a lost response, whose outcome the client cannot know.
	Commit bool
	// BatchEntries, for SQS batch operations (SendMessageBatch,
	// DeleteMessageBatch, ChangeMessageVisibilityBatch), fails only the
	// entries with these ids ("*" for all) with Code and Message in Failed[],
	// SenderFault true unless Status >= 500; the call itself succeeds. For
	// Kinesis PutRecords it fails the records with these partition keys,
	// with Code and Message as their ErrorCode and ErrorMessage. For
	// EventBridge PutEvents, the ids are the entries' positions from 0
	// ("0", "3"), failed with Code as their ErrorCode.
	BatchEntries []string
}

func (f *Fault) isError() bool {
	return f.Code != "" || f.Status != 0 || f.Body != nil || f.Drop || len(f.BatchEntries) > 0
}

func (f *Fault) failsEntry(id string) bool {
	for _, e := range f.BatchEntries {
		if e == "*" || e == id {
			return true
		}
	}
	return false
}

// Throttled is AWS's generic throttling error as SQS and ECS send it:
// 400 ThrottlingException "Rate exceeded".
func Throttled() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}
}

// TooManyRequests is Lambda's throttle: 429 TooManyRequestsException with a
// Retry-After header and Reason ReservedFunctionConcurrentInvocationLimitExceeded.
func TooManyRequests(retryAfter time.Duration) Fault {
	return Fault{
		Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Message: "Rate Exceeded.",
		Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", RetryAfter: retryAfter,
	}
}

// InternalError is a 500 with the service's internal-error code: SQS and
// ECS callers should pass the code they expect ("InternalFailure",
// "ServerException"); Lambda's is "ServiceException".
func InternalError(code string) Fault {
	return Fault{Status: http.StatusInternalServerError, Code: code, Message: "We encountered an internal error. Please try again."}
}

// Unavailable is a bare 503 with no error code, as a load balancer sends.
func Unavailable() Fault { return Fault{Status: http.StatusServiceUnavailable} }

// FaultRule scripts a Fault for matching calls.
type FaultRule struct {
	// Op is the operation, "sqs:ReceiveMessage"; empty matches every operation.
	Op string
	// Resource is the queue name (SQS), function name (Lambda, without
	// qualifier), cluster name (ECS), bucket (S3), parameter name (SSM,
	// an ARN reduced to the name) or state machine name (Step Functions,
	// of the stateMachineArn or executionArn); empty matches any.
	Resource string
	// Times is how many matching calls the rule applies to before it is
	// removed; zero means every matching call until removed.
	Times int
	// Fault is applied to each matching call.
	Fault Fault
}

type faultRule struct {
	FaultRule
	left int
}

// InjectFault adds a rule, consulted before the Hook and after the rules
// added before it; the first matching rule applies. remove deletes the rule
// and is idempotent.
func (s *Server) InjectFault(rule FaultRule) (remove func()) {
	fr := &faultRule{FaultRule: rule, left: rule.Times}
	s.mu.Lock()
	s.rules = append(s.rules, fr)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removeRuleLocked(fr)
	}
}

// FailNext makes the next n calls of op (any resource) fail with f.
func (s *Server) FailNext(op string, n int, f Fault) {
	s.InjectFault(FaultRule{Op: op, Times: n, Fault: f})
}

// ClearFaults removes every rule and the hook.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
	s.hook = nil
}

// SetHook installs h (nil removes it).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

func (s *Server) removeRuleLocked(fr *faultRule) {
	for i, x := range s.rules {
		if x == fr {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
			return
		}
	}
}

func (s *Server) matchFault(c *call) *Fault {
	s.mu.Lock()
	for _, fr := range s.rules {
		if (fr.Op != "" && fr.Op != c.name) || (fr.Resource != "" && fr.Resource != c.resource) {
			continue
		}
		f := fr.Fault
		if fr.Times > 0 {
			fr.left--
			if fr.left <= 0 {
				s.removeRuleLocked(fr)
			}
		}
		s.mu.Unlock()
		return &f
	}
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		return hook(c.name, readable(c.r, c.body))
	}
	return nil
}

func (s *Server) writeFault(w http.ResponseWriter, c *call, f *Fault) {
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // the server aborts the connection
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.Code == "" || f.Body != nil {
		status := f.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(f.RetryAfter))
		}
		if f.Code != "" {
			// Both decoders take the code from this header before the body.
			w.Header().Set("X-Amzn-Errortype", f.Code)
		}
		w.WriteHeader(status)
		_, _ = w.Write(f.Body)
		return
	}
	writeAPIError(w, c.svc, &APIError{
		Status: f.Status, Code: f.Code, Message: f.Message,
		Type: f.Type, Reason: f.Reason, RetryAfter: f.RetryAfter,
	})
}

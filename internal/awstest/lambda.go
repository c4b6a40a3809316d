package awstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Lambda invocation types (the X-Amz-Invocation-Type header).
const (
	InvocationRequestResponse = "RequestResponse"
	InvocationEvent           = "Event"
	InvocationDryRun          = "DryRun"
)

// Lambda's payload limits (Lambda quotas): 6 MB for synchronous requests
// and responses, 256 KB for asynchronous (Event) requests. AWS has since
// raised the asynchronous limit to 1 MB; LambdaOptions.AsyncPayloadLimit
// sets it.
const (
	LambdaSyncPayloadLimit  = 6291456
	LambdaAsyncPayloadLimit = 262144
)

// LambdaOptions configure the Lambda endpoint.
type LambdaOptions struct {
	// AutoCreate creates a function, with DefaultHandler and DefaultLatency,
	// when an unknown one is invoked, instead of answering 404.
	AutoCreate bool
	// DefaultHandler serves auto-created functions and functions registered
	// without a Handler. Nil answers "{}".
	DefaultHandler Handler
	// DefaultLatency is the Latency of auto-created functions.
	DefaultLatency time.Duration
	// DefaultConcurrency is the Concurrency of auto-created functions.
	DefaultConcurrency int
	// SyncPayloadLimit bounds RequestResponse and DryRun payloads, and
	// responses. Default LambdaSyncPayloadLimit.
	SyncPayloadLimit int
	// AsyncPayloadLimit bounds Event payloads. Default LambdaAsyncPayloadLimit.
	AsyncPayloadLimit int
	// MaxRecords bounds the InvokeRecords kept (for load tests): past
	// 2×MaxRecords the oldest are dropped down to MaxRecords. Zero keeps all.
	MaxRecords int
}

// Handler is a function's code. It runs on the request's goroutine (Event
// invocations on a goroutine the server owns) and must return once ctx is
// done, which Server.Close and a departed client cause.
type Handler func(ctx context.Context, inv Invocation) Result

// Invocation is one call of a function as its Handler sees it.
type Invocation struct {
	RequestID string
	// FunctionName is the function's short name; FunctionARN its unqualified ARN.
	FunctionName string
	FunctionARN  string
	// Qualifier is the version or alias asked for ("" if none).
	Qualifier string
	// ExecutedVersion is "$LATEST" or the version the qualifier resolved to.
	ExecutedVersion string
	// Type is InvocationRequestResponse, InvocationEvent or InvocationDryRun.
	Type string
	// LogType is the X-Amz-Log-Type header ("", "None" or "Tail").
	LogType string
	// ClientContext is the X-Amz-Client-Context header, base64-decoded.
	ClientContext []byte
	// TraceHeader is the X-Amzn-Trace-Id header the caller sent, as it was
	// sent ("" if none): Lambda continues an X-Ray trace from it.
	TraceHeader string
	Payload     []byte
	ReceivedAt  time.Time
}

// Result is what a Handler returns.
type Result struct {
	// Payload is the response body; nil is sent as "null".
	Payload []byte
	// FunctionError, "Unhandled" (or the legacy "Handled"), reports a
	// function error: status 200, X-Amz-Function-Error set, Payload the
	// error document.
	FunctionError string
	// Log is the function's log output, returned (last 4 KB, with the
	// runtime's START/END/REPORT lines) when LogType is Tail.
	Log string
	// Err, when set, answers the call with this API error instead
	// (e.g. a ServiceException for one payload).
	Err *APIError
}

// ErrorResult is an unhandled function error, as runtimes report one:
// {"errorMessage":message,"errorType":errorType}.
func ErrorResult(errorType, message string) Result {
	b, _ := json.Marshal(map[string]string{"errorMessage": message, "errorType": errorType})
	return Result{Payload: b, FunctionError: "Unhandled"}
}

// JSONResult marshals v as the response payload.
func JSONResult(v any) Result {
	b, err := json.Marshal(v)
	if err != nil {
		return ErrorResult("Runtime.MarshalError", err.Error())
	}
	return Result{Payload: b}
}

// Function is a programmable Lambda function.
type Function struct {
	// Name is the function name (letters, digits, '-' and '_', up to 64).
	Name string
	// Handler runs each invocation; nil uses LambdaOptions.DefaultHandler.
	Handler Handler
	// Concurrency is the reserved concurrency: a synchronous call arriving
	// while Concurrency calls run is throttled (429 TooManyRequestsException,
	// Reason ReservedFunctionConcurrentInvocationLimitExceeded); Event calls
	// wait for a slot instead, as Lambda's internal queue does. Zero means
	// unlimited.
	Concurrency int
	// ThrottleRetryAfter is the Retry-After sent with throttles. Default 1s.
	ThrottleRetryAfter time.Duration
	// Latency delays every invocation, on the server's clock, before the
	// handler runs (inside the concurrency slot).
	Latency time.Duration
	// Versions are published versions besides $LATEST ("1", "2").
	Versions []string
	// Aliases map alias names to versions ("live": "2").
	Aliases map[string]string
}

// InvokeRecord is one Invoke call as the server answered it.
type InvokeRecord struct {
	Invocation
	// StatusCode is the HTTP status answered (202 for queued Event calls).
	StatusCode int
	// ErrorCode is the API error answered, "" if none.
	ErrorCode string
	// FunctionError is the X-Amz-Function-Error answered.
	FunctionError string
	// Done reports that the handler has returned (always true for
	// synchronous calls; Event calls finish later).
	Done bool
}

// Lambda is the Lambda endpoint (REST-JSON, POST
// /2015-03-31/functions/{FunctionName}/invocations): Invoke with a function
// name, partial ARN or ARN, with or without a qualifier. Its methods are safe
// for concurrent use.
type Lambda struct {
	s    *Server
	opts LambdaOptions

	mu      sync.Mutex
	funcs   map[string]*function
	records []*InvokeRecord
}

type function struct {
	Function
	slots    chan struct{} // nil when unlimited
	inflight int
}

func newFunction(fn Function) *function {
	f := &function{Function: fn}
	if fn.Concurrency > 0 {
		f.slots = make(chan struct{}, fn.Concurrency)
	}
	return f
}

func newLambda(s *Server, opts LambdaOptions) *Lambda {
	if opts.SyncPayloadLimit == 0 {
		opts.SyncPayloadLimit = LambdaSyncPayloadLimit
	}
	if opts.AsyncPayloadLimit == 0 {
		opts.AsyncPayloadLimit = LambdaAsyncPayloadLimit
	}
	return &Lambda{s: s, opts: opts, funcs: map[string]*function{}}
}

var functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Register adds fn, replacing a function of the same name (calls already
// running finish with the old definition).
func (l *Lambda) Register(fn Function) error {
	if !functionNameRE.MatchString(fn.Name) {
		return fmt.Errorf("awstest: invalid function name %q", fn.Name)
	}
	f := newFunction(fn)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.funcs[fn.Name] = f
	return nil
}

// FunctionARN returns the unqualified ARN of function name.
func (l *Lambda) FunctionARN(name string) string {
	return "arn:aws:lambda:" + l.s.region + ":" + l.s.account + ":function:" + name
}

// Invocations returns the calls of function name (all calls for ""), in
// arrival order: every Invoke the endpoint answered, errors included. Calls
// that an injected Fault answered never reached the endpoint and are
// counted only in Server.Stats.
func (l *Lambda) Invocations(name string) []InvokeRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []InvokeRecord
	for _, r := range l.records {
		if name == "" || r.FunctionName == name {
			out = append(out, *r)
		}
	}
	return out
}

// InFlight returns how many invocations of function name are running.
func (l *Lambda) InFlight(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.funcs[name]; f != nil {
		return f.inflight
	}
	return 0
}

// lambdaFunctionFromPath extracts the unescaped {FunctionName} label.
func lambdaFunctionFromPath(escaped string) (string, bool) {
	rest, ok := strings.CutPrefix(escaped, lambdaInvoke)
	if !ok {
		return "", false
	}
	label, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || label == "" || strings.Contains(label, "/") {
		return "", false
	}
	name, err := url.PathUnescape(label)
	return name, err == nil
}

type functionRef struct {
	name, qualifier, region, account string
}

// parseFunctionName reads a name ("f", "f:alias"), partial ARN
// ("123456789012:function:f[:q]") or ARN
// ("arn:aws:lambda:us-east-1:123456789012:function:f[:q]").
func parseFunctionName(n string) (functionRef, bool) {
	p := strings.Split(n, ":")
	var ref functionRef
	var qual []string
	switch {
	case strings.HasPrefix(n, "arn:"):
		if len(p) < 7 || len(p) > 8 || p[2] != "lambda" || p[5] != "function" {
			return ref, false
		}
		ref = functionRef{region: p[3], account: p[4], name: p[6]}
		qual = p[7:]
	case len(p) >= 3 && p[1] == "function":
		if len(p) > 4 {
			return ref, false
		}
		ref = functionRef{account: p[0], name: p[2]}
		qual = p[3:]
	case len(p) <= 2:
		ref.name = p[0]
		qual = p[1:]
	default:
		return ref, false
	}
	if len(qual) == 1 {
		if qual[0] == "" {
			return ref, false
		}
		ref.qualifier = qual[0]
	}
	return ref, functionNameRE.MatchString(ref.name)
}

func lambdaShortName(n string) string {
	if ref, ok := parseFunctionName(n); ok {
		return ref.name
	}
	return n
}

func (l *Lambda) serve(w http.ResponseWriter, c *call) {
	rawName, _ := lambdaFunctionFromPath(c.r.URL.EscapedPath())
	now := l.s.clock.Now()
	if p := l.s.probe; p != nil {
		p.invoke(c.body, now)
	}
	inv := Invocation{
		RequestID:    w.Header().Get("X-Amzn-Requestid"),
		FunctionName: c.resource,
		Type:         c.r.Header.Get("X-Amz-Invocation-Type"),
		LogType:      c.r.Header.Get("X-Amz-Log-Type"),
		TraceHeader:  c.r.Header.Get("X-Amzn-Trace-Id"),
		Payload:      c.body,
		ReceivedAt:   now,
	}
	if inv.Type == "" {
		inv.Type = InvocationRequestResponse
	}
	rec := &InvokeRecord{Invocation: inv}
	l.mu.Lock()
	l.records = append(l.records, rec)
	if keep := l.opts.MaxRecords; keep > 0 && len(l.records) > 2*keep {
		l.records = append([]*InvokeRecord(nil), l.records[len(l.records)-keep:]...)
	}
	l.mu.Unlock()
	fail := func(e *APIError) {
		l.mu.Lock()
		rec.StatusCode, rec.ErrorCode, rec.Done = e.Status, e.Code, true
		if rec.StatusCode == 0 {
			rec.StatusCode = defaultStatus("lambda", e.Code)
		}
		l.mu.Unlock()
		writeAPIError(w, "lambda", e)
	}

	ref, ok := parseFunctionName(rawName)
	if !ok {
		fail(apiErr("ValidationException", "1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?", rawName))
		return
	}
	if q := c.r.URL.Query().Get("Qualifier"); q != "" {
		if ref.qualifier != "" && ref.qualifier != q {
			fail(apiErr("InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."))
			return
		}
		ref.qualifier = q
	}
	inv.Qualifier = ref.qualifier
	inv.FunctionARN = l.FunctionARN(ref.name)
	qualifiedARN := inv.FunctionARN
	if ref.qualifier != "" {
		qualifiedARN += ":" + ref.qualifier
	}
	switch inv.Type {
	case InvocationRequestResponse, InvocationEvent, InvocationDryRun:
	default:
		fail(apiErr("InvalidParameterValueException", "Unsupported invocation type %s", inv.Type))
		return
	}
	switch inv.LogType {
	case "", "None", "Tail":
	default:
		fail(apiErr("InvalidParameterValueException", "Unsupported log type %s", inv.LogType))
		return
	}
	if ref.account != "" && ref.account != l.s.account {
		fail(&APIError{Status: http.StatusForbidden, Code: "AccessDeniedException", Message: "User is not authorized to perform: lambda:InvokeFunction on resource: " + qualifiedARN})
		return
	}
	notFound := &APIError{Code: "ResourceNotFoundException", Message: "Function not found: " + qualifiedARN}
	if ref.region != "" && ref.region != l.s.region {
		fail(notFound)
		return
	}
	l.mu.Lock()
	f := l.funcs[ref.name]
	if f == nil && l.opts.AutoCreate {
		f = newFunction(Function{Name: ref.name, Latency: l.opts.DefaultLatency, Concurrency: l.opts.DefaultConcurrency})
		l.funcs[ref.name] = f
	}
	l.mu.Unlock()
	if f == nil {
		fail(notFound)
		return
	}
	version, ok := f.resolve(ref.qualifier)
	if !ok {
		fail(notFound)
		return
	}
	inv.ExecutedVersion = version
	if h := c.r.Header.Get("X-Amz-Client-Context"); h != "" {
		cc, err := base64.StdEncoding.DecodeString(h)
		if err != nil || !json.Valid(cc) {
			fail(apiErr("InvalidParameterValueException", "Client context must be a valid Base64-encoded JSON object."))
			return
		}
		inv.ClientContext = cc
	}
	limit, opName := l.opts.SyncPayloadLimit, "InvokeFunction"
	if inv.Type == InvocationEvent {
		limit, opName = l.opts.AsyncPayloadLimit, "InvokeAsync"
	}
	if len(c.body) > limit {
		fail(&APIError{Status: http.StatusRequestEntityTooLarge, Code: "RequestTooLargeException", Message: fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", limit, opName)})
		return
	}
	if len(strings.TrimSpace(string(c.body))) > 0 && !json.Valid(c.body) {
		var v any
		err := json.Unmarshal(c.body, &v)
		fail(apiErr("InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json: %v", err))
		return
	}
	l.mu.Lock()
	rec.Invocation = inv
	l.mu.Unlock()

	switch inv.Type {
	case InvocationDryRun:
		l.finish(rec, http.StatusNoContent, "")
		w.WriteHeader(http.StatusNoContent)
		return
	case InvocationEvent:
		l.finish(rec, http.StatusAccepted, "")
		l.s.async.Add(1)
		go func() {
			defer l.s.async.Done()
			ctx := l.s.base
			if f.slots != nil {
				select {
				case f.slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-f.slots }()
			}
			res := l.run(ctx, f, inv)
			l.mu.Lock()
			rec.FunctionError, rec.Done = res.FunctionError, true
			if res.Err != nil {
				rec.ErrorCode = res.Err.Code
			}
			l.mu.Unlock()
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}

	if f.slots != nil {
		select {
		case f.slots <- struct{}{}:
			defer func() { <-f.slots }()
		default:
			retry := f.ThrottleRetryAfter
			if retry <= 0 {
				retry = time.Second
			}
			e := &APIError{Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Message: "Rate Exceeded.",
				Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", RetryAfter: retry}
			fail(e)
			return
		}
	}
	res := l.run(c.ctx, f, inv)
	if res.Err != nil {
		fail(res.Err)
		return
	}
	payload := res.Payload
	if payload == nil {
		payload = []byte("null")
	}
	if len(payload) > l.opts.SyncPayloadLimit {
		r := ErrorResult("Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", l.opts.SyncPayloadLimit))
		payload, res.FunctionError = r.Payload, r.FunctionError
	}
	h := w.Header()
	h.Set("Content-Type", contentJSON)
	h.Set("X-Amz-Executed-Version", inv.ExecutedVersion)
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if inv.LogType == "Tail" {
		h.Set("X-Amz-Log-Result", logTail(inv, res.Log))
	}
	l.finish(rec, http.StatusOK, res.FunctionError)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

func (l *Lambda) finish(rec *InvokeRecord, status int, fnErr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec.StatusCode, rec.FunctionError = status, fnErr
	rec.Done = rec.Type != InvocationEvent
}

// run counts the invocation in flight, waits its latency and calls the
// handler; a panicking handler is an unhandled function error.
func (l *Lambda) run(ctx context.Context, f *function, inv Invocation) (res Result) {
	l.mu.Lock()
	f.inflight++
	h := f.Handler
	if h == nil {
		h = l.opts.DefaultHandler
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		f.inflight--
		l.mu.Unlock()
	}()
	if f.Latency > 0 {
		if err := l.s.sleep(ctx, f.Latency); err != nil {
			return ErrorResult("Sandbox.Timedout", "the invocation was cancelled: "+err.Error())
		}
	}
	if h == nil {
		return Result{Payload: []byte("{}")}
	}
	defer func() {
		if p := recover(); p != nil {
			res = ErrorResult("Runtime.ExitError", fmt.Sprintf("handler panicked: %v", p))
		}
	}()
	return h(ctx, inv)
}

// resolve maps a qualifier to the version it runs.
func (f *function) resolve(q string) (string, bool) {
	if q == "" || q == "$LATEST" {
		return "$LATEST", true
	}
	for _, v := range f.Versions {
		if v == q {
			return v, true
		}
	}
	if v, ok := f.Aliases[q]; ok {
		return v, true
	}
	return "", false
}

func logTail(inv Invocation, log string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", inv.RequestID, inv.ExecutedVersion)
	b.WriteString(log)
	if log != "" && !strings.HasSuffix(log, "\n") {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "END RequestId: %s\nREPORT RequestId: %s\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 32 MB\t\n", inv.RequestID, inv.RequestID)
	s := b.String()
	if len(s) > 4096 {
		s = s[len(s)-4096:]
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

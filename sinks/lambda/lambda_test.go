package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
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

func delivery(id, payload string) *router.Delivery {
	ev, _ := router.ParseEvent([]byte(`{"id":"e-`+id+`","source":"s","detail-type":"d","detail":{}}`), time.Now())
	return &router.Delivery{
		ID: "d-" + id, Rule: "r", Target: "fn", Payload: []byte(payload),
		Message: &router.Message{ID: "m-" + id, Source: "jobs", Body: []byte(`{"raw":"` + id + `"}`), Event: ev,
			Attributes: map[string]string{"tenant": "acme"},
			System:     map[string]string{"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:jobs", "Region": "us-east-1"}},
	}
}

func sink(t *testing.T, srv *awstest.Server, cfg Config) *Sink {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New("fn", cfg, srv.LambdaClient())
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestLambdaSink_Invokes(t *testing.T) {
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "thumb", Versions: []string{"3"}, Aliases: map[string]string{"live": "3"}})
	s := sink(t, srv, Config{Function: "thumb", Qualifier: "live"})
	if err := s.Deliver(t.Context(), delivery("1", `{"key":"a.png"}`)); err != nil {
		t.Fatal(err)
	}
	inv := srv.Lambda().Invocations("thumb")
	if len(inv) != 1 {
		t.Fatalf("%d invocations", len(inv))
	}
	got := inv[0]
	if string(got.Payload) != `{"key":"a.png"}` || got.Type != "RequestResponse" || got.Qualifier != "live" || got.ExecutedVersion != "3" {
		t.Errorf("invocation: payload %s type %s qualifier %s version %s", got.Payload, got.Type, got.Qualifier, got.ExecutedVersion)
	}
	var cc struct {
		Custom map[string]string `json:"custom"`
	}
	if err := json.Unmarshal(got.ClientContext, &cc); err != nil || cc.Custom["switchyard_delivery_id"] != "d-1" || cc.Custom["switchyard_rule"] != "r" {
		t.Errorf("client context %s: %v", got.ClientContext, err)
	}
}

func TestLambdaSink_EventInvocationAndPayloadForms(t *testing.T) {
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "audit"})
	s := sink(t, srv, Config{Function: "audit", Invocation: "event"})
	text := delivery("t", `order o-1 is "late"`)
	text.Text = true
	letter := delivery("l", `original body`)
	letter.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-l", Rule: "r", Target: "x", Attempts: 3, LastError: "503"}
	for _, d := range []*router.Delivery{text, letter} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Lambda().Invocations("audit")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	inv := srv.Lambda().Invocations("audit")
	if len(inv) != 2 || inv[0].Type != "Event" || inv[0].StatusCode != 202 {
		t.Fatalf("invocations: %+v", inv)
	}
	if string(inv[0].Payload) != `"order o-1 is \"late\""` {
		t.Errorf("text payload sent as %s, want a JSON string", inv[0].Payload)
	}
	var doc struct {
		DeadLetter struct {
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
		} `json:"dead_letter"`
		Body string `json:"body"`
	}
	if err := json.Unmarshal(inv[1].Payload, &doc); err != nil || doc.DeadLetter.Attempts != 3 || doc.Body != "original body" || doc.DeadLetter.LastError != "503" {
		t.Errorf("dead letter sent as %s: %v", inv[1].Payload, err)
	}
}

// Every outcome Lambda can give is classified as the policy needs.
func TestLambdaSink_ClassifiesOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(srv *awstest.Server)
		payload    string
		class      router.Class
		retryAfter time.Duration
		contains   string
	}{
		{"function error, unhandled", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(context.Context, awstest.Invocation) awstest.Result {
				return awstest.ErrorResult("ValueError", "bad key")
			}})
		}, `{}`, router.Retryable, 0, "function error (Unhandled)"},
		{"function error, handled", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(context.Context, awstest.Invocation) awstest.Result {
				r := awstest.ErrorResult("Oops", "handled")
				r.FunctionError = "Handled"
				return r
			}})
		}, `{}`, router.Retryable, 0, "function error (Handled)"},
		{"throttled with Retry-After", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.TooManyRequests(7*time.Second))
		}, `{}`, router.Throttled, 7 * time.Second, "TooManyRequestsException"},
		{"EC2 throttled", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.Fault{Status: 502, Code: "EC2ThrottledException"})
		}, `{}`, router.Throttled, 0, "EC2ThrottledException"},
		{"function not found", func(srv *awstest.Server) {}, `{}`, router.Permanent, 0, "ResourceNotFoundException"},
		{"payload not JSON", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
		}, `not json`, router.Permanent, 0, "InvalidRequestContentException"},
		{"payload too large", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
		}, `"` + strings.Repeat("x", 7<<20) + `"`, router.Permanent, 0, "over Lambda's limit of 6291456 bytes (6 MB) for request_response invocations: not sent"},
		{"service exception", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.InternalError("ServiceException"))
		}, `{}`, router.Retryable, 0, "ServiceException"},
		{"503", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.Unavailable())
		}, `{}`, router.Retryable, 0, "503"},
		{"other 4xx", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.Fault{Status: 400, Code: "InvalidParameterValueException"})
		}, `{}`, router.Permanent, 0, "InvalidParameterValueException"},
		{"connection reset", func(srv *awstest.Server) {
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.FailNext("lambda:Invoke", 1, awstest.Fault{Drop: true})
		}, `{}`, router.Retryable, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t)
			tc.setup(srv)
			err := sink(t, srv, Config{Function: "fn"}).Deliver(t.Context(), delivery("1", tc.payload))
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if c := router.ClassOf(err); c != tc.class {
				t.Errorf("class %s, want %s: %v", c, tc.class, err)
			}
			if ra := router.RetryAfterOf(err); ra != tc.retryAfter {
				t.Errorf("retry after %v, want %v", ra, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not mention %q", err, tc.contains)
			}
		})
	}
}

func TestLambdaSink_ContextCancelIsRetryable(t *testing.T) {
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "fn", Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := sink(t, srv, Config{Function: "fn"}).Deliver(ctx, delivery("1", `{}`))
	if err == nil || router.ClassOf(err) != router.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver = %v (%s)", err, router.ClassOf(err))
	}
}

// Batch mode sends the SQS event-source mapping's shape and answers each
// delivery from batchItemFailures.
func TestLambdaSink_Batch(t *testing.T) {
	srv := server(t)
	var mu sync.Mutex
	var events []map[string]any
	srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var ev map[string]any
		json.Unmarshal(inv.Payload, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		var failures []map[string]string
		for _, r := range ev["Records"].([]any) {
			rec := r.(map[string]any)
			if strings.Contains(rec["body"].(string), "fail") {
				failures = append(failures, map[string]string{"itemIdentifier": rec["messageId"].(string)})
			}
		}
		return awstest.JSONResult(map[string]any{"batchItemFailures": failures})
	}})
	s := sink(t, srv, Config{Function: "fn", Batch: &Batch{Size: 3, Window: time.Second}})
	ds := []*router.Delivery{delivery("1", `{"ok":1}`), delivery("2", `{"fail":2}`), delivery("3", `{"ok":3}`)}
	ds[0].Whole = true // no input: the record's body is the original body
	// Attributes keep their types, as an event-source mapping gives them.
	ds[0].Message.Attributes = map[string]string{"tenant": "acme", "priority": "7"}
	ds[0].Message.TypedAttributes = map[string]router.Attribute{"tenant": {DataType: "String", StringValue: "acme"},
		"priority": {DataType: "Number", StringValue: "7"}, "blob": {DataType: "Binary", BinaryValue: []byte{0, 0xff}}}
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = s.Deliver(t.Context(), d) })
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || errs[1] == nil || router.ClassOf(errs[1]) != router.Retryable {
		t.Fatalf("results %v, want only the second to fail", errs)
	}
	if len(events) != 1 {
		t.Fatalf("%d invocations for a batch of 3", len(events))
	}
	recs := events[0]["Records"].([]any)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	var first map[string]any
	for _, r := range recs {
		if r.(map[string]any)["messageId"] == "m-1" {
			first = r.(map[string]any)
		}
	}
	attrs := first["attributes"].(map[string]any)
	mattrs := first["messageAttributes"].(map[string]any)["tenant"].(map[string]any)
	if first["body"] != `{"raw":"1"}` || first["eventSource"] != "aws:sqs" || first["eventSourceARN"] != "arn:aws:sqs:us-east-1:123456789012:jobs" ||
		first["awsRegion"] != "us-east-1" || attrs["ApproximateReceiveCount"] != "2" || attrs["SentTimestamp"] != "1700000000000" ||
		mattrs["stringValue"] != "acme" || mattrs["dataType"] != "String" || first["md5OfBody"] != "135b5bdcc4432ce16f0bc5a40579bdb6" {
		t.Errorf("record: %v", first)
	}
	typed := first["messageAttributes"].(map[string]any)
	priority, _ := typed["priority"].(map[string]any)
	blob, _ := typed["blob"].(map[string]any)
	if _, hasString := blob["stringValue"]; priority["dataType"] != "Number" || priority["stringValue"] != "7" ||
		blob["dataType"] != "Binary" || blob["binaryValue"] != "AP8=" || hasString || len(typed) != 3 {
		t.Errorf("typed message attributes: %v", typed)
	}
}

// With no window, a delivery alone goes at once, and while an invocation
// is out the deliveries behind it gather into full batches.
func TestLambdaSink_BatchGathersWhileAnInvocationIsOut(t *testing.T) {
	srv := server(t)
	var mu sync.Mutex
	var sizes []int
	srv.Lambda().Register(awstest.Function{Name: "fn", Latency: 100 * time.Millisecond, Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var ev struct{ Records []json.RawMessage }
		json.Unmarshal(inv.Payload, &ev)
		mu.Lock()
		sizes = append(sizes, len(ev.Records))
		mu.Unlock()
		return awstest.JSONResult(map[string]any{})
	}})
	s := sink(t, srv, Config{Function: "fn", Batch: &Batch{Size: 10}})
	if err := s.Deliver(t.Context(), delivery("alone", `{}`)); err != nil {
		t.Fatal(err)
	}
	// One invocation is out (slow) while 50 more deliveries arrive, a
	// moment apart.
	first := make(chan error, 1)
	go func() { first <- s.Deliver(t.Context(), delivery("first", `{}`)) }()
	for srv.Calls("lambda:Invoke") < 2 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := s.Deliver(t.Context(), delivery(fmt.Sprint(i), `{}`)); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 || sizes[0] != 1 || sizes[1] != 1 {
		t.Fatalf("batch sizes %v, want 1 and 1 first", sizes)
	}
	total := 0
	for _, n := range sizes[2:] {
		total += n
		if n > 10 {
			t.Errorf("a batch of %d records, more than batch.size", n)
		}
	}
	// While an invocation was out, only full batches went (and a last
	// partial one once none was).
	if total != 50 || len(sizes)-2 > 8 {
		t.Errorf("batch sizes %v: want the 50 deliveries in at most 8 invocations", sizes)
	}
}

func TestLambdaSink_BatchResponses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		response string
		failAll  bool
	}{
		{"null", `null`, false},
		{"empty object", `{}`, false},
		{"empty list", `{"batchItemFailures":[]}`, false},
		{"not a batch response", `"done"`, false},
		{"invalid JSON", `{"batchItemFailures":`, true},
		{"unknown id", `{"batchItemFailures":[{"itemIdentifier":"nope"}]}`, true},
		{"empty id", `{"batchItemFailures":[{"itemIdentifier":""}]}`, true},
		{"null id", `{"batchItemFailures":[{"itemIdentifier":null}]}`, true},
		{"bad key", `{"batchItemFailures":[{"id":"m-1"}]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t)
			srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(context.Context, awstest.Invocation) awstest.Result {
				return awstest.Result{Payload: []byte(tc.response)}
			}})
			s := sink(t, srv, Config{Function: "fn", Batch: &Batch{Size: 2, Window: time.Second}})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() { errs[i] = s.Deliver(t.Context(), delivery(string(rune('1'+i)), `{}`)) })
			}
			wg.Wait()
			for i, err := range errs {
				if (err != nil) != tc.failAll {
					t.Errorf("delivery %d: %v, want failed = %v", i, err, tc.failAll)
				}
			}
		})
	}
}

// Two deliveries of one message never share a batch: records are told
// apart by message id.
func TestLambdaSink_BatchSplitsRepeatedMessages(t *testing.T) {
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "fn"})
	s := sink(t, srv, Config{Function: "fn", Batch: &Batch{Size: 10, Window: 200 * time.Millisecond}})
	a, b := delivery("1", `{"a":1}`), delivery("1", `{"b":1}`)
	b.ID = "d-other"
	var wg sync.WaitGroup
	for _, d := range []*router.Delivery{a, b} {
		wg.Go(func() {
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.Lambda().Invocations("fn")); n != 2 {
		t.Errorf("%d invocations, want 2", n)
	}
}

// The delivery's trace context reaches Lambda as X-Amzn-Trace-Id, in X-Ray
// form: the tracer's when set, else the message's (converted from W3C),
// and no header without one; in batch mode the first delivery's.
func TestLambdaSink_SendsTraceHeader(t *testing.T) {
	const (
		xr = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "thumb"})
	s := sink(t, srv, Config{Function: "thumb"})
	fromMessage := delivery("1", `{}`)
	fromMessage.Message.Trace = router.TraceContext{XRay: xr}
	fromTracer := delivery("2", `{}`)
	fromTracer.Message.Trace = router.TraceContext{XRay: xr}
	fromTracer.Trace = router.TraceContext{TraceParent: tp}
	none := delivery("3", `{}`)
	for _, d := range []*router.Delivery{fromMessage, fromTracer, none} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{xr, "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1", ""}
	inv := srv.Lambda().Invocations("thumb")
	if len(inv) != len(want) {
		t.Fatalf("%d invocations", len(inv))
	}
	for i, w := range want {
		if inv[i].TraceHeader != w {
			t.Errorf("invocation %d: X-Amzn-Trace-Id %q, want %q", i, inv[i].TraceHeader, w)
		}
	}

	b := sink(t, srv, Config{Function: "thumb", Batch: &Batch{Size: 1, Window: time.Millisecond}})
	if err := b.Deliver(t.Context(), fromTracer); err != nil {
		t.Fatal(err)
	}
	if inv := srv.Lambda().Invocations("thumb"); inv[len(inv)-1].TraceHeader != want[1] {
		t.Errorf("batch invocation: X-Amzn-Trace-Id %q, want %q", inv[len(inv)-1].TraceHeader, want[1])
	}
}

func TestClientContext_IsTheJSONOfTheIDs(t *testing.T) {
	for _, tc := range []struct{ name, id, rule, msg string }{
		{"plain", "d-1", "orders", "5fa1c4e2-0000-4000-8000-000000000001"},
		{"quotes and controls", `a"b\c`, "r\n\t\x01", "m\x7f"},
		{"unicode and invalid UTF-8", "é✓", "\xff\xfe", "<&>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &router.Delivery{ID: tc.id, Rule: tc.rule, Message: &router.Message{ID: tc.msg}}
			raw, err := base64.StdEncoding.DecodeString(*clientContext(d))
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]map[string]string
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			b, _ := json.Marshal(map[string]any{"custom": map[string]string{"switchyard_delivery_id": tc.id, "switchyard_rule": tc.rule, "switchyard_message_id": tc.msg}})
			json.Unmarshal(b, &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("client context %s = %v, want %v", raw, got, want)
			}
		})
	}
	long := &router.Delivery{ID: strings.Repeat("x", 4000), Message: &router.Message{}}
	if clientContext(long) != nil {
		t.Error("a client context over Lambda's limit is sent")
	}
}

// A payload over Lambda's limit (6 MB synchronous, 1 MB asynchronous, a
// batch record whose batch alone would exceed 6 MB) never reaches Lambda:
// a permanent error naming the limit, before the call. One at the limit
// goes.
func TestLambdaSink_PayloadLimits(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{Lambda: awstest.LambdaOptions{AsyncPayloadLimit: 1 << 20}})
	var calls atomic.Int64
	srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(context.Context, awstest.Invocation) awstest.Result {
		calls.Add(1)
		return awstest.JSONResult(map[string]any{})
	}})
	str := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // a JSON string of n bytes
	for _, tc := range []struct {
		name    string
		cfg     Config
		payload string
		refused string // "" goes
	}{
		{"7 MB, synchronous", Config{Function: "fn"}, str(7 << 20), "6291456 bytes (6 MB) for request_response"},
		{"6 MB exactly, synchronous", Config{Function: "fn"}, str(6 << 20), ""},
		{"1 MB and a byte, asynchronous", Config{Function: "fn", Invocation: "event"}, str(1<<20 + 1), "1048576 bytes (1 MB) for event"},
		{"1 MB exactly, asynchronous", Config{Function: "fn", Invocation: "event"}, str(1 << 20), ""},
		{"a 7 MB record, batch", Config{Function: "fn", Batch: &Batch{Size: 10}}, str(7 << 20), "6291456 bytes (6 MB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			err := sink(t, srv, tc.cfg).Deliver(t.Context(), delivery("1", tc.payload))
			made := calls.Load() - before
			if tc.refused == "" {
				if err != nil || made != 1 {
					t.Fatalf("Deliver = %v after %d calls, want delivered in 1", err, made)
				}
				return
			}
			if err == nil || router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), tc.refused) || made != 0 {
				t.Fatalf("Deliver = %v (%s) after %d calls; want a permanent error naming %q, and no call", err, router.ClassOf(err), made, tc.refused)
			}
		})
	}
}

// permanent_errors: a function error whose errorType is listed is
// permanent (dead-lettered at once, in batch mode for the whole batch);
// others, and errors with no errorType, stay retryable.
func TestLambdaSink_PermanentErrors(t *testing.T) {
	srv := server(t)
	srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var p struct{ Fail string }
		json.Unmarshal(inv.Payload, &p)
		if p.Fail == "" { // a batch: the first record's body says
			var ev struct{ Records []struct{ Body string } }
			json.Unmarshal(inv.Payload, &ev)
			json.Unmarshal([]byte(ev.Records[0].Body), &p)
		}
		if p.Fail == "crash" {
			return awstest.Result{Payload: []byte("Runtime exited without providing a reason"), FunctionError: "Unhandled"}
		}
		return awstest.ErrorResult(p.Fail, "it failed")
	}})
	for _, batch := range []bool{false, true} {
		cfg := Config{Function: "fn", PermanentErrors: []string{"ValidationError", "Runtime.HandlerNotFound"}}
		if batch {
			cfg.Batch = &Batch{Size: 10}
		}
		s := sink(t, srv, cfg)
		for _, tc := range []struct {
			fail string
			want router.Class
		}{
			{"ValidationError", router.Permanent},
			{"Runtime.HandlerNotFound", router.Permanent},
			{"TimeoutError", router.Retryable},
			{"validationerror", router.Retryable}, // errorType is matched exactly
			{"crash", router.Retryable},           // no errorType
		} {
			d := delivery("1", `{"fail":"`+tc.fail+`"}`)
			d.Payload, d.Message.Body = []byte(`{"fail":"`+tc.fail+`"}`), []byte(`{"fail":"`+tc.fail+`"}`)
			err := s.Deliver(t.Context(), d)
			if err == nil || router.ClassOf(err) != tc.want {
				t.Errorf("batch %v, errorType %s: %v (%s), want %s", batch, tc.fail, err, router.ClassOf(err), tc.want)
			}
		}
	}
}

func TestLambdaConfig_PermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Function: "fn", PermanentErrors: []string{"A", ""}}, "permanent_errors[1]: empty"},
		{Config{Function: "fn", PermanentErrors: []string{"A", "A"}}, `permanent_errors[1]: "A" is listed twice`},
		{Config{Function: "fn", Invocation: "event", PermanentErrors: []string{"A"}}, "permanent_errors: needs invocation: request_response"},
	} {
		tc.cfg.SetDefaults()
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

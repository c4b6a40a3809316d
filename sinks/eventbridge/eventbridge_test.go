package eventbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const orderEvent = `{"version":"0","id":"e-%s","detail-type":"Order Placed","source":"com.example.orders","account":"111122223333",` +
	`"time":"2026-11-20T12:00:01Z","region":"eu-west-1","resources":["arn:aws:s3:::orders","arn:aws:s3:::orders/o-%s"],"detail":{"id":"o-%s","qty":3}}`

func delivery(id, payload string) *router.Delivery {
	ev, err := router.ParseEvent(fmt.Appendf(nil, orderEvent, id, id, id), time.Now())
	if err != nil {
		panic(err)
	}
	return &router.Delivery{ID: "d-" + id, Rule: "r", Target: "bus", Payload: []byte(payload),
		Message: &router.Message{ID: "m-" + id, Source: "jobs", Body: ev.JSON, Event: ev}}
}

func sink(t *testing.T, srv *awstest.Server, cfg Config) *Sink {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New("bus", cfg, srv.EventBridgeClient())
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestEventBridgeSink_PutsTheEvent(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	d := delivery("1", `{"order": "o-1", "n": 3}`)
	const xr = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	d.Message.Trace = router.TraceContext{XRay: xr}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ev := srv.EventBridge().Events("default")
	if len(ev) != 1 {
		t.Fatalf("events: %+v", ev)
	}
	e := ev[0]
	if e.Source != "com.example.orders" || e.DetailType != "Order Placed" || e.Detail != `{"order": "o-1", "n": 3}` ||
		!slices.Equal(e.Resources, []string{"arn:aws:s3:::orders", "arn:aws:s3:::orders/o-1"}) ||
		!e.Time.Equal(time.Date(2026, 11, 20, 12, 0, 1, 0, time.UTC)) || e.TraceHeader != xr {
		t.Errorf("event: %+v", e)
	}

	// The tracer's context wins over the message's; none sends none.
	d2 := delivery("2", `{}`)
	d2.Message.Trace = router.TraceContext{XRay: xr}
	d2.Trace = router.TraceContext{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	d3 := delivery("3", `{}`)
	for _, d := range []*router.Delivery{d2, d3} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ev = srv.EventBridge().Events("default")
	if ev[1].TraceHeader != "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" || ev[2].TraceHeader != "" {
		t.Errorf("trace headers %q, %q", ev[1].TraceHeader, ev[2].TraceHeader)
	}
}

// source, detail_type and resources from the config replace the event's;
// an empty list of resources sends none.
func TestEventBridgeSink_ConfigOverridesTheEvent(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	arn, _ := srv.EventBridge().CreateEventBus("audit")
	for _, tc := range []struct {
		name string
		cfg  Config
		want awstest.EventBridgeEntry
	}{
		{"from the event", Config{Bus: "audit"},
			awstest.EventBridgeEntry{Source: "com.example.orders", DetailType: "Order Placed", Resources: []string{"arn:aws:s3:::orders", "arn:aws:s3:::orders/o-1"}}},
		{"from the config", Config{Bus: arn, Source: "com.example.audit", DetailType: "Audited", Resources: []string{"arn:aws:s3:::audit"}},
			awstest.EventBridgeEntry{Source: "com.example.audit", DetailType: "Audited", Resources: []string{"arn:aws:s3:::audit"}}},
		{"no resources", Config{Bus: "audit", Source: "com.example.audit", Resources: []string{}},
			awstest.EventBridgeEntry{Source: "com.example.audit", DetailType: "Order Placed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sink(t, srv, tc.cfg)
			if err := s.Deliver(t.Context(), delivery("1", `{}`)); err != nil {
				t.Fatal(err)
			}
			ev := srv.EventBridge().Events("audit")
			e := ev[len(ev)-1]
			if e.Source != tc.want.Source || e.DetailType != tc.want.DetailType || !slices.Equal(e.Resources, tc.want.Resources) {
				t.Errorf("event %s / %s / %q, want %s / %s / %q", e.Source, e.DetailType, e.Resources, tc.want.Source, tc.want.DetailType, tc.want.Resources)
			}
		})
	}
}

// With no input transformer the event goes on as EventBridge forwards one
// to a bus: its detail is the Detail. A dead letter is switchyard's record.
func TestEventBridgeSink_WholeEventsAndDeadLetters(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	whole := delivery("1", "")
	whole.Payload, whole.Whole = whole.Message.Event.JSON, true
	dl := delivery("2", "")
	dl.Payload = dl.Message.Body
	dl.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-2", Rule: "r", Target: "fn", Attempts: 5, LastError: "boom"}
	for _, d := range []*router.Delivery{whole, dl} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ev := srv.EventBridge().Events("default")
	if ev[0].Detail != `{"id":"o-1","qty":3}` || ev[0].Source != "com.example.orders" || ev[0].DetailType != "Order Placed" {
		t.Errorf("whole event: %+v", ev[0])
	}
	if !strings.HasPrefix(ev[1].Detail, `{"dead_letter":{"source":"jobs","message_id":"m-2","rule":"r","target":"fn","attempts":5,`) ||
		!strings.Contains(ev[1].Detail, `"body":{"version":"0","id":"e-2"`) || ev[1].Source != DeadLetterSource ||
		ev[1].DetailType != DeadLetterDetailType || len(ev[1].Resources) != 0 || !ev[1].Time.IsZero() {
		t.Errorf("dead letter: %+v", ev[1])
	}
}

// What can never be put fails for good, naming why, and calls nothing.
func TestEventBridgeSink_RefusesBeforeTheCall(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	noSource, _ := router.ParseEvent([]byte(`{"detail-type":"x","detail":{}}`), time.Now())
	stringDetail, _ := router.ParseEvent([]byte(`{"source":"s","detail-type":"x","detail":"plain"}`), time.Now())
	// An entry of exactly MaxSize fits: Source, DetailType, Time, Resources
	// and Detail counted as EventBridge counts them.
	fixed := len("com.example.orders") + len("Order Placed") + 14 + len("arn:aws:s3:::orders") + len("arn:aws:s3:::orders/o-1")
	fits := `{"p":"` + strings.Repeat("x", MaxSize-fixed-len(`{"p":""}`)) + `"}`
	for _, tc := range []struct {
		name string
		d    func() *router.Delivery
		want string
	}{
		{"array", func() *router.Delivery { return delivery("1", `[1,2]`) }, "the payload is a JSON array, not the JSON object PutEvents takes as Detail: [1,2]"},
		{"string", func() *router.Delivery { return delivery("1", `"Order o-1"`) }, "the payload is a JSON string"},
		{"number", func() *router.Delivery { return delivery("1", `42`) }, "the payload is a JSON number"},
		{"text", func() *router.Delivery {
			d := delivery("1", `Order o-1 placed`)
			d.Text = true
			return d
		}, "the payload is text (the rule's template is not JSON)"},
		{"detail not an object", func() *router.Delivery {
			d := delivery("1", "")
			d.Message.Event, d.Payload, d.Whole = stringDetail, stringDetail.JSON, true
			return d
		}, "the event's detail is a JSON string, not the JSON object PutEvents takes as Detail"},
		{"no source", func() *router.Delivery {
			d := delivery("1", `{}`)
			d.Message.Event = noSource
			return d
		}, "the event has no source, which PutEvents requires: set source on the target"},
		{"over 256 KiB", func() *router.Delivery { return delivery("1", fits[:len(fits)-2]+`x"}`) },
			fmt.Sprintf("the event is %d bytes, over PutEvents' limit of 262144 bytes (256 KiB) for an entry", MaxSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Deliver(t.Context(), tc.d())
			if router.ClassOf(err) != router.Permanent || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v (%s), want permanent %q", err, router.ClassOf(err), tc.want)
			}
		})
	}
	if n := srv.Calls("events:PutEvents"); n != 0 {
		t.Errorf("%d calls for entries refused before the call", n)
	}
	if err := s.Deliver(t.Context(), delivery("1", fits)); err != nil {
		t.Errorf("an entry of exactly 256 KiB: %v", err)
	}
}

func TestEventBridgeSink_Classifies(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	missing := sink(t, srv, Config{Bus: "missing"})
	for _, tc := range []struct {
		name  string
		fault *awstest.Fault      // on the call
		entry *awstest.EntryFault // on the entry
		sink  *Sink
		class router.Class
		code  string
	}{
		{name: "call throttled", fault: &awstest.Fault{Code: "ThrottlingException", Message: "Rate exceeded"}, class: router.Throttled, code: "ThrottlingException"},
		{name: "call internal error", fault: &awstest.Fault{Code: "InternalException"}, class: router.Retryable, code: "InternalException"},
		{name: "call 503", fault: &awstest.Fault{Status: 503}, class: router.Retryable},
		{name: "call reset", fault: &awstest.Fault{Drop: true}, class: router.Retryable},
		{name: "call access denied", fault: &awstest.Fault{Code: "AccessDeniedException"}, class: router.Permanent, code: "AccessDeniedException"},
		{name: "call validation", fault: &awstest.Fault{Code: "ValidationException"}, class: router.Permanent, code: "ValidationException"},
		{name: "no such bus", sink: missing, class: router.Permanent, code: "ResourceNotFoundException"},
		{name: "entry throttled", entry: &awstest.EntryFault{Code: "ThrottlingException"}, class: router.Throttled, code: "ThrottlingException"},
		{name: "entry internal failure", entry: &awstest.EntryFault{Code: "InternalFailure"}, class: router.Retryable, code: "InternalFailure"},
		{name: "entry malformed", entry: &awstest.EntryFault{Code: "MalformedDetail"}, class: router.Permanent, code: "MalformedDetail"},
		{name: "entry invalid", entry: &awstest.EntryFault{Code: "InvalidArgument"}, class: router.Permanent, code: "InvalidArgument"},
		{name: "entry access denied", entry: &awstest.EntryFault{Code: "AccessDeniedException"}, class: router.Permanent, code: "AccessDeniedException"},
		{name: "entry source not allowed", entry: &awstest.EntryFault{Code: "NotAuthorizedForSourceException"}, class: router.Permanent, code: "NotAuthorizedForSourceException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				srv.FailNext("events:PutEvents", 1, *tc.fault)
			}
			if tc.entry != nil {
				f := *tc.entry
				f.Times = 1
				srv.EventBridge().FailEntries(f)
			}
			target := cmpPtr(tc.sink, s)
			err := target.Deliver(t.Context(), delivery("1", `{}`))
			if err == nil || router.ClassOf(err) != tc.class {
				t.Fatalf("%v: class %s, want %s", err, router.ClassOf(err), tc.class)
			}
			if tc.code != "" && !strings.Contains(err.Error(), tc.code) {
				t.Errorf("%v does not name %s", err, tc.code)
			}
			var ee *EntryError
			if tc.entry != nil && (!errors.As(err, &ee) || ee.Code != tc.code) {
				t.Errorf("%v: not an EntryError with code %s", err, tc.code)
			}
		})
	}
}

func cmpPtr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// An event forwarded from an AWS service keeps its aws.* source unless the
// target sets one; EventBridge refuses it, and the error says what to do.
func TestEventBridgeSink_AWSSourceNeedsOneOfYourOwn(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	ev, _ := router.ParseEvent([]byte(`{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"}}}`), time.Now())
	d := &router.Delivery{ID: "d", Payload: ev.JSON, Whole: true, Message: &router.Message{Event: ev}}
	err := sink(t, srv, Config{}).Deliver(t.Context(), d)
	if router.ClassOf(err) != router.Permanent || err == nil || !strings.Contains(err.Error(), `NotAuthorizedForSourceException: Not authorized for the source. (source aws.s3: sources beginning with "aws." are AWS's own; set source on the target)`) {
		t.Errorf("aws.s3 as it came: %v", err)
	}
	if err := sink(t, srv, Config{Source: "com.example.uploads"}).Deliver(t.Context(), d); err != nil {
		t.Errorf("with a source of its own: %v", err)
	}
	if ev := srv.EventBridge().Events("default"); len(ev) != 1 || ev[0].Source != "com.example.uploads" || ev[0].DetailType != "Object Created" {
		t.Errorf("events: %+v", ev)
	}
}

// Envelope fields of another type than EventBridge's are left out, not
// sent half-read.
func TestEventBridgeSink_OddEnvelopeFields(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	ev, err := router.ParseEvent([]byte(`{"source":"s","detail-type":"t","time":1700000000,"resources":["arn:a",7],"detail":{}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := &router.Delivery{ID: "d", Payload: []byte(`{"k":1}`), Message: &router.Message{Event: ev}}
	if err := sink(t, srv, Config{}).Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if e := srv.EventBridge().Events("default")[0]; len(e.Resources) != 0 || !e.Time.IsZero() || e.Detail != `{"k":1}` {
		t.Errorf("event: %+v", e)
	}
}

// Each delivery of a call gets its own entry's result; sending again the
// ones that failed sends only those.
func TestEventBridgeSink_PartialFailure(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	srv.EventBridge().FailEntries(awstest.EntryFault{Match: func(e awstest.EventBridgeEntry) bool {
		return strings.Contains(e.Detail, `"n":1`) || strings.Contains(e.Detail, `"n":3`)
	}, Code: "InternalFailure", Times: 2})
	srv.EventBridge().FailEntries(awstest.EntryFault{Match: func(e awstest.EventBridgeEntry) bool { return strings.Contains(e.Detail, `"n":4`) },
		Code: "ThrottlingException", Times: 1})
	var ds []*router.Delivery
	for i := range 5 {
		ds = append(ds, delivery(fmt.Sprint(i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	errs := s.DeliverBatch(t.Context(), ds)
	var again []*router.Delivery
	for i, err := range errs {
		switch i {
		case 0, 2:
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
		case 1, 3:
			if router.ClassOf(err) != router.Retryable || err == nil {
				t.Errorf("delivery %d: %v, want retryable", i, err)
			}
			again = append(again, ds[i])
		case 4:
			if router.ClassOf(err) != router.Throttled || err == nil {
				t.Errorf("delivery %d: %v, want throttled", i, err)
			}
			again = append(again, ds[i])
		}
	}
	for i, err := range s.DeliverBatch(t.Context(), again) {
		if err != nil {
			t.Errorf("again %d: %v", i, err)
		}
	}
	calls := srv.EventBridge().PutEventsCalls()
	if len(calls) != 2 || len(calls[0]) != 5 || len(calls[1]) != 3 {
		t.Fatalf("calls of %v entries, want 5 then 3", lens(calls))
	}
	var details []string
	for _, e := range calls[1] {
		details = append(details, e.Detail)
	}
	if !slices.Equal(details, []string{`{"n":1}`, `{"n":3}`, `{"n":4}`}) {
		t.Errorf("second call: %q", details)
	}
	if n := len(srv.EventBridge().Events("default")); n != 5 {
		t.Errorf("%d events put, want each of 5 once", n)
	}
}

func lens(calls [][]awstest.EventBridgeEntry) []int {
	var n []int
	for _, c := range calls {
		n = append(n, len(c))
	}
	return n
}

// DeliverBatch and concurrent Delivers share calls within PutEvents'
// limits: 10 entries, 256 KiB.
func TestEventBridgeSink_Batches(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	var ds []*router.Delivery
	for i := range 23 {
		ds = append(ds, delivery(fmt.Sprint(i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	for i, err := range s.DeliverBatch(t.Context(), ds) {
		if err != nil {
			t.Errorf("%d: %v", i, err)
		}
	}
	if got := lens(srv.EventBridge().PutEventsCalls()); !slices.Equal(got, []int{10, 10, 3}) {
		t.Errorf("23 deliveries in calls of %v, want 10, 10, 3", got)
	}

	// Three entries of 100 KiB: two fit a call, the third needs another.
	big := func(i int) *router.Delivery {
		return delivery(fmt.Sprint(i), `{"p":"`+strings.Repeat("x", 100<<10)+`"}`)
	}
	for _, err := range s.DeliverBatch(t.Context(), []*router.Delivery{big(0), big(1), big(2)}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	calls := srv.EventBridge().PutEventsCalls()
	if got := lens(calls[3:]); !slices.Equal(got, []int{2, 1}) {
		t.Errorf("300 KiB in calls of %v, want 2 and 1", got)
	}

	// Concurrent deliveries: every call within the limits, most shared.
	srv.EventBridge().FailEntries(awstest.EntryFault{Code: "ThrottlingException", Match: func(e awstest.EventBridgeEntry) bool { return e.Detail == `{"slow":true}` }, Times: 1})
	before := len(srv.EventBridge().PutEventsCalls())
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			d := delivery(fmt.Sprint(i), fmt.Sprintf(`{"n":%d}`, i))
			if i%7 == 0 {
				d = delivery(fmt.Sprint(i), `{"p":"`+strings.Repeat("y", 90<<10)+`"}`)
			}
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	calls = srv.EventBridge().PutEventsCalls()[before:]
	entries := 0
	for _, c := range calls {
		size := 0
		for _, e := range c {
			size += awstest.EntrySize(e)
		}
		if len(c) > MaxEntries || size > MaxSize {
			t.Errorf("a call of %d entries, %d bytes", len(c), size)
		}
		entries += len(c)
	}
	if entries != 60 || len(calls) >= 60 {
		t.Errorf("60 deliveries in %d calls of %d entries", len(calls), entries)
	}
}

// An entry whose attempt ended while it waited for its call is not sent.
func TestEventBridgeSink_EndedAttemptsAreNotSent(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := sink(t, srv, Config{})
	// A slow call is out; the next delivery waits behind it, and its
	// attempt ends before the call lands.
	srv.FailNext("events:PutEvents", 1, awstest.Fault{Latency: 300 * time.Millisecond})
	first := make(chan error, 1)
	go func() { first <- s.Deliver(t.Context(), delivery("1", `{"n":1}`)) }()
	waitFor(t, "the first call", func() bool { return srv.Calls("events:PutEvents") == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Deliver(ctx, delivery("2", `{"n":2}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(t.Context(), delivery("3", `{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	for _, e := range srv.EventBridge().Events("default") {
		if e.Detail == `{"n":2}` {
			t.Errorf("the ended attempt's entry was sent")
		}
	}
}

// Close sends what waits and returns once the calls land; later
// deliveries are refused as retryable.
func TestEventBridgeSink_Close(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	s := New("bus", Config{Bus: "default"}, srv.EventBridgeClient())
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("close before use: %v", err)
	}
	s = New("bus", Config{Bus: "default"}, srv.EventBridgeClient())
	if err := s.Deliver(t.Context(), delivery("1", `{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Deliver(t.Context(), delivery("2", `{}`)); router.ClassOf(err) != router.Retryable || err == nil {
		t.Errorf("after close: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Bus: "orders.v2_eu-west"}, ""},
		{Config{Bus: "arn:aws:events:eu-west-1:111122223333:event-bus/orders"}, ""},
		{Config{Bus: "arn:aws-cn:events:cn-north-1:111122223333:event-bus/default"}, ""},
		{Config{Bus: "orders/v2"}, `bus: invalid event bus name "orders/v2"`},
		{Config{Bus: "aws.partner/saas.com/123/x"}, `bus: invalid event bus name`},
		{Config{Bus: strings.Repeat("b", 257)}, "bus: invalid event bus name"},
		{Config{Bus: "arn:aws:events:eu-west-1:111122223333:rule/orders"}, "is not an event bus ARN"},
		{Config{Bus: "arn:aws:sqs:eu-west-1:111122223333:event-bus/orders"}, "is not an event bus ARN"},
		{Config{Bus: "arn:aws:events:europe:111122223333:event-bus/orders"}, `invalid region "europe"`},
		{Config{Bus: "arn:aws:events:eu-west-1:1111:event-bus/orders"}, `invalid account "1111"`},
		{Config{Bus: "arn:aws:events:eu-west-1:111122223333:event-bus/"}, `invalid event bus name "" in the ARN`},
		{Config{Source: "com.example.orders", DetailType: strings.Repeat("é", 128), Resources: []string{"arn:aws:s3:::b"}}, ""},
		{Config{Source: "aws.s3"}, `source: "aws.s3": sources beginning with "aws." are AWS services' own`},
		{Config{DetailType: strings.Repeat("x", 129)}, "detail_type: 129 characters exceed EventBridge's limit of 128"},
		{Config{Resources: []string{"arn:aws:s3:::b", " "}}, "resources[1]: an empty resource"},
	} {
		kindtest.Check(t, tc.cfg, tc.want)
	}
}

func TestParseBus(t *testing.T) {
	b, err := ParseBus("arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/audit")
	if err != nil || b != (Bus{Name: "audit", Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "111122223333"}) {
		t.Errorf("ARN: %+v, %v", b, err)
	}
	if b, err := ParseBus("default"); err != nil || b != (Bus{Name: "default"}) {
		t.Errorf("name: %+v, %v", b, err)
	}
}

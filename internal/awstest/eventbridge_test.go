package awstest_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func entry(source, detailType, detail string) ebtypes.PutEventsRequestEntry {
	e := ebtypes.PutEventsRequestEntry{}
	if source != "" {
		e.Source = aws.String(source)
	}
	if detailType != "" {
		e.DetailType = aws.String(detailType)
	}
	if detail != "" {
		e.Detail = aws.String(detail)
	}
	return e
}

func TestEventBridge_PutEvents(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	arn, err := s.EventBridge().CreateEventBus("orders")
	if err != nil || arn != "arn:aws:events:us-east-1:123456789012:event-bus/orders" {
		t.Fatalf("CreateEventBus: %q, %v", arn, err)
	}
	at := time.Date(2026, 11, 20, 12, 0, 1, 234_567_000, time.UTC)
	first := entry("app.orders", "Order Placed", `{"id":"o-1"}`)
	first.Time = aws.Time(at)
	first.Resources = []string{"arn:aws:s3:::a", "arn:aws:s3:::b"}
	first.TraceHeader = aws.String("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	first.EventBusName = aws.String("orders")
	second := entry("app.orders", "Order Shipped", `{"id":"o-2"}`)
	second.EventBusName = aws.String(arn)
	third := entry("app.other", "Ping", ` {"n": 1} `) // no bus: the default

	out, err := s.EventBridgeClient().PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{first, second, third}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 0 || len(out.Entries) != 3 {
		t.Fatalf("answer: %+v", out)
	}
	ids := map[string]bool{}
	for _, e := range out.Entries {
		if aws.ToString(e.EventId) == "" || e.ErrorCode != nil {
			t.Errorf("entry answer %+v", e)
		}
		ids[aws.ToString(e.EventId)] = true
	}
	if len(ids) != 3 {
		t.Errorf("event ids are not distinct: %v", ids)
	}

	got := s.EventBridge().Events("orders")
	if len(got) != 2 {
		t.Fatalf("orders bus: %+v", got)
	}
	g := got[0]
	if g.EventID != aws.ToString(out.Entries[0].EventId) || g.Source != "app.orders" || g.DetailType != "Order Placed" || g.Detail != `{"id":"o-1"}` ||
		!slices.Equal(g.Resources, first.Resources) || !g.Time.Equal(at.Truncate(time.Millisecond)) || g.TraceHeader != *first.TraceHeader ||
		g.Bus != "orders" || !g.Received.Equal(clk.Now()) {
		t.Errorf("first event: %+v", g)
	}
	if g := got[1]; g.DetailType != "Order Shipped" || !g.Time.IsZero() || g.TraceHeader != "" || g.Bus != "orders" {
		t.Errorf("second event (bus by ARN, no time): %+v", g)
	}
	if d := s.EventBridge().Events("default"); len(d) != 1 || d[0].Source != "app.other" {
		t.Errorf("default bus: %+v", d)
	}
	if calls := s.EventBridge().PutEventsCalls(); len(calls) != 1 || len(calls[0]) != 3 || s.Calls("events:PutEvents") != 1 {
		t.Errorf("calls: %d recorded, %d counted", len(calls), s.Calls("events:PutEvents"))
	}
}

// Entries EventBridge fails on their own fail alone, with its error codes;
// the others are put.
func TestEventBridge_EntryValidation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	entries := []ebtypes.PutEventsRequestEntry{
		entry("app", "ok", `{"a":1}`),
		entry("", "no source", `{}`),
		entry("app", "", `{}`),
		entry("app", "no detail", ""),
		entry("app", "array", `[1]`),
		entry("app", "string", `"x"`),
		entry("app", "broken", `{"a":`),
		entry("aws.s3", "Object Created", `{}`),
		entry("app", strings.Repeat("x", 129), `{}`),
		entry("app", strings.Repeat("é", 128), `{}`),
	}
	out, err := s.EventBridgeClient().PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ code, msg string }{
		{"", ""},
		{"InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."},
		{"InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."},
		{"InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."},
		{"MalformedDetail", "Detail is malformed."},
		{"MalformedDetail", "Detail is malformed."},
		{"MalformedDetail", "Detail is malformed."},
		{"NotAuthorizedForSourceException", "Not authorized for the source."},
		{"InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is longer than 128 characters."},
		{"", ""},
	}
	if out.FailedEntryCount != 8 || len(out.Entries) != len(want) {
		t.Fatalf("answer: %d failed, %d entries", out.FailedEntryCount, len(out.Entries))
	}
	for i, w := range want {
		e := out.Entries[i]
		if aws.ToString(e.ErrorCode) != w.code || aws.ToString(e.ErrorMessage) != w.msg || (w.code == "") != (aws.ToString(e.EventId) != "") {
			t.Errorf("entry %d: %s %q id %q, want %s %q", i, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage), aws.ToString(e.EventId), w.code, w.msg)
		}
	}
	if got := s.EventBridge().Events("default"); len(got) != 2 || got[0].DetailType != "ok" {
		t.Errorf("events: %+v", got)
	}
	call := s.EventBridge().PutEventsCalls()[0]
	if call[4].ErrorCode != "MalformedDetail" || call[4].EventID != "" || call[0].EventID == "" {
		t.Errorf("recorded call: %+v", call)
	}
}

// What fails a whole call: its size, its number of entries, constraints
// on members, a bus that does not exist, no complete entry.
func TestEventBridge_RequestValidation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	c := s.EventBridgeClient()
	many := func(n int, detail string) []ebtypes.PutEventsRequestEntry {
		es := make([]ebtypes.PutEventsRequestEntry, n)
		for i := range es {
			es[i] = entry("app", "t", detail)
		}
		return es
	}
	onBus := func(bus string) []ebtypes.PutEventsRequestEntry {
		e := entry("app", "t", `{}`)
		e.EventBusName = aws.String(bus)
		return []ebtypes.PutEventsRequestEntry{entry("app", "t", `{}`), e}
	}
	long := entry("app", "t", `{}`)
	long.TraceHeader = aws.String(strings.Repeat("x", 501))
	// 256 KiB exactly passes; one byte more does not.
	fits := `{"p":"` + strings.Repeat("x", awstest.PutEventsMaxSize-len("app")-len("t")-len(`{"p":""}`)) + `"}`
	for _, tc := range []struct {
		name    string
		entries []ebtypes.PutEventsRequestEntry
		code    string
		msg     string
	}{
		{"no entries", []ebtypes.PutEventsRequestEntry{}, "ValidationException", "Member must have length greater than or equal to 1"},
		{"eleven entries", many(11, `{}`), "ValidationException", "Member must have length less than or equal to 10"},
		{"ten entries", many(10, `{}`), "", ""},
		{"exactly the size limit", []ebtypes.PutEventsRequestEntry{entry("app", "t", fits)}, "", ""},
		{"over the size limit", []ebtypes.PutEventsRequestEntry{entry("app", "t", fits+" ")}, "ValidationException", "Total size of the entries in the request is over the limit."},
		{"over the size limit together", many(2, `{"p":"`+strings.Repeat("x", 140_000)+`"}`), "ValidationException", "over the limit"},
		{"trace header too long", []ebtypes.PutEventsRequestEntry{long}, "ValidationException", "traceHeader' failed to satisfy constraint"},
		{"no complete entry", []ebtypes.PutEventsRequestEntry{entry("app", "", `{}`), entry("", "t", `{}`)}, "ValidationException", "None of the entries"},
		{"unknown bus", onBus("nope"), "ResourceNotFoundException", "Event bus nope does not exist."},
		{"bus ARN of another account", onBus("arn:aws:events:us-east-1:999999999999:event-bus/default"), "ResourceNotFoundException", "does not exist"},
		{"bus ARN of another region", onBus("arn:aws:events:eu-west-1:123456789012:event-bus/default"), "ValidationException", "Cross-region api call is not allowed."},
		{"default bus by ARN", onBus("arn:aws:events:us-east-1:123456789012:event-bus/default"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.EventBridge().Events("default"))
			out, err := c.PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: tc.entries})
			if tc.code == "" {
				if err != nil || out.FailedEntryCount != 0 || len(s.EventBridge().Events("default")) != before+len(tc.entries) {
					t.Fatalf("%+v, %v", out, err)
				}
				return
			}
			if code, status := apiCode(t, err), httpStatus(t, err); code != tc.code || status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s %d %v, want %s 400 %q", code, status, err, tc.code, tc.msg)
			}
			if n := len(s.EventBridge().Events("default")); n != before {
				t.Errorf("a refused call put %d events", n-before)
			}
		})
	}
}

func TestEventBridge_Faults(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	c := s.EventBridgeClient()
	put := func(entries ...ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
		return c.PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: entries})
	}

	// Chosen entries fail with chosen codes; Times bounds a fault.
	remove := s.EventBridge().FailEntries(awstest.EntryFault{Match: func(e awstest.EventBridgeEntry) bool { return strings.Contains(e.Detail, "slow") },
		Code: "ThrottlingException", Times: 1})
	defer remove()
	s.EventBridge().FailEntries(awstest.EntryFault{Match: func(e awstest.EventBridgeEntry) bool { return e.DetailType == "deny" },
		Code: "AccessDeniedException", Message: "no"})
	out, err := put(entry("app", "t", `{"n":"slow"}`), entry("app", "t", `{"n":"fine"}`), entry("app", "deny", `{}`), entry("app", "t", `{"n":"slow"}`))
	if err != nil {
		t.Fatal(err)
	}
	codes := func(out *eventbridge.PutEventsOutput) []string {
		var cs []string
		for _, e := range out.Entries {
			cs = append(cs, aws.ToString(e.ErrorCode))
		}
		return cs
	}
	if got := codes(out); out.FailedEntryCount != 2 || !slices.Equal(got, []string{"ThrottlingException", "", "AccessDeniedException", ""}) ||
		aws.ToString(out.Entries[0].ErrorMessage) != "Rate exceeded." || aws.ToString(out.Entries[2].ErrorMessage) != "no" {
		t.Errorf("entry faults: %d failed, %q", out.FailedEntryCount, got)
	}

	// A Fault's BatchEntries name entries by position.
	s.FailNext("events:PutEvents", 1, awstest.Fault{Code: "InternalFailure", BatchEntries: []string{"1"}})
	out, err = put(entry("app", "t", `{}`), entry("app", "t", `{}`))
	if err != nil || out.FailedEntryCount != 1 || !slices.Equal(codes(out), []string{"", "InternalFailure"}) {
		t.Errorf("batch-entry fault: %+v, %v", out, err)
	}

	// Whole-call faults in the JSON 1.1 error shape, as the SDK decodes them.
	for _, tc := range []struct {
		fault  awstest.Fault
		code   string
		status int
		typed  any
	}{
		{awstest.Throttled(), "ThrottlingException", 400, nil},
		{awstest.InternalError("InternalException"), "InternalException", 500, new(*ebtypes.InternalException)},
		{awstest.Fault{Code: "AccessDeniedException", Message: "denied"}, "AccessDeniedException", 400, nil},
		{awstest.Unavailable(), "UnknownError", 503, nil},
	} {
		s.FailNext("events:PutEvents", 1, tc.fault)
		_, err := put(entry("app", "t", `{}`))
		if code, status := apiCode(t, err), httpStatus(t, err); code != tc.code || status != tc.status {
			t.Errorf("%+v: %s %d, want %s %d", tc.fault, code, status, tc.code, tc.status)
		}
		if p, ok := tc.typed.(**ebtypes.InternalException); ok && !errors.As(err, p) {
			t.Errorf("%s: not the SDK's typed error: %T", tc.code, err)
		}
	}

	// Faults match the bus a call is for (its first entry's).
	s.EventBridge().CreateEventBus("orders")
	s.InjectFault(awstest.FaultRule{Op: "events:PutEvents", Resource: "orders", Times: 1, Fault: awstest.Throttled()})
	e := entry("app", "t", `{}`)
	e.EventBusName = aws.String(s.EventBridge().BusARN("orders"))
	if _, err := put(entry("app", "t", `{}`)); err != nil {
		t.Errorf("default bus: %v", err)
	}
	if _, err := put(e); apiCode(t, err) != "ThrottlingException" {
		t.Errorf("orders bus by ARN: %v", err)
	}
}

// The protocol as it is on the wire: POST, the target header, JSON 1.1.
func TestEventBridge_Wire(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	do := func(target, body string) (int, string, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	defer http.DefaultClient.CloseIdleConnections()
	status, ct, body := do("AWSEvents.PutEvents", `{"Entries":[{"Source":"a","DetailType":"b","Detail":"{}","Time":1795003200.5},{"Source":"a"}]}`)
	if status != 200 || ct != "application/x-amz-json-1.1" || !strings.Contains(body, `"FailedEntryCount":1`) ||
		!strings.Contains(body, `{"ErrorCode":"InvalidArgument","ErrorMessage":"Parameter DetailType is not valid. Reason: DetailType is a required argument."}`) {
		t.Errorf("PutEvents: %d %s %s", status, ct, body)
	}
	if ev := s.EventBridge().Events("default"); len(ev) != 1 || !ev[0].Time.Equal(time.Unix(1795003200, 500e6)) {
		t.Errorf("events: %+v", ev)
	}
	if status, _, body := do("AWSEvents.PutEvents", `{"Entries":"no"}`); status != 400 || !strings.Contains(body, `"__type":"SerializationException"`) {
		t.Errorf("wrong member type: %d %s", status, body)
	}
	if status, _, body := do("AWSEvents.PutRule", `{}`); status != 400 || !strings.Contains(body, `"__type":"UnknownOperationException"`) {
		t.Errorf("unknown operation: %d %s", status, body)
	}
}

func TestEntrySize(t *testing.T) {
	t.Parallel()
	e := awstest.EventBridgeEntry{Source: "app", DetailType: "Créé", Detail: `{"k":"ü"}`, Resources: []string{"arn:x", "ab"}}
	if got, want := awstest.EntrySize(e), 3+6+10+5+2; got != want {
		t.Errorf("without time: %d, want %d", got, want)
	}
	e.Time = time.Now()
	if got, want := awstest.EntrySize(e), 3+6+10+5+2+14; got != want {
		t.Errorf("with time: %d, want %d", got, want)
	}
}

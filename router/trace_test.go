package router

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestTraceConversions(t *testing.T) {
	t.Parallel()
	const (
		xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		w3c  = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
	)
	if got, ok := XRayToTraceParent(xray); !ok || got != w3c {
		t.Errorf("XRayToTraceParent = %q, %v; want %q", got, ok, w3c)
	}
	if got, ok := TraceParentToXRay(w3c); !ok || got != xray {
		t.Errorf("TraceParentToXRay = %q, %v; want %q", got, ok, xray)
	}
	tests := []struct {
		name, in, want string
	}{
		{"fields in any order, spaces", "Sampled=0; Parent=53995c3f42cd8ad8 ;Root=1-5759e988-bd862e3fe1be46a994272793", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{"undecided is not sampled", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{"other fields ignored", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5", w3c},
		{"no parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", ""},
		{"bad root version", "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},
		{"upper-case hex", "Root=1-5759E988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},
		{"zero parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000", ""},
		{"two roots", "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad8", ""},
		{"garbage", "hello", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := XRayToTraceParent(tt.in)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("XRayToTraceParent(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestParseTraceParent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		valid bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false}, // version 00 is exactly 55
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"", false},
	}
	for _, tt := range tests {
		if _, _, _, ok := ParseTraceParent(tt.in); ok != tt.valid {
			t.Errorf("ParseTraceParent(%q) ok = %v, want %v", tt.in, ok, tt.valid)
		}
	}
}

func TestCleanTrace(t *testing.T) {
	t.Parallel()
	h := map[string]string{
		HeaderTraceParent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future",
		HeaderTraceState:  "congo=t61rcWkgMzE",
		HeaderXRay:        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
	}
	got := CleanTrace(func(k string) string { return h[k] })
	want := TraceContext{
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
		TraceState:  "congo=t61rcWkgMzE",
		XRay:        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
	}
	if got != want {
		t.Errorf("CleanTrace = %+v, want %+v", got, want)
	}
	if got.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q", got.TraceID())
	}
	bad := map[string]string{
		HeaderTraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Evil: 1",
		HeaderTraceState:  "a=b",
		HeaderXRay:        "Root=1-5759e988-bd862e3fe1be46a994272793\n",
	}
	if got := CleanTrace(func(k string) string { return bad[k] }); got.TraceParent != "" || got.TraceState != "" {
		t.Errorf("CleanTrace kept a malformed traceparent (or its tracestate): %+v", got)
	}
	if got := CleanTrace(func(string) string { return "" }); !got.IsZero() {
		t.Errorf("no headers: %+v", got)
	}
}

func TestTraceContext_FormsAndOutbound(t *testing.T) {
	t.Parallel()
	x := TraceContext{XRay: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
	if x.W3C() != "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01" || x.TraceID() != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("from X-Ray: W3C %q, TraceID %q", x.W3C(), x.TraceID())
	}
	w := TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"}
	if w.XRayHeader() != "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0" {
		t.Errorf("from W3C: XRayHeader %q", w.XRayHeader())
	}
	m := &Message{Trace: x}
	d := &Delivery{Message: m}
	if d.OutboundTrace() != x {
		t.Errorf("tracing off: OutboundTrace = %+v, want the message's", d.OutboundTrace())
	}
	d.Trace = w
	if d.OutboundTrace() != w {
		t.Errorf("tracing on: OutboundTrace = %+v, want the delivery's", d.OutboundTrace())
	}
}

func TestLogAttrs_InlinedCorrelationIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	m := &Message{Source: "jobs", ID: "m-1", Event: &Event{ID: "e-1"},
		Trace: TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}}
	d := &Delivery{ID: "d-1", Message: m, Rule: "r", Target: "t"}
	log.Warn("x", LogAttrs(d), "error", "boom")
	log.Warn("y", MessageLogAttrs(m))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []map[string]string{
		{"source": "jobs", "message_id": "m-1", "event_id": "e-1", "delivery_id": "d-1", "rule": "r", "target": "t", "trace_id": "5759e988bd862e3fe1be46a994272793", "error": "boom"},
		{"source": "jobs", "message_id": "m-1", "event_id": "e-1", "trace_id": "5759e988bd862e3fe1be46a994272793"},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %q (line %s)", i, k, got[k], v, line)
			}
		}
	}
}

// FuzzTraceRoundTrip checks that the conversions are inverse: a valid
// traceparent survives X-Ray and back (its sampled flag kept, other flags
// dropped), and a valid X-Ray header with a parent survives W3C and back
// in canonical form.
func FuzzTraceRoundTrip(f *testing.F) {
	f.Add("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")
	f.Add("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	f.Add("Root=1-00000000-000000000000000000000001;Parent=0000000000000001;Sampled=0;Self=x")
	f.Fuzz(func(t *testing.T, s string) {
		if traceID, parentID, flags, ok := ParseTraceParent(s); ok {
			x, ok := TraceParentToXRay(s)
			if !ok {
				t.Fatalf("valid traceparent %q does not convert", s)
			}
			back, ok := XRayToTraceParent(x)
			if want := FormatTraceParent(traceID, parentID, flags&1); !ok || back != want {
				t.Fatalf("%q → %q → %q, want %q", s, x, back, want)
			}
			if (TraceContext{XRay: x}).TraceID() != traceID {
				t.Fatalf("trace id of %q is not %s", x, traceID)
			}
		}
		if root, parent, sampled, ok := parseXRay(s); ok {
			tp, ok := XRayToTraceParent(s)
			if ok != (parent != "") {
				t.Fatalf("XRayToTraceParent(%q) ok = %v with parent %q", s, ok, parent)
			}
			if !ok {
				return
			}
			back, ok := TraceParentToXRay(tp)
			want := FormatXRay(root[2:10]+root[11:], parent, sampled)
			if !ok || back != want {
				t.Fatalf("%q → %q → %q, want %q", s, tp, back, want)
			}
		}
	})
}

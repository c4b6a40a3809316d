package router

import (
	"strings"
)

// TraceContext is the distributed-trace context a message arrived with,
// or a delivery leaves with, in the forms it was carried: a W3C Trace
// Context (traceparent, tracestate) and an AWS X-Ray tracing header
// (X-Amzn-Trace-Id, the SQS AWSTraceHeader attribute). Either or both may
// be set; the zero value means no trace. Sources keep only well-formed
// values (see CleanTrace), so sinks may send them as they are. It is a
// plain value, safe to copy.
type TraceContext struct {
	// TraceParent is a W3C traceparent:
	// 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>.
	TraceParent string
	// TraceState is the W3C tracestate that came with TraceParent.
	TraceState string
	// XRay is an X-Ray tracing header:
	// Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>.
	XRay string
}

// IsZero reports whether t carries no trace.
func (t TraceContext) IsZero() bool { return t.TraceParent == "" && t.XRay == "" }

// W3C returns t's traceparent: TraceParent, or XRay converted when only it
// is set; "" when there is none (or the X-Ray header has no Parent).
func (t TraceContext) W3C() string {
	if t.TraceParent != "" {
		return t.TraceParent
	}
	if t.XRay != "" {
		tp, _ := XRayToTraceParent(t.XRay)
		return tp
	}
	return ""
}

// XRayHeader returns t's X-Ray header: XRay, or TraceParent converted when
// only it is set; "" when there is none.
func (t TraceContext) XRayHeader() string {
	if t.XRay != "" {
		return t.XRay
	}
	if t.TraceParent != "" {
		x, _ := TraceParentToXRay(t.TraceParent)
		return x
	}
	return ""
}

// TraceID returns the trace id as 32 lowercase hex digits (the W3C form,
// which X-Ray's Root is a rewriting of), or "".
func (t TraceContext) TraceID() string {
	if tp := t.TraceParent; len(tp) >= 55 {
		return tp[3:35]
	}
	if t.XRay != "" {
		if root, _, _, ok := parseXRay(t.XRay); ok {
			return root[2:10] + root[11:35]
		}
	}
	return ""
}

// Trace header names, as sources read them and sinks write them.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
	HeaderXRay        = "X-Amzn-Trace-Id"
)

// maxTraceState bounds a tracestate kept (W3C: at most 32 members, and
// vendors may drop members past 512 characters).
const maxTraceState = 512

// CleanTrace returns the trace context of a message's headers: get looks a
// header up (by the names above; case as the carrier needs). Malformed
// values are dropped: traceparent must parse (ParseTraceParent), the X-Ray
// header must have a valid Root (extra fields are kept as they are), and
// tracestate is kept only with a valid traceparent, when it is at most
// 512 printable ASCII characters.
func CleanTrace(get func(key string) string) TraceContext {
	var t TraceContext
	if tp := strings.TrimSpace(get(HeaderTraceParent)); tp != "" {
		if traceID, parentID, flags, ok := ParseTraceParent(tp); ok {
			// Only the version 00 fields are understood: keep those.
			t.TraceParent = FormatTraceParent(traceID, parentID, flags)
			if ts := strings.TrimSpace(get(HeaderTraceState)); len(ts) <= maxTraceState && printable(ts) {
				t.TraceState = ts
			}
		}
	}
	if x := strings.TrimSpace(get(HeaderXRay)); x != "" && len(x) <= 256 && printable(x) {
		if _, _, _, ok := parseXRay(x); ok {
			t.XRay = x
		}
	}
	return t
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ParseTraceParent parses a W3C traceparent. It accepts version 00 (exactly
// 55 characters) and, as the specification asks, later versions whose first
// 55 characters parse as version 00 and are followed by nothing or a "-";
// version ff, all-zero ids and upper-case hex are invalid.
func ParseTraceParent(s string) (traceID, parentID string, flags byte, ok bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return "", "", 0, false
	}
	version, vok := unhexByte(s[0:2])
	if !vok || version == 0xff || version == 0 && len(s) != 55 || len(s) > 55 && s[55] != '-' {
		return "", "", 0, false
	}
	traceID, parentID = s[3:35], s[36:52]
	f, fok := unhexByte(s[53:55])
	if !fok || !lowerHex(traceID) || !lowerHex(parentID) || allZero(traceID) || allZero(parentID) {
		return "", "", 0, false
	}
	return traceID, parentID, f, true
}

// FormatTraceParent is the version 00 traceparent of the ids and flags.
func FormatTraceParent(traceID, parentID string, flags byte) string {
	return "00-" + traceID + "-" + parentID + "-" + hexByte(flags)
}

// XRayToTraceParent converts an X-Ray tracing header to a traceparent: the
// Root 1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY becomes the trace id
// XXXXXXXXYYYYYYYYYYYYYYYYYYYYYYYY, Parent the parent id, and Sampled=1 the
// sampled flag (Sampled=0, ? or none: not sampled). A header without a
// Parent has no traceparent.
func XRayToTraceParent(x string) (string, bool) {
	root, parent, sampled, ok := parseXRay(x)
	if !ok || parent == "" {
		return "", false
	}
	var flags byte
	if sampled {
		flags = 1
	}
	return FormatTraceParent(root[2:10]+root[11:35], parent, flags), true
}

// TraceParentToXRay converts a traceparent to an X-Ray tracing header:
// Root=1-<first 8 hex of the trace id>-<other 24>;Parent=<parent id>;
// Sampled=<sampled flag>.
func TraceParentToXRay(tp string) (string, bool) {
	traceID, parentID, flags, ok := ParseTraceParent(tp)
	if !ok {
		return "", false
	}
	return FormatXRay(traceID, parentID, flags&1 == 1), true
}

// FormatXRay is the X-Ray tracing header of a W3C trace id (32 hex), span
// id (16 hex) and sampling decision.
func FormatXRay(traceID, parentID string, sampled bool) string {
	s := "0"
	if sampled {
		s = "1"
	}
	return "Root=1-" + traceID[:8] + "-" + traceID[8:] + ";Parent=" + parentID + ";Sampled=" + s
}

// parseXRay reads Root (required: 1-<8 hex>-<24 hex>, not all zero),
// Parent (16 hex, not all zero, optional) and Sampled from an X-Ray header.
// Fields are separated by ";", in any order, with optional spaces; other
// fields are ignored.
func parseXRay(x string) (root, parent string, sampled, ok bool) {
	for field := range strings.SplitSeq(x, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(field), "=")
		if !found {
			if strings.TrimSpace(field) == "" {
				continue
			}
			return "", "", false, false
		}
		switch k {
		case "Root":
			if root != "" || len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' ||
				!lowerHex(v[2:10]) || !lowerHex(v[11:]) || allZero(v[2:10]+v[11:]) {
				return "", "", false, false
			}
			root = v
		case "Parent":
			if parent != "" || len(v) != 16 || !lowerHex(v) || allZero(v) {
				return "", "", false, false
			}
			parent = v
		case "Sampled":
			sampled = v == "1"
		}
	}
	return root, parent, sampled, root != ""
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func unhexByte(s string) (byte, bool) {
	if len(s) != 2 || !lowerHex(s) {
		return 0, false
	}
	var b byte
	for i := 0; i < 2; i++ {
		c := s[i]
		if c <= '9' {
			c -= '0'
		} else {
			c -= 'a' - 10
		}
		b = b<<4 | c
	}
	return b, true
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

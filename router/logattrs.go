package router

import "log/slog"

// Log keys of the correlation ids that every log line about an event
// carries. They are stable: log queries depend on them.
const (
	LogEventID    = "event_id"
	LogMessageID  = "message_id"
	LogSource     = "source"
	LogDeliveryID = "delivery_id"
	LogRule       = "rule"
	LogTarget     = "target"
	LogTraceID    = "trace_id"
)

// LogAttrs returns a delivery's correlation ids for a log line: source,
// message_id, event_id, delivery_id, rule, target and trace_id (the
// outbound trace's id, 32 hex), each left out when empty. The attribute
// has an empty key, so handlers inline its members at the top level:
//
//	log.Warn("delivery failed", router.LogAttrs(d), "error", err)
func LogAttrs(d *Delivery) slog.Attr {
	attrs := make([]slog.Attr, 0, 7)
	if m := d.Message; m != nil {
		attrs = appendNonEmpty(attrs, LogSource, m.Source)
		attrs = appendMessageAttrs(attrs, m, false)
	}
	attrs = appendNonEmpty(attrs, LogDeliveryID, d.ID)
	attrs = appendNonEmpty(attrs, LogRule, d.Rule)
	attrs = appendNonEmpty(attrs, LogTarget, d.Target)
	attrs = appendNonEmpty(attrs, LogTraceID, d.OutboundTrace().TraceID())
	return slog.Attr{Value: slog.GroupValue(attrs...)}
}

// MessageLogAttrs returns a message's correlation ids for a log line:
// source, message_id, event_id and trace_id (of the trace it arrived
// with), each left out when empty; inlined as LogAttrs is.
func MessageLogAttrs(m *Message) slog.Attr {
	attrs := appendNonEmpty(make([]slog.Attr, 0, 4), LogSource, m.Source)
	return slog.Attr{Value: slog.GroupValue(appendMessageAttrs(attrs, m, true)...)}
}

// MessageIDs is MessageLogAttrs without source, for a source's own
// logger, which already names it.
func MessageIDs(m *Message) slog.Attr {
	return slog.Attr{Value: slog.GroupValue(appendMessageAttrs(make([]slog.Attr, 0, 3), m, true)...)}
}

func appendMessageAttrs(attrs []slog.Attr, m *Message, trace bool) []slog.Attr {
	attrs = appendNonEmpty(attrs, LogMessageID, m.ID)
	if m.Event != nil {
		attrs = appendNonEmpty(attrs, LogEventID, m.Event.ID)
	}
	if trace {
		attrs = appendNonEmpty(attrs, LogTraceID, m.Trace.TraceID())
	}
	return attrs
}

func appendNonEmpty(attrs []slog.Attr, k, v string) []slog.Attr {
	if v == "" {
		return attrs
	}
	return append(attrs, slog.String(k, v))
}

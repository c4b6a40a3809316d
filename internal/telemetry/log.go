package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// LogConfig is the `log:` block of the config file. The run command's
// -log-level and -log-format flags win over it.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default: text when standard error is a
	// terminal, json otherwise.
	Format string `yaml:"format"`
}

// SetDefaults fills zero fields (Format stays empty: decided at start).
func (c *LogConfig) SetDefaults() {
	if c.Level == "" {
		c.Level = "info"
	}
}

// Validate checks the fields, returning router.FieldErrors.
func (c *LogConfig) Validate() error {
	var errs []error
	if _, err := ParseLevel(c.Level); err != nil {
		errs = append(errs, router.Fieldf("level", "%v", err))
	}
	if c.Format != "" && c.Format != "json" && c.Format != "text" {
		errs = append(errs, router.Fieldf("format", "unknown format %q (valid: json, text)", c.Format))
	}
	return errors.Join(errs...)
}

// ParseLevel reads debug, info, warn or error ("" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (valid: debug, info, warn, error)", s)
}

// IsTerminal reports whether f is a terminal (a character device).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// SummaryWindow is how long identical warnings and errors are summarised
// for: see Summarizer.
const SummaryWindow = 10 * time.Second

// NewLogger returns the daemon's logger writing to w: JSON or text
// (format "" means text when terminal, else JSON), at level, with
// repeated warnings and errors summarised (see Summarizer). Close the
// Summarizer at exit to write the summaries still pending.
func NewLogger(w io.Writer, level, format string, terminal bool) (*slog.Logger, *Summarizer, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	if format == "" {
		format = "json"
		if terminal {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, nil, fmt.Errorf("unknown format %q (valid: json, text)", format)
	}
	s := NewSummarizer(h, SummaryWindow)
	return slog.New(s), s, nil
}

// Summarizer is a slog.Handler that keeps a streak of identical warnings
// or errors from flooding the log (a source whose receives fail, a message
// that comes back and fails again). Records are identical when they have
// the same level and message and name the same target, source, event,
// delivery and message (target, source, event_id, delivery_id and
// message_id; other attributes, the error included, may differ): lines
// about different events are never folded together, so every event a line
// is about appears in the log. The first record of a streak is written at
// once; identical ones within the window that follows are counted, not
// written. When the window ends (checked at least every tenth of a
// window), if any were held back, one summary line is written: the latest
// of them, stamped with the time it is written (so the log stays in time
// order), with `suppressed`, the number of records it stands for, none of
// them written. Records below warn, and records that name none of those
// keys (a rejected reload, say), pass through. At most maxStreaks streaks
// are followed at once; beyond that records are written as they come. It
// is safe for concurrent use; Close writes what is pending and stops its
// timer.
type Summarizer struct {
	next  slog.Handler
	st    *summaryState
	scope string // the keys above given by WithAttrs
}

// maxStreaks bounds the streaks followed at once (a streak per event, so
// per failing event within a window).
const maxStreaks = 10000

type summaryState struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*streak
	timer  *time.Timer
	closed bool
}

// streak is one kind of record within its window.
type streak struct {
	until      time.Time
	suppressed int
	last       slog.Record  // the latest suppressed record
	h          slog.Handler // the handler that suppressed it
}

// NewSummarizer wraps next, summarising over window.
func NewSummarizer(next slog.Handler, window time.Duration) *Summarizer {
	return &Summarizer{next: next, st: &summaryState{window: window, seen: map[string]*streak{}}}
}

var _ slog.Handler = (*Summarizer)(nil)

// Enabled is next's.
func (s *Summarizer) Enabled(ctx context.Context, l slog.Level) bool { return s.next.Enabled(ctx, l) }

// WithAttrs returns a Summarizer over next.WithAttrs sharing the state.
func (s *Summarizer) WithAttrs(as []slog.Attr) slog.Handler {
	scope := s.scope
	for _, a := range as {
		scope = appendScope(scope, a)
	}
	return &Summarizer{next: s.next.WithAttrs(as), st: s.st, scope: scope}
}

// WithGroup returns a Summarizer over next.WithGroup sharing the state.
func (s *Summarizer) WithGroup(name string) slog.Handler {
	return &Summarizer{next: s.next.WithGroup(name), st: s.st, scope: s.scope}
}

// appendScope adds an attribute that says what a record is about (also
// inside an inlined group, as router.LogAttrs makes) to a key.
func appendScope(key string, a slog.Attr) string {
	v := a.Value.Resolve()
	switch {
	case a.Key == "" && v.Kind() == slog.KindGroup:
		for _, g := range v.Group() {
			key = appendScope(key, g)
		}
	case a.Key == router.LogTarget || a.Key == router.LogSource ||
		a.Key == router.LogEventID || a.Key == router.LogDeliveryID || a.Key == router.LogMessageID:
		key += "\x00" + a.Key + "=" + v.String()
	}
	return key
}

// Handle writes, counts or summarises r.
func (s *Summarizer) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return s.next.Handle(ctx, r)
	}
	scope := s.scope
	r.Attrs(func(a slog.Attr) bool { scope = appendScope(scope, a); return true })
	if scope == "" {
		// Not about a target's or a source's events (a rejected reload, a
		// startup problem): each such line is news.
		return s.next.Handle(ctx, r)
	}
	key := r.Level.String() + "\x00" + r.Message + scope
	st := s.st
	st.mu.Lock()
	now := time.Now()
	k := st.seen[key]
	if st.closed {
		st.mu.Unlock()
		return s.next.Handle(ctx, r)
	}
	if k != nil && now.Before(k.until) {
		k.suppressed++
		k.last, k.h = r.Clone(), s.next
		st.mu.Unlock()
		return nil
	}
	// A new streak. One whose window is over but not yet swept is summed
	// up first.
	var pending *summary
	if k != nil && k.suppressed > 0 {
		pending = k.summary(now)
	}
	if k != nil || len(st.seen) < maxStreaks {
		st.seen[key] = &streak{until: now.Add(st.window)}
		st.arm(now)
	}
	st.mu.Unlock()
	if pending != nil {
		pending.write()
	}
	return s.next.Handle(ctx, r)
}

// summary is a summary line to write, and the handler to write it with.
type summary struct {
	r slog.Record
	h slog.Handler
}

func (k *streak) summary(now time.Time) *summary {
	r := k.last.Clone()
	r.Time = now
	r.AddAttrs(slog.Int("suppressed", k.suppressed))
	return &summary{r, k.h}
}

func (p *summary) write() { p.h.Handle(context.Background(), p.r) }

// arm sets the sweep timer if it is not set, for when the earliest streak
// may end: no sooner than a tenth of a window from now, so that a stream
// of new streaks does not sweep the map for each. Called with mu held.
func (st *summaryState) arm(now time.Time) {
	if st.timer != nil || st.closed || len(st.seen) == 0 {
		return
	}
	var next time.Time
	for _, k := range st.seen {
		if next.IsZero() || k.until.Before(next) {
			next = k.until
		}
	}
	st.timer = time.AfterFunc(max(next.Sub(now), st.window/10), st.sweep)
}

// sweep writes the summaries of streaks whose window is over, and forgets
// those streaks.
func (st *summaryState) sweep() { st.flush(false) }

// Close writes every pending summary and stops the timer. Later records
// are written as they come. It is idempotent.
func (s *Summarizer) Close() {
	s.st.mu.Lock()
	s.st.closed = true
	s.st.mu.Unlock()
	s.st.flush(true)
}

func (st *summaryState) flush(all bool) {
	st.mu.Lock()
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	now := time.Now()
	var out []*summary
	for key, k := range st.seen {
		if !all && now.Before(k.until) {
			continue
		}
		if k.suppressed > 0 {
			out = append(out, k.summary(now))
		}
		delete(st.seen, key)
	}
	st.arm(now)
	st.mu.Unlock()
	for _, p := range out {
		p.write()
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
	natssource "github.com/switchyard-dev/switchyard/sources/nats"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// cmdRoute is a dry run: for each event (one JSON object per line; blank
// lines are skipped) it prints the rules it matches, their targets and the
// rendered payloads. It calls nothing. Exit 0 when every line was an event,
// 1 when some were not.
func cmdRoute(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "route")
	file := fs.String("c", "", configFlagUsage)
	asJSON := fs.Bool("json", false, "print one JSON object per event instead of text")
	source := fs.String("source", "", "route each line as if this source received it: decoded as it decodes what it receives, and with rules' source lists applied (default: each line is an event as it is, and rules' source lists are ignored)")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) > 1 {
		return exitUsage, fmt.Errorf("%w: one events file at most, got %d", errUsage, len(pos))
	}
	cfg, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	decode, deadLetter := asEvents(now), ""
	if *source != "" {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == *source })
		if i < 0 {
			return exitUsage, fmt.Errorf("%w: --source %q is not a source of %s", errUsage, *source, cfg.File)
		}
		decode = sourceDecoder(cfg, cfg.Sources[i], now)
		if dl, ok := cfg.Sources[i].Config.(interface{ DeadLetterTarget() string }); ok {
			deadLetter = dl.DeadLetterTarget()
		}
	} else {
		fmt.Fprintln(e.stderr, "switchyard route: without --source each line is taken as an event as it is, and matched against every rule whatever its sources; with --source NAME each line is decoded as that source decodes what it receives (its envelope: SNS unwrapped, other bodies wrapped) and rules' source lists apply")
	}
	table, err := router.NewTable(cfg.RouterRules())
	if err != nil {
		return exitFail, err
	}
	in := e.stdin
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return exitUsage, err
		}
		defer f.Close()
		in = f
	}

	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // payloads as rendered, byte for byte
	r := bufio.NewReader(in)
	bad := 0
	var matched []int
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return exitFail, err
		}
		line, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return exitUsage, readErr
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			for _, res := range routeLine(table, decode, line, lineNo, fmt.Sprintf("line-%d", lineNo), *source, deadLetter, matched[:0]) {
				if res.Error != "" {
					bad++
				}
				if *asJSON {
					if err := enc.Encode(res); err != nil {
						bad++
						enc.Encode(routeResult{Line: lineNo, Error: "cannot write the result: " + err.Error(), Matches: []routeMatch{}})
					}
				} else {
					res.writeText(out)
				}
			}
		}
		if readErr != nil {
			break
		}
	}
	if bad > 0 {
		out.Flush()
		fmt.Fprintf(e.stderr, "switchyard route: %d line(s) could not be routed (see their errors)\n", bad)
		return exitFail, nil
	}
	return exitOK, nil
}

// routeResult is one event's dry run; its JSON form is route --json's output.
type routeResult struct {
	Line int `json:"line"`
	// Index is the event's place in an array of events (an http source's
	// POST body), nil for a line of one event.
	Index      *int   `json:"index,omitempty"`
	ID         string `json:"id,omitempty"`
	Source     string `json:"source,omitempty"`
	DetailType string `json:"detail_type,omitempty"`
	Error      string `json:"error,omitempty"`
	// Note says how the line became the event when that is worth knowing:
	// wrapped although it does not fit the envelope, or not an EventBridge
	// event when no --source decodes it.
	Note string `json:"note,omitempty"`
	// DeadLetter is the target a malformed line goes to instead of being
	// routed (the source's malformed: dead_letter).
	DeadLetter string       `json:"dead_letter,omitempty"`
	Matches    []routeMatch `json:"matches"`
}

type routeMatch struct {
	Rule    string          `json:"rule"`
	Targets []string        `json:"targets"`
	Payload json.RawMessage `json:"payload"`
	// Text is true when the rule's template is not JSON: Payload is then a
	// JSON string holding the text payload.
	Text bool `json:"text,omitempty"`
	// Whole is true when the payload is the whole event (the rule has no input).
	Whole bool `json:"whole_event,omitempty"`
}

// lineDecoder turns a line into what a source would hand the router for
// it: its messages, and for each the misfit with the source's envelope
// (wrapped or dead-lettered as the source's malformed says), or an error
// when the source would refuse the line (an http source's 400).
// id is the message id a wrapped event gets (line-N in route).
type lineDecoder func(line []byte, id string) ([]*router.Message, []error, error)

// asEvents takes a line as an event as it is, as no source decodes it;
// an event without a time gets clock's.
func asEvents(clock func() time.Time) lineDecoder {
	return func(line []byte, _ string) ([]*router.Message, []error, error) {
		ev, err := router.ParseEvent(line, clock())
		if err != nil {
			return nil, nil, err
		}
		return []*router.Message{{Event: ev}}, []error{nil}, nil
	}
}

// sourceDecoder decodes a line with the decoding of the source src, as
// its package does for what it receives: the line is an SQS message's
// body, a NATS message's payload, an http source's POST body; an ecs
// source makes its events itself, so a line is one as it is. A wrapped
// event's id is the id given (its message id; ID.I for the I-th event of
// an array posted to an http source). Wrapped events are received at clock's
// time.
func sourceDecoder(cfg *config.Config, src config.Source, clock func() time.Time) lineDecoder {
	one := func(m *router.Message, misfit error) ([]*router.Message, []error, error) {
		return []*router.Message{m}, []error{misfit}, nil
	}
	switch c := src.Config.(type) {
	case *sqssource.Config:
		queue := sqssource.QueueOf(c.QueueURL, cfg.AWS.Region)
		return func(line []byte, id string) ([]*router.Message, []error, error) {
			return one(sqssource.Decode(src.Name, *c, queue, sqstypes.Message{MessageId: &id, Body: aws.String(string(line))}, clock(), nil))
		}
	case *natssource.Config:
		return func(line []byte, id string) ([]*router.Message, []error, error) {
			return one(natssource.Decode(src.Name, *c, c.Subject, line, id, clock()))
		}
	case *httpsource.Config:
		return func(line []byte, id string) ([]*router.Message, []error, error) {
			// An array's events are ID.0, ID.1, ...
			k, array := 0, line[0] == '['
			ids := func() string {
				k++
				if array {
					return fmt.Sprintf("%s.%d", id, k-1)
				}
				return id
			}
			msgs, err := httpsource.Decode(src.Name, *c, line, clock(), router.TraceContext{}, ids)
			if err != nil {
				return nil, nil, fmt.Errorf("the POST would be answered 400: %w", err)
			}
			return msgs, make([]error, len(msgs)), nil
		}
	}
	return asEvents(clock)
}

// routeLine routes what a line decodes to: one result per event.
// A malformed message goes to deadLetter, the source's dead-letter target.
func routeLine(table *router.Table, decode lineDecoder, line []byte, lineNo int, id, source, deadLetter string, matched []int) []routeResult {
	msgs, misfits, err := decode(line, id)
	if err != nil {
		return []routeResult{{Line: lineNo, Error: err.Error(), Matches: []routeMatch{}}}
	}
	out := make([]routeResult, len(msgs))
	for i, m := range msgs {
		res := &out[i]
		res.Line, res.Matches = lineNo, []routeMatch{}
		if len(msgs) > 1 {
			res.Index = &i
		}
		ev := m.Event
		res.ID, res.Source, res.DetailType = ev.ID, ev.Source, ev.DetailType
		switch {
		case m.Malformed != nil:
			res.Note = "does not fit the envelope: " + m.Malformed.Error()
			res.DeadLetter = deadLetter
			continue
		case misfits[i] != nil:
			res.Note = "wrapped as it is (malformed: wrap), since it does not fit the envelope: " + misfits[i].Error()
		case source == "":
			if _, err := router.Decode(router.EnvelopeEventBridge, line, router.Origin{}, now()); err != nil {
				res.Note = "not an EventBridge event (source, detail-type and detail): a source would wrap it (envelope auto or raw) or refuse it (eventbridge); --source NAME decodes it as that source does"
			}
		}
		matched, err = table.Match(ev, source, matched[:0])
		if err != nil {
			res.Error = err.Error()
			continue
		}
		rules := table.Rules()
		for _, i := range matched {
			rule := rules[i]
			rm := routeMatch{Rule: rule.Name, Targets: rule.Targets}
			payload := table.Render(nil, i, ev)
			switch {
			case rule.Input == nil:
				rm.Whole = true
				rm.Payload = payload
			case rule.Input.Text():
				rm.Text = true
				rm.Payload, _ = json.Marshal(string(payload))
			default:
				rm.Payload = payload
			}
			res.Matches = append(res.Matches, rm)
		}
	}
	return out
}

func (res *routeResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "line %d", res.Line)
	if res.Index != nil {
		fmt.Fprintf(w, " [%d]", *res.Index)
	}
	var about []string
	if res.ID != "" {
		about = append(about, "id "+res.ID)
	}
	if res.Source != "" {
		about = append(about, "source "+res.Source)
	}
	if res.DetailType != "" {
		about = append(about, fmt.Sprintf("detail-type %q", res.DetailType))
	}
	if len(about) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(about, ", "))
	}
	fmt.Fprintln(w)
	if res.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", res.Note)
	}
	switch {
	case res.Error != "":
		fmt.Fprintf(w, "  invalid: %s\n", res.Error)
	case res.DeadLetter != "":
		fmt.Fprintf(w, "  not routed: dead-lettered to %s (malformed: dead_letter), then acked\n", res.DeadLetter)
	case len(res.Matches) == 0:
		fmt.Fprintln(w, "  no rule matched: the message would be acked")
	}
	for _, m := range res.Matches {
		fmt.Fprintf(w, "  rule %s → %s\n", m.Rule, strings.Join(m.Targets, ", "))
		switch {
		case m.Whole:
			fmt.Fprintln(w, "    payload: the whole event")
		case m.Text:
			var s string
			json.Unmarshal(m.Payload, &s)
			fmt.Fprintf(w, "    payload (text): %s\n", s)
		default:
			fmt.Fprintf(w, "    payload: %s\n", m.Payload)
		}
	}
}

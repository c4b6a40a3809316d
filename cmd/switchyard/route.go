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

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
)

// cmdRoute is a dry run: for each event (one JSON object per line; blank
// lines are skipped) it prints the rules it matches, their targets and the
// rendered payloads. It calls nothing. Exit 0 when every line was an event,
// 1 when some were not.
func cmdRoute(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "route")
	file := fs.String("c", "", configFlagUsage)
	asJSON := fs.Bool("json", false, "print one JSON object per event instead of text")
	source := fs.String("source", "", "route as if the events came from this source (default: ignore rules' source lists)")
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
	if *source != "" && !slices.ContainsFunc(cfg.Sources, func(s config.Source) bool { return s.Name == *source }) {
		return exitUsage, fmt.Errorf("%w: --source %q is not a source of %s", errUsage, *source, cfg.File)
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
			res := routeOne(table, line, *source, matched[:0])
			if res.Error != "" {
				bad++
			}
			res.Line = lineNo
			if *asJSON {
				if err := enc.Encode(res); err != nil {
					bad++
					enc.Encode(routeResult{Line: lineNo, Error: "cannot write the result: " + err.Error(), Matches: []routeMatch{}})
				}
			} else {
				res.writeText(out)
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
	Line       int          `json:"line"`
	ID         string       `json:"id,omitempty"`
	Source     string       `json:"source,omitempty"`
	DetailType string       `json:"detail_type,omitempty"`
	Error      string       `json:"error,omitempty"`
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

func routeOne(table *router.Table, line []byte, source string, matched []int) routeResult {
	res := routeResult{Matches: []routeMatch{}}
	ev, err := router.ParseEvent(line, now())
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ID, res.Source, res.DetailType = ev.ID, ev.Source, ev.DetailType
	matched, err = table.Match(ev, source, matched)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	rules := table.Rules()
	for _, i := range matched {
		rule := rules[i]
		m := routeMatch{Rule: rule.Name, Targets: rule.Targets}
		payload := table.Render(nil, i, ev)
		switch {
		case rule.Input == nil:
			m.Whole = true
			m.Payload = payload
		case rule.Input.Text():
			m.Text = true
			m.Payload, _ = json.Marshal(string(payload))
		default:
			m.Payload = payload
		}
		res.Matches = append(res.Matches, m)
	}
	return res
}

func (res *routeResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "line %d", res.Line)
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
	switch {
	case res.Error != "":
		fmt.Fprintf(w, "  invalid: %s\n", res.Error)
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

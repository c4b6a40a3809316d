package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// cmdTestPattern matches one event against one pattern, like EventBridge's
// TestEventPattern: prints true or false and exits 0 on a match, 1 on no
// match and 2 when the pattern or event is invalid.
func cmdTestPattern(_ context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "test-pattern")
	patternArg := fs.String("pattern", "", "the event pattern: JSON, @FILE, or - for stdin")
	eventArg := fs.String("event", "", "the event: JSON, @FILE, or - for stdin")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage, err
	}
	switch {
	case len(pos) > 0:
		return exitUsage, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	case *patternArg == "" || *eventArg == "":
		return exitUsage, fmt.Errorf("%w: both --pattern and --event are required", errUsage)
	case *patternArg == "-" && *eventArg == "-":
		return exitUsage, fmt.Errorf("%w: only one of --pattern and --event can read stdin", errUsage)
	}
	patternJSON, err := readArg(e, *patternArg)
	if err != nil {
		return exitUsage, fmt.Errorf("--pattern: %w", err)
	}
	eventJSON, err := readArg(e, *eventArg)
	if err != nil {
		return exitUsage, fmt.Errorf("--event: %w", err)
	}
	p, err := router.ParsePattern(patternJSON)
	if err != nil {
		return exitUsage, fmt.Errorf("invalid pattern: %w", err)
	}
	ev, err := router.ParseEvent(eventJSON, time.Time{})
	if err != nil {
		return exitUsage, fmt.Errorf("invalid event: %w", err)
	}
	ok, err := p.Match(ev.JSON)
	if err != nil {
		return exitUsage, fmt.Errorf("invalid event: %w", err)
	}
	fmt.Fprintln(e.stdout, ok)
	if !ok {
		return exitFail, nil
	}
	return exitOK, nil
}

// readArg returns an argument's JSON: inline, from @FILE, or from stdin (-).
func readArg(e *env, arg string) ([]byte, error) {
	switch {
	case arg == "-":
		return io.ReadAll(e.stdin)
	case strings.HasPrefix(arg, "@"):
		return os.ReadFile(arg[1:])
	}
	return []byte(arg), nil
}

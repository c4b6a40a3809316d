package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// version is stamped at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// now is the clock; tests replace it for stable output.
var now = time.Now

// Exit codes shared by the subcommands.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and the answer is no: invalid config, no match
	exitUsage = 2 // the command could not run: bad flags, unreadable input
)

// errUsage marks errors that are the caller's mistake; usage is printed.
var errUsage = errors.New("usage")

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) (int, error)
}

// env is what a subcommand may touch besides its arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// memoryLimit reports the container's memory limit, from which `run`
	// sets the Go runtime's; nil leaves the runtime's alone (tests run the
	// daemon in their own process).
	memoryLimit memlimit.Provider
}

var commands = []command{
	{"run", "[-c FILE] [-log-level LEVEL] [-log-format json|text]", "the daemon: consume, route and deliver until SIGINT or SIGTERM", cmdRun},
	{"validate", "-c FILE", "check a config file: prints ok, or every problem as file:line:col: message", cmdValidate},
	{"test-pattern", "--pattern JSON|@FILE --event JSON|@FILE", "match one event against one pattern, like EventBridge's TestEventPattern", cmdTestPattern},
	{"route", "-c FILE [--json] [--source NAME] [EVENTS.jsonl|-]", "dry run: the rules, targets and payloads for each event; calls nothing", cmdRoute},
	{"test", "[-c FILE] [--junit FILE] [--update] [-v] [TESTS...]", "run rule tests (FILE.test.yaml beside the config by default): fail when an event stops reaching a target or a payload changes; calls nothing", cmdTest},
	{"redrive", "-c FILE --from TARGET|QUEUE_URL [--to TARGET] [--pattern JSON] [--rate R] [--max N] [--dry-run]", "send dead letters back to the targets that failed them, each once, at a safe rate", cmdRedrive},
	{"iam-policy", "-c FILE", "print the least-privilege IAM policy the config needs, as JSON", cmdIAMPolicy},
	{"import", "(--cloudformation FILE | --rules FILE --targets DIR_OR_FILE) [--bus NAME] [-o FILE]", "turn EventBridge rules (a CloudFormation template, or aws events list-rules and list-targets-by-rule) into a config", cmdImport},
	{"health", "[-c FILE | --addr HOST:PORT] [--ready] [--timeout D]", "exit 0 when the daemon has started and works (/healthz; --ready: is ready, /readyz), else 1: for container health checks", cmdHealth},
	{"status", "[-c FILE | --addr HOST:PORT] [--watch] [--interval D]", "the daemon's per-source, per-rule and per-target figures, as tables", cmdStatus},
	{"reload", "[-c FILE | --addr HOST:PORT]", "reload the daemon's config, as SIGHUP does, and say whether it took", cmdReload},
	{"schema", "", "print the config file's JSON Schema (draft 2020-12), for editors", cmdSchema},
	{"version", "", "print the version", cmdVersion},
}

// run is the whole program behind main, callable from tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&env{stdin: stdin, stdout: stdout, stderr: stderr}).run(ctx, args)
}

func (e *env) run(ctx context.Context, args []string) int {
	stderr := e.stderr
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		// Asked for, help is the answer: on stdout, exit 0. help COMMAND
		// is COMMAND -h, on stdout too.
		if len(args) > 1 && slices.ContainsFunc(commands, func(c command) bool { return c.name == args[1] }) {
			he := *e
			he.stderr = e.stdout
			return he.run(ctx, []string{args[1], "-h"})
		}
		if len(args) > 1 {
			return e.run(ctx, args[1:]) // not a command: say so
		}
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		code, err := c.run(ctx, e, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		if err != nil && !errors.Is(err, errReported) {
			fmt.Fprintf(stderr, "switchyard %s: %v\n", c.name, err)
			if errors.Is(err, errUsage) {
				fmt.Fprintf(stderr, "usage: switchyard %s %s\n", c.name, c.args)
			}
		}
		return code
	}
	fmt.Fprintf(stderr, "switchyard: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchyard COMMAND [FLAGS]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run switchyard help COMMAND (or switchyard COMMAND -h) for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses flags that may come before or after positional arguments
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "-" || !strings.HasPrefix(args[0], "-") {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		// Parse stopped at an argument like a flag only after "--".
		return append(pos, args...), nil
	}
}

// parseFlags parses flags for a command that takes no positional
// arguments; one given is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	return err
}

func cmdVersion(_ context.Context, e *env, args []string) (int, error) {
	if err := parseFlags(newFlags(e, "version"), args); err != nil {
		return exitUsage, err
	}
	fmt.Fprintln(e.stdout, "switchyard", versionString())
	return exitOK, nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

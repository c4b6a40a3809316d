package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) {
	now = func() time.Time { return time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC) }
	// The daemon's goroutines must all end with it. The AWS SDK's HTTP
	// clients keep idle connections, whose goroutines belong to net/http.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// Daemons the tests run keep their state in a directory of each
		// test's own (withStore), never in ./data here: tests would share
		// their ledgers, and the repository would gain it.
		goleak.Cleanup(func(code int) {
			if _, err := os.Stat("data"); err == nil {
				fmt.Fprintln(os.Stderr, "a test ran a daemon on the default nats.store_dir: ./data was created in cmd/switchyard (give its config withStore)")
				os.RemoveAll("data")
				code = 1
			}
			os.Exit(code)
		}))
}

// cli runs the program as main would, with stdin given.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

func TestUsage(t *testing.T) {
	code, _, stderr := cli(t, "")
	if code != exitUsage || !strings.Contains(stderr, "usage: switchyard COMMAND") {
		t.Errorf("no arguments: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "", "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
	// Help asked for is the answer: on stdout, exit 0.
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		if code, stdout, stderr := cli(t, "", args...); code != exitOK || !strings.Contains(stdout, "usage: switchyard COMMAND") || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	if code, stdout, stderr := cli(t, "", "help", "route"); code != exitOK || !strings.Contains(stdout, "-source") || stderr != "" {
		t.Errorf("help route: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := cli(t, "", "help", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := cli(t, "", "route", "-h"); code != exitOK {
		t.Errorf("route -h: exit %d", code)
	}
	code, _, stderr = cli(t, "", "validate", "--bogus")
	if code != exitUsage || !strings.Contains(stderr, "flag provided but not defined: -bogus") || !strings.Contains(stderr, "usage: switchyard validate") {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := cli(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "switchyard ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := cli(t, "", "version", "extra"); code != exitUsage || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q", code, stderr)
	}
	for _, flag := range []string{"--version", "-version"} {
		if code, got, stderr := cli(t, "", flag); code != exitOK || got != stdout || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q (version prints %q), stderr %q", flag, code, got, stdout, stderr)
		}
	}
}

// status --watch on a pipe (here a buffer) prints plain snapshots, with no
// terminal escapes, a blank line between them.
func TestStatus_WatchOnAPipePrintsPlainSnapshots(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 2 {
			cancel() // two snapshots are enough
			http.Error(w, "done", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(telemetry.Status{Version: "v1", Ready: true, Started: time.Now(), MaxInFlight: 10})
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"status", "--watch", "--interval", "1ms", "--addr", strings.TrimPrefix(srv.URL, "http://")}, strings.NewReader(""), &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("terminal escapes written to a pipe: %q", out.String())
	}
	if n := strings.Count(out.String(), "switchyard v1, up"); n != 2 || !strings.Contains(out.String(), "\n\nswitchyard v1, up") {
		t.Errorf("%d snapshots, want 2 separated by a blank line:\n%s", n, out.String())
	}
}

func TestValidate(t *testing.T) {
	code, stdout, stderr := cli(t, "", "validate", "-c", "../../examples/switchyard.yaml")
	if code != exitOK || stdout != "ok\n" || stderr != "" {
		t.Errorf("valid config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A config with no backlog is valid, and validate says what that means.
	code, stdout, stderr = cli(t, "", "validate", "-c", "../../examples/fanout.yaml")
	if code != exitOK || stdout != "ok\n" || !strings.HasPrefix(stderr, "note: no target has a backlog: ") {
		t.Errorf("config without a backlog: exit %d, stdout %q, stderr %q; want ok and a note", code, stdout, stderr)
	}

	code, stdout, stderr = cli(t, "", "validate", "-c", "../../internal/config/testdata/many-mistakes.yaml")
	if code != exitFail || stdout != "" {
		t.Errorf("invalid config: exit %d, stdout %q", code, stdout)
	}
	want, _ := os.ReadFile("../../internal/config/testdata/many-mistakes.golden")
	if stderr != strings.ReplaceAll(string(want), "testdata/", "../../internal/config/testdata/") {
		t.Errorf("invalid config: stderr is not every error, one per line:\n%s", stderr)
	}

	code, _, stderr = cli(t, "", "validate", "-c", "no-such-file.yaml")
	if code != exitFail || !strings.Contains(stderr, "no-such-file.yaml: no such file or directory") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}

	t.Setenv("SWITCHYARD_CONFIG", "../../examples/switchyard.yaml")
	if code, stdout, _ := cli(t, "", "validate"); code != exitOK || stdout != "ok\n" {
		t.Errorf("$SWITCHYARD_CONFIG: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := cli(t, "", "validate", "extra"); code != exitUsage || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("extra argument: exit %d, stderr %q", code, stderr)
	}
}

func TestTestPattern(t *testing.T) {
	dir := t.TempDir()
	patternFile := filepath.Join(dir, "p.json")
	os.WriteFile(patternFile, []byte(`{"detail":{"size":[{"numeric":[">",1000]}]}}`), 0o644)
	eventFile := filepath.Join(dir, "e.json")
	os.WriteFile(eventFile, []byte(`{"detail":{"size":2048}}`), 0o644)

	for _, tc := range []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"match", "", []string{"--pattern", `{"a":["x"]}`, "--event", `{"a":"x"}`}, 0, "true\n", ""},
		{"no match", "", []string{"--pattern", `{"a":["x"]}`, "--event", `{"a":"y"}`}, 1, "false\n", ""},
		{"files", "", []string{"--pattern", "@" + patternFile, "--event", "@" + eventFile}, 0, "true\n", ""},
		{"event from stdin", `{"detail":{"size":10}}`, []string{"--pattern", "@" + patternFile, "--event", "-"}, 1, "false\n", ""},
		{"single dash flags", "", []string{"-pattern", `{"a":[1]}`, "-event", `{"a":1.0}`}, 0, "true\n", ""},
		{"invalid pattern", "", []string{"--pattern", `{"a":"x"}`, "--event", `{}`}, 2, "", "switchyard test-pattern: invalid pattern: a: must be a list of values"},
		{"malformed pattern", "", []string{"--pattern", `{"a":["x"]`, "--event", `{}`}, 2, "", "invalid pattern: invalid JSON at offset 10"},
		{"invalid event", "", []string{"--pattern", `{"a":["x"]}`, "--event", `[1]`}, 2, "", "invalid event: an event must be a JSON object"},
		{"malformed event", "", []string{"--pattern", `{"a":["x"]}`, "--event", `{"a":`}, 2, "", "invalid event: invalid JSON"},
		{"missing file", "", []string{"--pattern", "@" + filepath.Join(dir, "nope.json"), "--event", `{}`}, 2, "", "--pattern: open"},
		{"missing event", "", []string{"--pattern", `{"a":["x"]}`}, 2, "", "both --pattern and --event are required"},
		{"both from stdin", "", []string{"--pattern", "-", "--event", "-"}, 2, "", "only one of --pattern and --event can read stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.stdin, append([]string{"test-pattern"}, tc.args...)...)
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) || (tc.stderr == "") != (stderr == "") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	cfg := "../../examples/switchyard.yaml"
	events := "../../examples/events.jsonl"

	code, stdout, stderr := cli(t, "", "route", "-c", cfg, events)
	if code != exitOK || !strings.HasPrefix(stderr, "switchyard route: without --source each line is taken as an event as it is") {
		t.Fatalf("route: exit %d, stderr %q", code, stderr)
	}
	golden(t, "route.txt", stdout)

	code, stdout, _ = cli(t, "", "route", "-c", cfg, "--json", events)
	if code != exitOK {
		t.Fatalf("route --json: exit %d", code)
	}
	golden(t, "route.jsonl", stdout)
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r routeResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("route --json line is not JSON: %v\n%s", err, line)
		}
	}

	// Flags after the file, and stdin.
	data, _ := os.ReadFile(events)
	code, stdin, _ := cli(t, string(data), "route", "-c", cfg, "-", "--json")
	if code != exitOK || stdin != stdout {
		t.Errorf("route from stdin differs from route of the file (exit %d)", code)
	}

	// As if from one source: rules restricted to others do not match.
	code, stdout, _ = cli(t, "", "route", "-c", cfg, "--source", "app", events)
	if code != exitOK {
		t.Fatalf("route --source: exit %d", code)
	}
	golden(t, "route-source-app.txt", stdout)
}

// With --source, a line goes through the source's own decoding, as what it
// receives does in run: its envelope (EventBridge events as they are, SNS
// notifications unwrapped, anything else wrapped in an event of its
// detail-type), what it does with a body that does not fit (wrapped,
// dead-lettered, or an http source's 400), an http source's arrays.
func TestRoute_DecodesAsTheSource(t *testing.T) {
	cfg := "testdata/route-sources.yaml"
	sns := func(message string) string {
		b, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:orders",
			"Message": message, "Timestamp": "2026-11-20T11:00:00Z"})
		return string(b)
	}
	order := `{"version":"0","id":"o-1","detail-type":"Order Placed","source":"shop","account":"123456789012","time":"2026-11-20T10:00:00Z","region":"eu-west-1","resources":[],"detail":{"total":12}}`
	lines := strings.Join([]string{
		order,
		`{"action": "closed"}`,
		`plain text`,
		sns(`{"action": "opened"}`),
		sns(order),
		`[` + order + `, {"action": "closed"}]`,
	}, "\n") + "\n"
	var all strings.Builder
	for _, src := range []string{"jobs", "strict", "lenient", "raw", "bus", "ingest", "strict-ingest", "tasks"} {
		code, stdout, stderr := cli(t, lines, "route", "-c", cfg, "--source", src, "-")
		fmt.Fprintf(&all, "== --source %s: exit %d\n%s", src, code, stdout)
		if stderr != "" {
			fmt.Fprintf(&all, "(stderr) %s", stderr)
		}
	}
	golden(t, "route-sources.txt", all.String())

	// The README's step 1: plain JSON posted to the quickstart's ingest is
	// wrapped, so its webhooks rule delivers it.
	code, stdout, _ := cli(t, `{"action": "closed"}`, "route", "-c", "../../examples/quickstart.yaml", "--source", "ingest", "--json", "-")
	var res routeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if res.DetailType != "HTTP Event" || res.Source != "ingest" || len(res.Matches) != 2 || res.Matches[0].Rule != "webhooks" {
		t.Errorf("plain JSON to ingest: %+v, want it wrapped and matched by webhooks", res)
	}

	// Without --source, lines are events as they are: said on stderr, and
	// on a line that is not an EventBridge event.
	code, stdout, stderr := cli(t, `{"action": "closed"}`, "route", "-c", "../../examples/quickstart.yaml", "-")
	if code != exitOK || !strings.Contains(stderr, "without --source each line is taken as an event as it is") ||
		!strings.Contains(stdout, "note: not an EventBridge event") || !strings.Contains(stdout, "--source NAME decodes it") {
		t.Errorf("without --source: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestRoute_BadInput(t *testing.T) {
	cfg := "../../examples/switchyard.yaml"
	in := `{"source":"com.example.shop","detail-type":"Cart Abandoned","detail":{}}

not json
["an array"]
{"source":"com.example.shop"} trailing
`
	code, stdout, stderr := cli(t, in, "route", "-c", cfg, "-")
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stderr, "3 line(s) could not be routed") {
		t.Errorf("stderr %q does not count the bad lines", stderr)
	}
	golden(t, "route-bad-input.txt", stdout)

	if code, _, stderr := cli(t, "", "route", "-c", cfg, "--source", "nope", "-"); code != exitUsage || !strings.Contains(stderr, `--source "nope" is not a source`) {
		t.Errorf("unknown source: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, "", "route", "-c", cfg, "a.jsonl", "b.jsonl"); code != exitUsage || !strings.Contains(stderr, "one events file at most") {
		t.Errorf("two files: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, "", "route", "-c", "../../internal/config/testdata/types.yaml", "-"); code != exitFail || !strings.Contains(stderr, "types.yaml:1:10: version") {
		t.Errorf("invalid config: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := cli(t, "", "route", "-c", cfg, "no-such-events.jsonl"); code != exitUsage {
		t.Errorf("missing events file: exit %d", code)
	}
}

func TestAWSHTTPClient_KeepsAnIdleConnectionPerMessageInFlight(t *testing.T) {
	tr := awsHTTPClient(1000).GetTransport()
	if tr.MaxIdleConnsPerHost != 1000 || tr.MaxIdleConns != 0 {
		t.Errorf("MaxIdleConnsPerHost %d, MaxIdleConns %d; want 1000 and 0 (no limit over all hosts)", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	if tr := awsHTTPClient(1).GetTransport(); tr.MaxIdleConnsPerHost != 10 {
		t.Errorf("max_in_flight 1: MaxIdleConnsPerHost %d, want the SDK's 10", tr.MaxIdleConnsPerHost)
	}
}

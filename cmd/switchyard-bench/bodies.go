package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/size"
)

// cmdBodies measures memory under large HTTP bodies: it runs switchyard
// with an http source (max_body 64MiB, or -max-body) and one rule sending every event to
// a target, posts -n events of -size bytes at once, as a caller that
// retries 429 and 503 after Retry-After (EventBridge does), and samples the
// process's resident memory until -after past the last answer.
//
//	go run ./cmd/switchyard-bench bodies -n 4 -size 60MB -target log -after 150s
func cmdBodies(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard-bench bodies", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 4, "events posted at once, each in its own request")
	var bodySize size.Bytes = 60_000_000
	fs.Func("size", "bytes of each request body (default 60000000; 60MiB is 62914560)", func(v string) error { return bodySize.UnmarshalText([]byte(v)) })
	target := fs.String("target", "log", "where the events go: log (the log target, standard output to a file) or http (a server that reads and drops them)")
	after := fs.Duration("after", 30*time.Second, "how long to keep sampling after the last answer")
	maxBody := fs.String("max-body", "64MiB", "the http source's max_body")
	extra := fs.String("config", "", "YAML lines added to the config's top level, such as \"max_in_flight_bytes: 256MiB\"")
	bin := fs.String("bin", "", "`directory` holding a prebuilt switchyard binary (default: build it)")
	memLimit := fs.String("gomemlimit", "", "GOMEMLIMIT for switchyard, as 90% of a container's memory limit sets it")
	keep := fs.Bool("keep", false, "keep the run's directory (config, switchyard's output) and print its path")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || bodySize < 200 || (*target != "log" && *target != "http") {
		fmt.Fprintln(stderr, "switchyard-bench bodies: -n must be positive, -size at least 200 bytes, -target log or http")
		return 2
	}
	if err := bodies(ctx, bodiesOptions{n: *n, size: int(bodySize), target: *target, after: *after, extra: *extra, bin: *bin, memLimit: *memLimit, keep: *keep, maxBody: *maxBody}, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "switchyard-bench bodies:", err)
		return 1
	}
	return 0
}

type bodiesOptions struct {
	n, size       int
	target, extra string
	maxBody       string // default 64MiB
	after         time.Duration
	bin, memLimit string
	keep          bool
	devBuild      bool // build switchyard as go build does by default (tests)
}

// answer is how one event's request ended.
type answer struct {
	status int
	tries  int           // requests sent, 429s and 503s included
	at     time.Duration // since the first request
}

func bodies(ctx context.Context, o bodiesOptions, stdout, stderr io.Writer) error {
	_, err := measureBodies(ctx, o, stdout, stderr)
	return err
}

// bodiesResult is what a bodies run measured.
type bodiesResult struct {
	answers    []answer
	idle, peak mem
}

func measureBodies(ctx context.Context, o bodiesOptions, stdout, stderr io.Writer) (bodiesResult, error) {
	var res bodiesResult
	if runtime.GOOS != "linux" {
		return res, errors.New("the harness reads memory from /proc: linux only")
	}
	dir, err := os.MkdirTemp("", "switchyard-bench-bodies")
	if err != nil {
		return res, err
	}
	if o.keep {
		fmt.Fprintln(stderr, "switchyard-bench bodies: run directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.bin
	if bin == "" {
		if err := build(ctx, dir, o.devBuild); err != nil {
			return res, err
		}
		bin = dir
	}
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer drop.Close()
	listen, err := freePort()
	if err != nil {
		return res, err
	}
	admin, err := freePort()
	if err != nil {
		return res, err
	}
	targets := "  - {name: out, type: log}\n"
	if o.target == "http" {
		targets = fmt.Sprintf("  - {name: out, type: http, url: %q}\n", drop.URL)
	}
	config := fmt.Sprintf(`version: 1
admin: {listen: %q}
nats: {store_dir: %q, listen: none}
%s
sources:
  - {name: ingest, type: http, listen: %q, max_body: %s, response_timeout: 60s}
targets:
%spolicies:
  default: {timeout: 60s}
rules:
  - {name: all, pattern: {source: [{prefix: ""}]}, targets: [out]}
`, admin, filepath.Join(dir, "nats"), o.extra, listen, cmp.Or(o.maxBody, "64MiB"), targets)
	file := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return res, err
	}
	env := os.Environ()
	if o.memLimit != "" {
		env = append(env, "GOMEMLIMIT="+o.memLimit)
	}
	p, err := startProc("switchyard", dir, filepath.Join(bin, "switchyard"), []string{"run", "-c", file, "-log-level", "warn"}, env)
	if err != nil {
		return res, err
	}
	defer p.stop(30 * time.Second)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = waitReady(rctx, p, admin)
	cancel()
	if err != nil {
		return res, err
	}
	idle := p.mem()
	samples := sampleRSS(p, 10*time.Millisecond)
	start := time.Now()

	answers := make([]answer, o.n)
	var wg sync.WaitGroup
	for i := range o.n {
		wg.Go(func() { answers[i] = postBody(ctx, "http://"+listen+"/events", event(i, o.size), start) })
	}
	wg.Wait()
	last := time.Since(start)
	select {
	case <-time.After(o.after):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	ss := samples.stop()
	hwm := procStatusKB(p, "VmHWM")

	fmt.Fprintf(stdout, "%d events of %d bytes, posted at once, to a %s target%s\n", o.n, o.size, o.target, configNote(o))
	var statuses []string
	tries := 0
	for _, a := range answers {
		statuses = append(statuses, fmt.Sprintf("%d after %.1fs", a.status, a.at.Seconds()))
		tries += a.tries
	}
	fmt.Fprintf(stdout, "answers: %s (%d requests, 429s and 503s retried after Retry-After)\n", strings.Join(statuses, ", "), tries)
	top := peak(ss, 0, time.Hour)
	fmt.Fprintf(stdout, "resident memory, MB: idle %.0f (anon %.0f); peak VmRSS %.0f, RssAnon %.0f; VmHWM %.0f\n", mb(idle.rss), mb(idle.anon), mb(top.rss), mb(top.anon), float64(hwm)/1024)
	fmt.Fprintf(stdout, "after the last answer:")
	for _, mark := range []time.Duration{0, 5 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 150 * time.Second, 3 * time.Minute, 4 * time.Minute} {
		if mark > o.after {
			break
		}
		at := last + mark
		i := slices.IndexFunc(ss, func(s rssSample) bool { return s.at >= at })
		if i < 0 {
			i = len(ss) - 1
		}
		fmt.Fprintf(stdout, " +%v %.0f (anon %.0f);", mark, mb(ss[i].rss), mb(ss[i].anon))
	}
	if end := ss[len(ss)-1]; end.at > last {
		fmt.Fprintf(stdout, " last sample +%v %.0f (anon %.0f)", (end.at - last).Round(time.Second), mb(end.rss), mb(end.anon))
	}
	fmt.Fprintln(stdout)
	res.answers, res.idle, res.peak = answers, idle, top
	return res, nil
}

func configNote(o bodiesOptions) string {
	var s string
	if o.extra != "" {
		s += "; " + o.extra
	}
	if o.memLimit != "" {
		s += "; GOMEMLIMIT=" + o.memLimit
	}
	return s
}

// event is an EventBridge event of exactly n bytes.
func event(i, n int) []byte {
	head := fmt.Sprintf(`{"version":"0","id":"big-%d","detail-type":"Blob","source":"bench","account":"1","time":"2026-11-22T10:00:00Z","region":"r","resources":[],"detail":{"data":"`, i)
	tail := `"}}`
	b := make([]byte, 0, n)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte{'x'}, max(0, n-len(head)-len(tail)))...)
	return append(b, tail...)
}

// postBody posts body until it is answered neither 429 nor 503, waiting
// Retry-After between tries, for up to five minutes.
func postBody(ctx context.Context, url string, body []byte, start time.Time) answer {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var a answer
	for {
		a.tries++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return a
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		wait := time.Second
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			a.status, a.at = resp.StatusCode, time.Since(start)
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				return a
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return a
		}
	}
}

// procStatusKB reads one kB figure of /proc/<pid>/status.
func procStatusKB(p *proc, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

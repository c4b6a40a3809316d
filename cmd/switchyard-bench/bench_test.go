package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ceilingEnv makes the test binary the ceiling program when the harness
// starts it as one (the harness runs `self ceiling ...`).
const ceilingEnv = "SWITCHYARD_BENCH_TEST_CEILING"

func TestMain(m *testing.M) {
	if os.Getenv(ceilingEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "ceiling" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cmdCeiling(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestHarness_SmokeRunDrainsTheQueue runs the harness briefly, as CI does:
// every run completes and drains its queue. It asserts no speed.
func TestHarness_SmokeRunDrainsTheQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds switchyard and awstestd and runs them")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Setenv(ceilingEnv, "1")
	var stderr strings.Builder
	o, err := parseOptions([]string{"-scenarios", "lambda,outage,idle", "-n", "200", "-runs", "1", "-rate", "200", "-duration", "1500ms", "-timeout", "60s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.self, o.devBuild = os.Args[0], true
	start := time.Now()
	all, err := bench(t.Context(), o, io.Discard, &stderr)
	t.Logf("harness (%v):\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	var runs int
	for _, rs := range all {
		for _, r := range rs {
			runs++
			if r.scenario == "idle" {
				if r.idleMem.rss <= 0 || r.idleMem.anon <= 0 || r.idleMem.anon > r.idleMem.rss || r.ready <= 0 {
					t.Errorf("idle run: rss %d (anon %d), ready %v", r.idleMem.rss, r.idleMem.anon, r.ready)
				}
				continue
			}
			if r.events <= 0 || r.elapsed <= 0 || r.calls < int64(r.events) {
				t.Errorf("%s %s: %d events in %v, %d calls; want every event called", r.scenario, r.program, r.events, r.elapsed, r.calls)
			}
			if r.latency.Count < r.events {
				t.Errorf("%s %s: %d latency samples for %d events", r.scenario, r.program, r.latency.Count, r.events)
			}
		}
	}
	if runs != 4 { // lambda: ceiling and switchyard; outage and idle: switchyard
		t.Errorf("%d runs, want 4", runs)
	}
}

// TestBodies_SmokeRun runs the bodies measurement briefly: every event is
// answered 200 in the end (any 429 retried), and memory is sampled. It
// asserts no figure.
func TestBodies_SmokeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds switchyard and runs it")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	o := bodiesOptions{n: 3, size: 700 << 10, target: "http", extra: "max_in_flight_bytes: 1MiB", maxBody: "1MiB", devBuild: true}
	var out strings.Builder
	r, err := measureBodies(t.Context(), o, &out, io.Discard)
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range r.answers {
		if a.status != 200 {
			t.Errorf("event %d answered %d", i, a.status)
		}
	}
	if r.peak.rss < r.idle.rss || r.peak.anon <= 0 {
		t.Errorf("memory: idle %+v, peak %+v", r.idle, r.peak)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/metricstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// adminAddr waits for the daemon to log where its admin endpoint listens.
func adminAddr(t *testing.T, logs *syncbuf.Buffer) string {
	t.Helper()
	var addr string
	waitFor(t, "the admin endpoint", func() bool {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "admin endpoint listening" {
				addr = l.Addr
				return true
			}
		}
		return false
	})
	return addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape returns the samples of /metrics by name and labels, as
// `name{a="x",b="y"}` (labels sorted), histograms as their _count.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	m, err := metricstest.Scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRun_MetricsAfterARun(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "thumb"})
	srv.Lambda().Register(awstest.Function{Name: "flaky"})
	// flaky fails its first call with a 500, then works: one retry.
	srv.InjectFault(awstest.FaultRule{Op: "lambda:Invoke", Resource: "flaky", Times: 1, Fault: awstest.InternalError("ServiceException")})
	d := startDaemon(t, srv, baseConfig+`
targets:
  - {name: thumbs, type: lambda, function: thumb}
  - {name: flaky, type: lambda, function: flaky, policy: quick}
  - {name: missing, type: lambda, function: not-there, policy: quick}
  - {name: letters, type: log}
policies:
  quick: {retry: {attempts: 3, initial: 1ms, max: 5ms}, dead_letter: letters}
rules:
  - {name: images, pattern: {detail: {object: {key: [{suffix: .png}]}}}, targets: [thumbs]}
  - {name: first, pattern: {detail: {object: {key: [img/0.png]}}}, targets: [flaky, missing]}
`)
	addr := adminAddr(t, d.stderr)
	for i := range 10 {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(fmt.Sprintf("e-%d", i), fmt.Sprintf("img/%d.png", i), i)})
	}
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-x", "docs/a.pdf", 1)})
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))

	var m map[string]float64
	want := map[string]float64{
		`switchyard_source_received_messages_total{source="jobs"}`:                               11,
		`switchyard_source_acked_messages_total{source="jobs"}`:                                  11,
		`switchyard_source_unmatched_messages_total{source="jobs"}`:                              1,
		`switchyard_source_nacked_messages_total{source="jobs"}`:                                 0,
		`switchyard_rule_matched_events_total{rule="images"}`:                                    10,
		`switchyard_rule_matched_events_total{rule="first"}`:                                     1,
		`switchyard_target_attempts_total{target="thumbs"}`:                                      10,
		`switchyard_target_deliveries_total{outcome="delivered",target="thumbs"}`:                10,
		`switchyard_target_attempts_total{target="flaky"}`:                                       2,
		`switchyard_target_retries_total{target="flaky"}`:                                        1,
		`switchyard_target_deliveries_total{outcome="delivered",target="flaky"}`:                 1,
		`switchyard_target_attempts_total{target="missing"}`:                                     1,
		`switchyard_target_deliveries_total{outcome="dead_lettered",target="missing"}`:           1,
		`switchyard_target_deliveries_total{outcome="delivered",target="letters"}`:               1,
		`switchyard_target_attempt_duration_seconds{outcome="ok",target="thumbs"}_count`:         10,
		`switchyard_target_attempt_duration_seconds{outcome="retryable",target="flaky"}_count`:   1,
		`switchyard_target_attempt_duration_seconds{outcome="permanent",target="missing"}_count`: 1,
		`switchyard_delivery_latency_seconds{target="thumbs"}_count`:                             10,
		`switchyard_target_breaker_state{target="thumbs"}`:                                       0,
		`switchyard_target_in_flight{target="thumbs"}`:                                           0,
		`switchyard_target_concurrency_limit{target="thumbs"}`:                                   64,
		`switchyard_messages_in_flight`:                                                          0,
		`switchyard_max_in_flight`:                                                               1000,
		`switchyard_bytes_in_flight`:                                                             0,
		`switchyard_max_in_flight_bytes`:                                                         64 << 20,
		`switchyard_ready`:                                                                       1,
	}
	// Counters settle just after the queue drains (the ack is the last step).
	waitFor(t, "the counters", func() bool {
		m = scrape(t, addr)
		return m[`switchyard_source_acked_messages_total{source="jobs"}`] == 11
	})
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m[`process_resident_memory_bytes`] == 0 || m[`go_goroutines`] == 0 {
		t.Error("process and Go runtime metrics are missing")
	}
	for k := range m {
		if strings.HasPrefix(k, "switchyard_build_info{") && !strings.Contains(k, `version="`) {
			t.Errorf("build info without a version: %s", k)
		}
	}

	// /status carries the same figures, and the last error of a target.
	code, body := get(t, "http://"+addr+"/status")
	var st telemetry.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	byName := map[string]telemetry.TargetStatus{}
	for _, ts := range st.Targets {
		byName[ts.Name] = ts
	}
	if !st.Ready || len(st.Sources) != 1 || st.Sources[0].Received != 11 || len(st.Rules) != 2 || byName["thumbs"].Delivered != 10 || byName["thumbs"].Breaker != "closed" {
		t.Errorf("/status = %+v", st)
	}
	if le := byName["missing"].LastError; le == nil || !strings.Contains(le.Error, "ResourceNotFound") {
		t.Errorf("missing target's last error = %+v, want the Lambda's ResourceNotFoundException", le)
	}

	// switchyard status renders it as a table.
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"status", "--addr", addr}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	for _, s := range []string{"SOURCE", "jobs", "RULE", "images", "TARGET", "thumbs", "closed", "Function not found"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("status output lacks %q:\n%s", s, out.String())
		}
	}
}

// An http source's requests are counted as requests whatever their answer
// (a POST of three events is one accepted request), and the events they
// carried in switchyard_http_events_total.
func TestRun_HTTPMetricsCountRequestsAndEventsApart(t *testing.T) {
	in := freeAddr(t)
	d := startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
sources: [{name: ingest, type: http, listen: %q}]
targets: [{name: out, type: log}]
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [out]}]
`, in))
	addr := adminAddr(t, d.stderr)
	waitListening(t, in)
	for _, body := range []string{"[" + orderEvent("o-1", "eu") + "," + orderEvent("o-2", "us") + `, {"plain": 1}]`, orderEvent("o-3", "eu")} {
		if status, answer := postEvents(t, "http://"+in+"/events", body); status != http.StatusOK {
			t.Fatalf("POST answered %d %s", status, answer)
		}
	}
	if status, _ := postEvents(t, "http://"+in+"/events", `{"broken": `); status != http.StatusBadRequest {
		t.Fatalf("a malformed POST answered %d", status)
	}
	want := map[string]float64{
		`switchyard_http_requests_total{outcome="accepted",source="ingest"}`:    2,
		`switchyard_http_requests_total{outcome="bad_request",source="ingest"}`: 1,
		`switchyard_http_events_total{source="ingest"}`:                         4,
		`switchyard_source_received_messages_total{source="ingest"}`:            4,
	}
	m := scrape(t, addr)
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestRun_ReadyzAndHealth(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "slow", Latency: 1500 * time.Millisecond})
	d := startDaemon(t, srv, baseConfig+`
targets: [{name: slow, type: lambda, function: slow}]
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [slow]}]
`)
	addr := adminAddr(t, d.stderr)
	health := func() (int, string) {
		var out, errb strings.Builder
		code := run(t.Context(), []string{"health", "--addr", addr}, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	waitFor(t, "ready", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == 200 })
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, out := health(); code != exitOK {
		t.Errorf("health while ready: exit %d, %s", code, out)
	}
	// admin.listen's form for every interface reaches it on loopback.
	_, port, _ := strings.Cut(addr, ":")
	if code := run(t.Context(), []string{"health", "--addr", ":" + port}, strings.NewReader(""), io.Discard, io.Discard); code != exitOK {
		t.Errorf("health --addr :%s: exit %d", port, code)
	}

	// A delivery in flight keeps the daemon draining for a while after
	// SIGTERM: not ready, though still alive.
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "a.png", 1)})
	waitFor(t, "the slow call", func() bool { return srv.Lambda().InFlight("slow") == 1 })
	go d.stop()
	waitFor(t, "not ready", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == 503 })
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining = %d %q", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d, want 200 (alive)", code)
	}
	if code, out := health(); code != exitOK {
		t.Errorf("health while draining: exit %d, %q; want 0 (it works: it is finishing its deliveries)", code, out)
	}
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"health", "--ready", "--addr", addr}, strings.NewReader(""), &out, &errb); code != exitFail || !strings.Contains(out.String(), "draining") {
		t.Errorf("health --ready while draining: exit %d, %q; want 1 and the reason", code, out.String()+errb.String())
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("daemon exited %d", code)
	}
	if n := len(srv.Lambda().Invocations("slow")); n != 1 {
		t.Errorf("%d invocations, want 1: the drain finishes the call in flight", n)
	}
	if code, out := health(); code != exitFail || !strings.Contains(out, "connection refused") {
		t.Errorf("health with no daemon: exit %d, %q; want 1 and why", code, out)
	}
}

func TestHealth_Usage(t *testing.T) {
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"health", "--addr"}, strings.NewReader(""), &out, &errb); code != exitUsage {
		t.Errorf("health --addr with no value: exit %d, want %d", code, exitUsage)
	}
	if code := run(t.Context(), []string{"health", "extra"}, strings.NewReader(""), &out, &errb); code != exitUsage {
		t.Errorf("health with an argument: exit %d, want %d", code, exitUsage)
	}
}

// reloadConfig is a config whose rule sends everything to target.
func reloadConfig(target string) string {
	return baseConfig + fmt.Sprintf(`
targets:
  - {name: a, type: lambda, function: fa}
  - {name: b, type: lambda, function: fb, policy: other}
policies:
  other: {concurrency: 8}
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [%s]}]
`, target)
}

func TestRun_ReloadSwapsRulesUnderLoadAndRejectsBadConfigs(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "fa", Latency: 2 * time.Millisecond})
	srv.Lambda().Register(awstest.Function{Name: "fb", Latency: 2 * time.Millisecond})
	store := t.TempDir() // the same in every version of the file
	reloadConfig := func(target string) string { return withStoreDir(reloadConfig(target), store) }
	d := startDaemon(t, srv, reloadConfig("a"))
	addr := adminAddr(t, d.stderr)
	file := configFileOf(t, d)
	reload := func() (int, string) {
		var out, errb strings.Builder
		code := run(t.Context(), []string{"reload", "--addr", addr}, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}

	const n = 1500
	for i := range n {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(fmt.Sprintf("e-%d", i), "k", i)})
	}
	waitFor(t, "deliveries to a", func() bool { return len(srv.Lambda().Invocations("fa")) > 100 })
	os.WriteFile(file, []byte(withAdmin(strings.ReplaceAll(reloadConfig("b"), "{{URL}}", srv.URL()))), 0o644)
	if code, out := reload(); code != exitOK {
		t.Fatalf("reload: exit %d: %s", code, out)
	}
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))

	seen := map[string]int{}
	for _, fn := range []string{"fa", "fb"} {
		for _, inv := range srv.Lambda().Invocations(fn) {
			var ev struct{ ID string }
			json.Unmarshal(inv.Payload, &ev)
			seen[ev.ID]++
		}
	}
	a, b := len(srv.Lambda().Invocations("fa")), len(srv.Lambda().Invocations("fb"))
	if len(seen) != n || a+b != n {
		t.Errorf("%d distinct events delivered in %d+%d calls, want %d each once: a reload loses or repeats nothing", len(seen), a, b, n)
	}
	if b == 0 || a == 0 {
		t.Errorf("a: %d, b: %d; want both (the reload happened mid-run)", a, b)
	}
	t.Logf("reload under load: %d to a before, %d to b after, 0 lost, 0 twice", a, b)

	// Invalid: rejected with the validation errors, the running config kept.
	os.WriteFile(file, []byte(withAdmin(strings.ReplaceAll(reloadConfig("nowhere"), "{{URL}}", srv.URL()))), 0o644)
	code, out := reload()
	if code != exitFail || !strings.Contains(out, `unknown target "nowhere"`) || !strings.Contains(out, filepath.Base(file)+":") {
		t.Errorf("reload of an invalid config: exit %d, %q; want 1 and file:line:col errors", code, out)
	}
	// A change only a restart applies: rejected too.
	changed := strings.Replace(reloadConfig("a"), "wait_time: 1s", "wait_time: 2s", 1)
	os.WriteFile(file, []byte(withAdmin(strings.ReplaceAll(changed, "{{URL}}", srv.URL()))), 0o644)
	if code, out := reload(); code != exitFail || !strings.Contains(out, "sources changed, which takes a restart") {
		t.Errorf("reload changing a source: exit %d, %q", code, out)
	}
	// A NATS target needs the embedded server to listen for its clients,
	// which it does not: rejected.
	withNATS := strings.Replace(reloadConfig("a"), "targets:\n", "targets:\n  - {name: n, type: nats, subject: x}\n", 1)
	os.WriteFile(file, []byte(withAdmin(strings.ReplaceAll(withNATS, "{{URL}}", srv.URL()))), 0o644)
	if code, out := reload(); code != exitFail || !strings.Contains(out, "nats changed, which takes a restart") {
		t.Errorf("reload adding NATS: exit %d, %q", code, out)
	}
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("after", "k", 0)})
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	if got := len(srv.Lambda().Invocations("fb")); got != b+1 {
		t.Errorf("after rejected reloads the event went elsewhere: fb has %d calls, want %d", got, b+1)
	}
	m := scrape(t, addr)
	if m[`switchyard_config_reloads_total{result="ok"}`] != 1 || m[`switchyard_config_reloads_total{result="rejected"}`] != 3 {
		t.Errorf("reload counters: ok %v rejected %v, want 1 and 3", m[`switchyard_config_reloads_total{result="ok"}`], m[`switchyard_config_reloads_total{result="rejected"}`])
	}
	var st telemetry.Status
	_, body := get(t, "http://"+addr+"/status")
	json.Unmarshal([]byte(body), &st)
	if st.Config.Reloads != 1 || !strings.Contains(st.Config.LastReject, "nats changed") {
		t.Errorf("/status config = %+v", st.Config)
	}
	if !strings.Contains(d.stderr.String(), "config reload rejected") {
		t.Error("a rejected reload was not logged")
	}
}

// configFileOf returns the config file the daemon was started with.
func configFileOf(t *testing.T, d *daemon) string {
	t.Helper()
	var file string
	waitFor(t, "the daemon to run", func() bool {
		for _, l := range strings.Split(d.stderr.String(), "\n") {
			var rec struct{ Msg, Config string }
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "switchyard running" {
				file = rec.Config
				return true
			}
		}
		return false
	})
	return file
}

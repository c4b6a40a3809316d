package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// counting registers a function that records each message number it took,
// failing while down is set.
func counting(t *testing.T, srv *awstest.Server, name string, down *atomic.Bool) func() map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	err := srv.Lambda().Register(awstest.Function{Name: name, Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		if down != nil && down.Load() {
			return awstest.Result{Err: &awstest.APIError{Status: 503, Code: "ServiceException", Message: "down"}}
		}
		var ev struct{ Detail struct{ N int } }
		json.Unmarshal(inv.Payload, &ev)
		mu.Lock()
		got[ev.Detail.N]++
		mu.Unlock()
		return awstest.Result{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return func() map[int]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[int]int, len(got))
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

// A target that is down does not hold back the other: its deliveries go to
// its backlog, the messages are acked, the healthy target gets everything;
// once the broken one recovers, its backlog drains into it. Metrics,
// /status and `switchyard status` show the backlog on the way.
func TestRun_BacklogKeepsABrokenTargetFromStallingTheOthers(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	var down atomic.Bool
	down.Store(true)
	healthy := counting(t, srv, "healthy", nil)
	broken := counting(t, srv, "broken", &down)
	d := startDaemon(t, srv, baseConfig+`max_in_flight: 10
targets:
  - {name: healthy, type: lambda, function: healthy}
  - name: broken
    type: lambda
    function: broken
    policy: fragile
    backlog: {type: jetstream, max_waiting: 2}
policies:
  fragile: {breaker: {failures: 3, open: 500ms}, retry: {attempts: 1000, initial: 10ms, max: 50ms, max_age: 1h}}
rules:
  - {name: all, pattern: {source: [load]}, targets: [healthy, broken]}
`)
	addr := adminAddr(t, d.stderr)
	const n = 300
	for i := range n {
		srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)})
	}
	// With 10 messages in flight at most and the broken target never
	// answering, every message still reaches the healthy one and leaves
	// the queue.
	waitFor(t, "the healthy target to get every message", func() bool { return len(healthy()) == n })
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	var m map[string]float64
	waitFor(t, "the backlog to hold the broken target's deliveries", func() bool {
		defer func() {
			if t.Failed() {
				t.Logf("metrics: depth %v backlogged %v errors %v", m[`switchyard_target_backlog_depth{target="broken"}`],
					m[`switchyard_target_backlogged_total{target="broken"}`], m[`switchyard_target_backlog_errors_total{target="broken"}`])
			}
		}()
		m = scrape(t, addr)
		return m[`switchyard_target_backlog_depth{target="broken"}`] >= n-10
	})
	// Each probe while the breaker half-opens takes an entry out and puts
	// it back: more pushes than entries.
	backlogged := m[`switchyard_target_backlog_depth{target="broken"}`]
	if m[`switchyard_target_backlogged_total{target="broken"}`] < backlogged || m[`switchyard_target_backlog_age_seconds{target="broken"}`] <= 0 {
		t.Errorf("backlogged %v for a depth of %v, age %v", m[`switchyard_target_backlogged_total{target="broken"}`], backlogged,
			m[`switchyard_target_backlog_age_seconds{target="broken"}`])
	}
	if m[`switchyard_source_nacked_messages_total{source="jobs"}`] != 0 || m[`switchyard_target_deliveries_total{outcome="dead_lettered",target="broken"}`] != 0 {
		t.Errorf("nacked %v, dead-lettered %v: a backlog should do neither", m[`switchyard_source_nacked_messages_total{source="jobs"}`],
			m[`switchyard_target_deliveries_total{outcome="dead_lettered",target="broken"}`])
	}
	if got := srv.Calls("sqs:ChangeMessageVisibility"); got != 0 {
		t.Errorf("%d visibility changes: messages were nacked or held", got)
	}
	var st telemetry.Status
	_, body := get(t, "http://"+addr+"/status")
	json.Unmarshal([]byte(body), &st)
	for _, ts := range st.Targets {
		if ts.Name == "broken" && (ts.Backlog == nil || ts.Backlog.Kind != "jetstream stream SWITCHYARD_BACKLOG_broken" || ts.Backlog.Depth == 0) {
			t.Errorf("/status backlog of broken = %+v", ts.Backlog)
		}
		if ts.Name == "healthy" && ts.Backlog != nil {
			t.Errorf("/status shows a backlog for healthy, which has none")
		}
	}
	var out, errb strings.Builder
	run(t.Context(), []string{"status", "--addr", addr}, strings.NewReader(""), &out, &errb)
	if !strings.Contains(out.String(), "BACKLOG") || !strings.Contains(out.String(), "ledger:") {
		t.Errorf("status output lacks the backlog column or the ledger line:\n%s", out.String())
	}

	down.Store(false)
	waitFor(t, "the backlog to drain into the broken target", func() bool { return len(broken()) == n })
	waitFor(t, "the backlog to be empty", func() bool {
		m = scrape(t, addr)
		return m[`switchyard_target_backlog_depth{target="broken"}`] == 0
	})
	twice := 0
	for _, c := range broken() {
		if c > 1 {
			twice++
		}
	}
	for _, c := range healthy() {
		if c > 1 {
			twice++
		}
	}
	if twice != 0 {
		t.Errorf("%d messages delivered twice", twice)
	}
	t.Logf("backlog: %d messages, healthy got all while broken was down; %v went to the backlog, all drained after recovery (drained %v)",
		n, backlogged, m[`switchyard_target_backlog_drained_total{target="broken"}`])
}

// An SQS backlog that fails (SendMessage answers 500) leaves the
// deliveries in memory, as without a backlog: the failures are counted and
// shown, nothing is lost, and once the target is back every message
// reaches it. A reload that changes a backlog is refused.
func TestRun_BacklogFailureLosesNothing(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("broken-backlog", map[string]string{"MessageRetentionPeriod": "1209600"})
	var down atomic.Bool
	down.Store(true)
	broken := counting(t, srv, "broken", &down)
	removeFault := srv.InjectFault(awstest.FaultRule{Op: "sqs:SendMessage", Resource: "broken-backlog", Fault: awstest.InternalError("InternalError")})
	config := baseConfig + `max_in_flight: 20
targets:
  - name: broken
    type: lambda
    function: broken
    policy: fragile
    backlog: {type: sqs, queue_url: "{{URL}}/123456789012/broken-backlog"}
policies:
  fragile: {breaker: {failures: 3, open: 300ms}, retry: {attempts: 1000, initial: 10ms, max: 50ms, max_age: 1h}}
rules:
  - {name: all, pattern: {source: [load]}, targets: [broken]}
`
	d := startDaemon(t, srv, config)
	addr := adminAddr(t, d.stderr)
	const n = 100
	for i := range n {
		srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)})
	}
	var m map[string]float64
	waitFor(t, "failed moves to the backlog", func() bool {
		m = scrape(t, addr)
		return m[`switchyard_target_backlog_errors_total{target="broken"}`] >= 1
	})
	var st telemetry.Status
	_, body := get(t, "http://"+addr+"/status")
	json.Unmarshal([]byte(body), &st)
	if b := st.Targets[0].Backlog; b == nil || b.Errors == 0 || b.LastError == nil || !strings.Contains(b.LastError.Error, "InternalError") {
		t.Errorf("/status backlog = %+v, want its failures and the last one", b)
	}
	if !strings.Contains(d.stderr.String(), "BACKLOG FAILED") {
		t.Error("a failed move to the backlog was not logged")
	}
	if c, _ := srv.SQS().Counts("jobs"); c.Visible+c.InFlight == 0 {
		t.Error("messages left the queue while their deliveries were neither delivered nor in a backlog")
	}

	// A changed backlog takes a restart.
	file := configFileOf(t, d)
	changed, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(changed), "broken-backlog", "other-backlog", 1)), 0o644)
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"reload", "--addr", addr}, strings.NewReader(""), &out, &errb); code != exitFail || !strings.Contains(out.String()+errb.String(), "a target's backlog changed, which takes a restart") {
		t.Errorf("reload of a changed backlog: exit %d, %s%s", code, out.String(), errb.String())
	}

	removeFault()
	down.Store(false)
	waitFor(t, "every message to reach the target", func() bool { return len(broken()) == n })
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	waitFor(t, "the backlog queue to drain", queueEmpty(t, srv, "broken-backlog"))
}

// The ledger's store going away mid-run (a NATS server joined with
// nats.url, stopped) costs deliveries nothing but their protection: they
// go on, at-least-once, and the failed calls are counted.
func TestRun_LedgerStoreDownDeliversAnyway(t *testing.T) {
	nsrv := natstest.Run(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	work := counting(t, srv, "work", nil)
	// flaky fails each message's first call: with one attempt and no dead
	// letter, the message is nacked (its states written to the ledger) and
	// comes back (looked up in the ledger).
	var mu sync.Mutex
	tried := map[int]bool{}
	var flakyDone atomic.Int64
	srv.Lambda().Register(awstest.Function{Name: "flaky", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var ev struct{ Detail struct{ N int } }
		json.Unmarshal(inv.Payload, &ev)
		mu.Lock()
		defer mu.Unlock()
		if !tried[ev.Detail.N] {
			tried[ev.Detail.N] = true
			return awstest.Result{Err: &awstest.APIError{Status: 503, Code: "ServiceException", Message: "once"}}
		}
		flakyDone.Add(1)
		return awstest.Result{}
	}})
	d := startDaemon(t, srv, strings.Replace(baseConfig, "version: 1\n", fmt.Sprintf("version: 1\nnats: {url: %q}\n", nsrv.URL()), 1)+`
targets:
  - {name: work, type: lambda, function: work}
  - {name: flaky, type: lambda, function: flaky, policy: once}
policies: {once: {retry: {attempts: 1}, breaker: {failures: 1000}}}
rules: [{name: all, pattern: {source: [load]}, targets: [work, flaky]}]
`)
	addr := adminAddr(t, d.stderr)
	waitFor(t, "the daemon to run", func() bool { return strings.Contains(d.stderr.String(), "switchyard running") })
	nsrv.Stop()
	const n = 20
	for i := range n {
		srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)})
	}
	sent := time.Now()
	deadline := time.Now().Add(40 * time.Second)
	for (flakyDone.Load() < n || len(work()) < n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("delivered after %v", time.Since(sent))
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	t.Logf("drained after %v", time.Since(sent))
	m := scrape(t, addr)
	again := 0
	for _, c := range work() {
		if c > 1 {
			again++
		}
	}
	t.Logf("ledger store down: %d messages; work got %d (%d again, at-least-once without the ledger), flaky %d; ledger errors %v, calls skipped %v",
		n, len(work()), again, flakyDone.Load(), m["switchyard_ledger_errors_total"], m["switchyard_ledger_skipped_total"])
	if len(work()) != n || flakyDone.Load() != n {
		t.Errorf("work got %d, flaky %d of %d: with the ledger down, deliveries must go on", len(work()), flakyDone.Load(), n)
	}
	if m["switchyard_ledger_errors_total"] == 0 {
		t.Error("no ledger failures counted with its server stopped")
	}
}

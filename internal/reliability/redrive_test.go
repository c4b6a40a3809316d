package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

// redriveConfig: billing and shipping take their messages' numbers; every
// failure is tried twice, then dead-lettered to dlq; the ledger is on a
// NATS server of the test's.
const redriveConfig = `max_in_flight: 200
nats: {url: "%s"}
sources: [{name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s, pollers: 2}]
targets:
  - {name: billing, type: lambda, function: billing}
  - {name: shipping, type: lambda, function: shipping}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {timeout: 1s, retry: {attempts: 2, initial: 5ms, max: 10ms}, breaker: {failures: 1000000}, dead_letter: dlq}
  last: {}
rules:
  - {name: bills, pattern: {detail-type: [bill]}, input: {paths: {n: $.detail.n}, template: '{"N": <n>}'}, targets: [billing]}
  - {name: parcels, pattern: {detail-type: [parcel]}, input: {paths: {n: $.detail.n}, template: '{"N": <n>}'}, targets: [shipping]}
`

// stillFailing are the messages shipping still refuses after the outage.
func stillFailing(n int) bool { return n%20 == 1 }

// redriveWorld is a world whose dlq holds the dead letters of total
// messages, half for each function, written by the daemon while both
// functions were down; afterwards billing takes everything and shipping
// refuses stillFailing.
func redriveWorld(t *testing.T, total int) (*world, string) {
	t.Helper()
	ns := natstest.Run(t)
	w := newWorld(t)
	var down = true
	var mu = &w.mu
	decide := func(fn string) func(context.Context, int) awstest.Result {
		return func(_ context.Context, n int) awstest.Result {
			mu.Lock()
			d := down
			mu.Unlock()
			switch {
			case d:
				return unavailable
			case fn == "shipping" && stillFailing(n):
				return awstest.ErrorResult("Refused", fmt.Sprintf("parcel %d refused", n))
			}
			return ok
		}
	}
	w.function("billing", 0, decide("billing"))
	w.function("shipping", 0, decide("shipping"))
	for i := range total {
		kind := "bill"
		if i%2 == 1 {
			kind = "parcel"
		}
		if _, err := w.srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"shop","detail-type":%q,"detail":{"n":%d}}`, kind, i)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := w.config(fmt.Sprintf(redriveConfig, ns.URL()))
	p := start(t, cfg)
	await(t, "every message dead-lettered", time.Minute, func() bool { return w.queued("dlq") == total && w.queued("jobs") == 0 })
	p.terminate(10 * time.Second)
	mu.Lock()
	down = false
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return w, file
}

// redriveRun is switchyard redrive as a process.
type redriveRun struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	exited         chan error
}

func startRedrive(t *testing.T, file string, args ...string) *redriveRun {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(daemonBinary(t), append([]string{"redrive", "-c", file}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	r := &redriveRun{cmd: cmd, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("redrive stderr (last 3 KB):\n%s", tail(r.stderr.String(), 3072))
		}
	})
	return r
}

// wait waits for the exit and returns the exit code.
func (r *redriveRun) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-r.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("redrive did not end within %v; stderr:\n%s", within, tail(r.stderr.String(), 2048))
		return -1
	}
}

// count reads a count from a summary.
func count(t *testing.T, summary, what string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(what) + `:\s+(\d+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no %q in the summary:\n%s", what, summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// endState is what a redrive leaves: the numbers each function took (and
// how often), and the dead letters left, by number, with their attempts.
type endState struct {
	delivered map[string]map[int]int
	dead      map[int]int
}

func (w *world) endState(t *testing.T) endState {
	t.Helper()
	w.mu.Lock()
	st := endState{delivered: map[string]map[int]int{}, dead: map[int]int{}}
	for fn, m := range w.delivered {
		st.delivered[fn] = maps.Clone(m)
	}
	w.mu.Unlock()
	for n, a := range w.deadLetters() {
		rec := map[string]any{}
		if js := a["switchyard-dead-letter"].StringValue; js != "" {
			json.Unmarshal([]byte(js), &rec)
		}
		attempts, _ := strconv.Atoi(a["switchyard-attempts"].StringValue)
		st.dead[n] = attempts
		if a["switchyard-target"].StringValue != "shipping" || !strings.Contains(a["switchyard-last-error"].StringValue, fmt.Sprintf("parcel %d refused", n)) {
			t.Errorf("dead letter %d: %+v", n, a)
		}
	}
	return st
}

// deliveredSet is the numbers delivered, and how many were delivered more
// than once.
func (s endState) deliveredSet() (set []int, twice int) {
	for _, m := range s.delivered {
		for n, c := range m {
			set = append(set, n)
			if c > 1 {
				twice++
			}
		}
	}
	slices.Sort(set)
	return set, twice
}

// Redrive: 1,000 dead letters in an SQS dead-letter queue, for two Lambda
// functions, written by the daemon during an outage; after it, one
// function still refuses some. switchyard redrive delivers every other one
// exactly once (per the functions' own records) and writes those back with
// their attempts counted; none is lost. Killed with SIGKILL midway and run
// again, it ends as an uninterrupted run does: the same deliveries, the
// same dead letters left, nothing delivered twice (the ledger).
func TestReliability_Redrive(t *testing.T) {
	const total = 1000
	failing := 0
	for n := range total {
		if n%2 == 1 && stillFailing(n) {
			failing++
		}
	}

	// Uninterrupted.
	w, file := redriveWorld(t, total)
	begin := time.Now()
	r := startRedrive(t, file, "--from", "dlq", "--rate", "1000/s")
	code := r.wait(t, time.Minute)
	took := time.Since(begin)
	summary := r.stdout.String()
	t.Logf("redrive of %d dead letters in %v:\n%s", total, took.Round(time.Millisecond), summary)
	if code != 1 {
		t.Errorf("exit %d, want 1 (some failed again)", code)
	}
	if count(t, summary, "redriven") != total-failing || count(t, summary, "failed again") != failing || count(t, summary, "skipped") != 0 {
		t.Errorf("want %d redriven and %d failed again", total-failing, failing)
	}
	whole := w.endState(t)
	set, twice := whole.deliveredSet()
	lost := 0
	for n := range total {
		_, dead := whole.dead[n]
		if !slices.Contains(set, n) && !dead {
			lost++
		}
		if dead && whole.dead[n] != 4 {
			t.Errorf("dead letter %d: %d attempts, want 4 (2 by the daemon, 2 by the redrive)", n, whole.dead[n])
		}
	}
	t.Logf("uninterrupted: %d delivered (%d twice), %d back in the dead-letter queue, %d lost", len(set), twice, len(whole.dead), lost)
	if len(set) != total-failing || twice != 0 || len(whole.dead) != failing || lost != 0 {
		t.Errorf("want %d delivered once each, %d dead letters, none lost", total-failing, failing)
	}

	// Killed midway, then run again. Deletes take 300ms, so that the kill
	// finds deliveries made (and on record in the ledger) whose dead
	// letters are not deleted yet.
	w2, file2 := redriveWorld(t, total)
	slowDeletes := w2.srv.InjectFault(awstest.FaultRule{Op: "sqs:DeleteMessage", Resource: "dlq", Fault: awstest.Fault{Latency: 300 * time.Millisecond}})
	r1 := startRedrive(t, file2, "--from", "dlq", "--rate", "300/s")
	await(t, "300 deliveries", time.Minute, func() bool { return w2.deliveredCount("billing")+w2.deliveredCount("shipping") >= 300 })
	r1.cmd.Process.Signal(syscall.SIGKILL)
	r1.wait(t, 10*time.Second)
	atKill := w2.deliveredCount("billing") + w2.deliveredCount("shipping")
	c, _ := w2.srv.SQS().Counts("dlq")
	// What the killed run held comes back when its invisibility ends.
	await(t, "the killed run's dead letters to be visible again", 30*time.Second, func() bool {
		c, _ := w2.srv.SQS().Counts("dlq")
		return c.InFlight == 0
	})
	slowDeletes()
	r2 := startRedrive(t, file2, "--from", "dlq", "--rate", "1000/s")
	code = r2.wait(t, time.Minute)
	summary2 := r2.stdout.String()
	t.Logf("killed after %d deliveries (%d dead letters in the queue, %d of them invisible); run again:\n%s", atKill, c.Visible+c.InFlight, c.InFlight, summary2)
	again := w2.endState(t)
	set2, twice2 := again.deliveredSet()
	deadSet := slices.Sorted(maps.Keys(whole.dead))
	deadSet2 := slices.Sorted(maps.Keys(again.dead))
	t.Logf("killed and run again: %d delivered (%d twice), %d back in the dead-letter queue; the same as uninterrupted: deliveries %v, dead letters %v",
		len(set2), twice2, len(again.dead), slices.Equal(set, set2), slices.Equal(deadSet, deadSet2))
	if code != 1 || !slices.Equal(set, set2) || !slices.Equal(deadSet, deadSet2) || twice2 != 0 {
		t.Errorf("exit %d; the end state differs from an uninterrupted run's (or something was delivered twice)", code)
	}
	if count(t, summary2, "already delivered") == 0 {
		t.Errorf("no dead letter of a delivery made before the kill was found delivered: the kill should have left some undeleted")
	}
	for n, a := range again.dead {
		if a < 4 || a%2 != 0 {
			t.Errorf("dead letter %d: %d attempts, want 4, or 6 when both runs tried it", n, a)
		}
	}
	if bytes.Contains([]byte(r2.stderr.String()), []byte("panic")) {
		t.Errorf("the second run panicked")
	}
}

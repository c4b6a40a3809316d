package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// source and rule shared by the scenarios: jobs → the function "work",
// with the message number as the payload.
const (
	jobsSource = `sources: [{name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: %s, pollers: 2}]
`
	workRule = `rules: [{name: all, pattern: {source: [load]}, input: {paths: {n: $.detail.n}, template: '{"N": <n>}'}, targets: [%s]}]
`
	dlqTarget = `  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
`
)

// Crash: kill -9 mid-run, then restart. Every message is delivered at
// least once, none is lost, the queue drains, and duplicates are bounded by
// what was in flight (max_in_flight).
func TestReliability_Crash(t *testing.T) {
	w := newWorld(t)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		time.Sleep(2 * time.Millisecond)
		return ok
	})
	const total, inFlight = 3000, 100
	w.send(total)
	cfg := w.config(fmt.Sprintf("max_in_flight: %d\n", inFlight) + fmt.Sprintf(jobsSource, "2s") +
		"targets: [{name: work, type: lambda, function: work}]\n" + fmt.Sprintf(workRule, "work"))
	p := start(t, cfg)
	await(t, "1000 deliveries", time.Minute, func() bool { return w.deliveredCount("work") >= 1000 })
	p.kill()
	atCrash := w.deliveredCount("work")
	queuedAtCrash := w.queued("jobs")

	p2 := start(t, cfg)
	await(t, "the queue to drain after the restart", 2*time.Minute, func() bool { return w.queued("jobs") == 0 })
	p2.terminate(10 * time.Second)
	lost, dups, maxDup := w.tally("work", total, nil)
	t.Logf("crash: %d messages; killed after %d delivered (%d still queued); after restart: delivered %d, lost %d, duplicates %d (max %d times each), bound %d",
		total, atCrash, queuedAtCrash, w.deliveredCount("work"), lost, dups, maxDup, inFlight)
	if lost != 0 {
		t.Errorf("%d messages lost", lost)
	}
	if dups > inFlight || maxDup > 2 {
		t.Errorf("%d duplicates (up to %d times), more than the %d in flight at the crash", dups, maxDup, inFlight)
	}
}

// Outage: the function fails every call for a while. The breaker opens
// within `failures` calls (plus those already in flight), invocations and
// receives drop to probe level while it is open, nothing is dead-lettered,
// and after recovery every message is delivered.
func TestReliability_Outage(t *testing.T) {
	w := newWorld(t)
	var down atomic.Bool
	down.Store(true)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		if down.Load() {
			return unavailable
		}
		return ok
	})
	const total, failures, concurrency = 2000, 5, 4
	w.send(total)
	p := start(t, w.config("max_in_flight: 50\n"+fmt.Sprintf(jobsSource, "5s")+
		"targets:\n  - {name: work, type: lambda, function: work}\n"+dlqTarget+
		fmt.Sprintf("policies:\n  default: {concurrency: %d, breaker: {failures: %d, open: 1s, half_open: 1}, retry: {attempts: 1000, initial: 20ms, max: 100ms, max_age: 1h}, dead_letter: dlq}\n  last: {}\n", concurrency, failures)+
		fmt.Sprintf(workRule, "work")))
	await(t, "the breaker to open", 30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "circuit breaker open") })
	callsToOpen := w.srv.Calls("lambda:Invoke")
	// Let the budget fill with parked deliveries, then measure a window.
	time.Sleep(time.Second)
	invokes0, receives0 := w.srv.Calls("lambda:Invoke"), w.srv.Calls("sqs:ReceiveMessage")
	const window = 4 * time.Second
	time.Sleep(window)
	probes, receives := w.srv.Calls("lambda:Invoke")-invokes0, w.srv.Calls("sqs:ReceiveMessage")-receives0
	deadDuringOutage := w.queued("dlq")

	down.Store(false)
	await(t, "the queue to drain after recovery", 2*time.Minute, func() bool { return w.queued("jobs") == 0 })
	p.terminate(10 * time.Second)
	lost, _, _ := w.tally("work", total, nil)
	t.Logf("outage: breaker open after %d calls (failures %d, concurrency %d); while open for %v: %d calls, %d receives; dead-lettered %d; after recovery delivered %d of %d, lost %d",
		callsToOpen, failures, concurrency, window, probes, receives, deadDuringOutage, w.deliveredCount("work"), total, lost)
	if callsToOpen > failures+concurrency {
		t.Errorf("the breaker opened after %d calls, want within %d failures (+%d in flight)", callsToOpen, failures, concurrency)
	}
	if probes > 8 {
		t.Errorf("%d calls in %v while open, want probe level (about 1 per second)", probes, window)
	}
	if receives > 4 {
		t.Errorf("%d receives in %v while the budget was full of parked deliveries", receives, window)
	}
	if deadDuringOutage != 0 || w.queued("dlq") != 0 {
		t.Errorf("%d dead letters during an outage shorter than max_age", w.queued("dlq"))
	}
	if lost != 0 {
		t.Errorf("%d messages lost", lost)
	}
}

// Throttling: the function throttles above 4 calls at once. switchyard
// settles near that, nothing is dead-lettered, and throughput recovers
// when the throttle lifts.
func TestReliability_Throttling(t *testing.T) {
	w := newWorld(t)
	work := func(ctx context.Context, n int) awstest.Result {
		time.Sleep(20 * time.Millisecond)
		return ok
	}
	w.function("work", 4, work)
	const total = 2400
	w.send(total)
	p := start(t, w.config("max_in_flight: 200\n"+fmt.Sprintf(jobsSource, "10s")+
		"targets:\n  - {name: work, type: lambda, function: work}\n"+dlqTarget+
		"policies:\n  default: {concurrency: 32, retry: {max_age: 1h}, dead_letter: dlq}\n  last: {}\n"+
		fmt.Sprintf(workRule, "work")))
	start1 := time.Now()
	await(t, "half the messages", 2*time.Minute, func() bool { return w.deliveredCount("work") >= total/2 })
	phase1 := time.Since(start1)
	throttled := 0
	for _, inv := range w.srv.Lambda().Invocations("work") {
		if inv.ErrorCode == "TooManyRequestsException" {
			throttled++
		}
	}
	calls := len(w.srv.Lambda().Invocations("work"))

	w.function("work", 0, work) // the throttle lifts
	start2 := time.Now()
	await(t, "the queue to drain", 2*time.Minute, func() bool { return w.queued("jobs") == 0 })
	phase2 := time.Since(start2)
	p.terminate(10 * time.Second)
	rate1 := float64(total/2) / phase1.Seconds()
	rate2 := float64(total-total/2) / phase2.Seconds()
	t.Logf("throttling: while throttled above 4: %d calls, %d throttled (%.0f%%), %.0f deliveries/s (the ceiling is 4/20ms = 200/s); after it lifted: %.0f deliveries/s; dead-lettered %d",
		calls, throttled, 100*float64(throttled)/float64(calls), rate1, rate2, w.queued("dlq"))
	if w.queued("dlq") != 0 {
		t.Errorf("%d messages dead-lettered for throttles", w.queued("dlq"))
	}
	if float64(throttled) > 0.5*float64(calls) {
		t.Errorf("%d of %d calls throttled: switchyard did not settle near the function's concurrency", throttled, calls)
	}
	if rate2 < 1.5*rate1 {
		t.Errorf("throughput %.0f/s after the throttle lifted, not above %.0f/s while it held", rate2, rate1)
	}
	if lost, _, _ := w.tally("work", total, nil); lost != 0 {
		t.Errorf("%d messages lost", lost)
	}
}

// Poison: permanent errors for some messages. Exactly those reach the dead
// letter, with their metadata; the rest are delivered.
func TestReliability_Poison(t *testing.T) {
	w := newWorld(t)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		if n%100 == 0 {
			return awstest.Result{Err: &awstest.APIError{Status: 400, Code: "InvalidRequestContentException", Message: "poison"}}
		}
		return ok
	})
	const total = 2000
	w.send(total)
	begin := time.Now()
	p := start(t, w.config(fmt.Sprintf(jobsSource, "10s")+
		"targets:\n  - {name: work, type: lambda, function: work}\n"+dlqTarget+
		"policies:\n  default: {dead_letter: dlq}\n  last: {}\n"+fmt.Sprintf(workRule, "work")))
	await(t, "the queue to drain", 2*time.Minute, func() bool { return w.queued("jobs") == 0 })
	took := time.Since(begin)
	p.terminate(10 * time.Second)
	dead := w.deadLetters()
	t.Logf("poison: %d messages, %d poison; dead-lettered %d; delivered %d in %v (%.0f/s)",
		total, total/100, len(dead), w.deliveredCount("work"), took.Round(time.Millisecond), float64(total)/took.Seconds())
	if len(dead) != total/100 {
		t.Errorf("%d dead letters, want %d", len(dead), total/100)
	}
	for n, a := range dead {
		if n%100 != 0 {
			t.Errorf("message %d was dead-lettered but is not poison", n)
		}
		if a["switchyard-attempts"].StringValue != "1" || a["switchyard-target"].StringValue != "work" || a["switchyard-rule"].StringValue != "all" ||
			!strings.Contains(a["switchyard-last-error"].StringValue, "InvalidRequestContentException") || a["switchyard-source"].StringValue != "jobs" {
			t.Errorf("dead letter %d attributes: %+v", n, a)
		}
	}
	if got := w.deliveredCount("work"); got != total-total/100 {
		t.Errorf("delivered %d, want %d", got, total-total/100)
	}
}

// DeadLetterOfItself: the natural config, where the dead-letter target
// names no policy and so uses the default one, whose dead letter is that
// same target. A delivery that fails for good goes to dlq; when dlq fails
// too, its dead letter is not dead-lettered again: the message stays in
// its source and comes back, each round costing dlq only its own attempts,
// and nothing loops.
func TestReliability_DeadLetterOfItself(t *testing.T) {
	w := newWorld(t)
	w.function("work", 0, func(context.Context, int) awstest.Result {
		return awstest.Result{Err: &awstest.APIError{Status: 400, Code: "InvalidRequestContentException", Message: "poison"}}
	})
	w.srv.InjectFault(awstest.FaultRule{Op: "sqs:SendMessage", Resource: "dlq", Fault: awstest.InternalError("InternalFailure")})
	const attempts = 3
	w.send(1)
	p := start(t, w.config(fmt.Sprintf(jobsSource, "30s")+
		"targets:\n  - {name: work, type: lambda, function: work}\n  - {name: dlq, type: sqs, queue_url: \"{{URL}}/123456789012/dlq\"}\n"+
		fmt.Sprintf("policies:\n  default: {retry: {attempts: %d, initial: 10ms, max: 20ms}, breaker: {failures: 100000}, dead_letter: dlq}\n", attempts)+
		fmt.Sprintf(workRule, "work")))
	rounds := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.attempts["work"][0]
	}
	await(t, "the message to come back and fail again", time.Minute, func() bool { return rounds() >= 2 })
	p.terminate(10 * time.Second)
	n, sends := rounds(), w.srv.Calls("sqs:SendMessage")
	t.Logf("dead letter of itself: the message was tried %d times (once per round, then dead-lettered); dlq failed %d sends (%d attempts a round); still in its source: %d; in dlq: %d",
		n, sends, attempts, w.queued("jobs"), w.queued("dlq"))
	if sends > n*attempts || sends < (n-1)*attempts {
		t.Errorf("%d sends to dlq in %d rounds, want %d a round: a dead letter must not be dead-lettered again", sends, n, attempts)
	}
	if w.queued("jobs") != 1 || w.queued("dlq") != 0 {
		t.Errorf("%d messages in jobs and %d in dlq, want the message still in its source", w.queued("jobs"), w.queued("dlq"))
	}
	if !strings.Contains(p.stderr.String(), "DEAD LETTER FAILED") {
		t.Error("no DEAD LETTER FAILED line in the log")
	}
}

// Slow sink: each call takes 2s. The in-flight budget caps the work,
// memory stays flat whatever the backlog, and visibility is extended so
// that no message is redelivered while it is worked on.
func TestReliability_SlowSink(t *testing.T) {
	w := newWorld(t)
	var now, most atomic.Int64
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		c := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
		return ok
	})
	const backlog, inFlight = 5000, 20
	w.send(backlog)
	p := start(t, w.config(fmt.Sprintf("max_in_flight: %d\nshutdown_grace: 5s\n", inFlight)+fmt.Sprintf(jobsSource, "2s")+
		"targets: [{name: work, type: lambda, function: work, policy: slow}]\npolicies: {slow: {timeout: 10s}}\n"+fmt.Sprintf(workRule, "work")))
	time.Sleep(8 * time.Second) // four rounds of 2s calls, each longer than the visibility timeout
	took := p.terminate(10 * time.Second)
	w.mu.Lock()
	twice := 0
	for _, c := range w.attempts["work"] {
		if c > 1 {
			twice++
		}
	}
	taken := len(w.attempts["work"])
	w.mu.Unlock()
	lost, _, _ := w.tally("work", backlog, w.inQueue("jobs"))
	t.Logf("slow sink: backlog %d, max_in_flight %d: at most %d calls at once; %d messages taken, %d of them twice; peak RSS %.1f MiB; exited %v after SIGTERM; lost %d",
		backlog, inFlight, most.Load(), taken, twice, p.peakRSS(), took.Round(time.Millisecond), lost)
	if most.Load() > inFlight {
		t.Errorf("%d calls at once, above max_in_flight %d", most.Load(), inFlight)
	}
	if twice != 0 {
		t.Errorf("%d messages were redelivered while still being worked on", twice)
	}
	if p.peakRSS() > 64 {
		t.Errorf("peak RSS %.1f MiB with a backlog of %d: memory must not grow with the backlog", p.peakRSS(), backlog)
	}
	if lost != 0 {
		t.Errorf("%d messages lost", lost)
	}
}

// Partial fan-out: one event to a healthy and a failing target. The
// healthy one is invoked exactly once; the failing one retries, then
// dead-letters; the message is acked once both resolved.
func TestReliability_PartialFanOut(t *testing.T) {
	w := newWorld(t)
	w.function("healthy", 0, func(context.Context, int) awstest.Result { return ok })
	w.function("failing", 0, func(context.Context, int) awstest.Result { return unavailable })
	const total, attempts = 500, 3
	w.send(total)
	p := start(t, w.config(fmt.Sprintf(jobsSource, "10s")+
		"targets:\n  - {name: healthy, type: lambda, function: healthy}\n  - {name: failing, type: lambda, function: failing}\n"+dlqTarget+
		fmt.Sprintf("policies:\n  default: {retry: {attempts: %d, initial: 10ms, max: 20ms}, breaker: {failures: 100000}, dead_letter: dlq}\n  last: {}\n", attempts)+
		fmt.Sprintf(workRule, "healthy, failing")))
	await(t, "the queue to drain", 2*time.Minute, func() bool { return w.queued("jobs") == 0 })
	p.terminate(10 * time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	healthyOnce, failingTries := 0, 0
	for i := range total {
		if w.delivered["healthy"][i] == 1 && w.attempts["healthy"][i] == 1 {
			healthyOnce++
		}
		if w.attempts["failing"][i] == attempts {
			failingTries++
		}
	}
	dead := w.deadLetters()
	wrongTarget := 0
	for _, a := range dead {
		if a["switchyard-target"].StringValue != "failing" {
			wrongTarget++
		}
	}
	t.Logf("partial fan-out: %d messages; healthy invoked exactly once for %d; failing tried %d times for %d; dead-lettered %d (%d not for the failing target); queue drained",
		total, healthyOnce, attempts, failingTries, len(dead), wrongTarget)
	if healthyOnce != total || failingTries != total || len(dead) != total || wrongTarget != 0 {
		t.Error("want every message: healthy once, failing tried 3 times, then dead-lettered")
	}
}

// Drain: SIGTERM under load. The daemon exits within shutdown_grace and
// nothing is lost.
func TestReliability_Drain(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	latency := map[int]time.Duration{}
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		mu.Lock()
		d, ok2 := latency[n]
		if !ok2 {
			d = time.Duration(20+n%180) * time.Millisecond
			latency[n] = d
		}
		mu.Unlock()
		select {
		case <-time.After(d):
			return ok
		case <-ctx.Done():
			return unavailable
		}
	})
	const total = 4000
	w.send(total)
	p := start(t, w.config("max_in_flight: 200\nshutdown_grace: 2s\n"+fmt.Sprintf(jobsSource, "30s")+
		"targets: [{name: work, type: lambda, function: work}]\n"+fmt.Sprintf(workRule, "work")))
	await(t, "1000 deliveries", time.Minute, func() bool { return w.deliveredCount("work") >= 1000 })
	took := p.terminate(10 * time.Second)
	queued := w.inQueue("jobs")
	lost, dups, _ := w.tally("work", total, queued)
	t.Logf("drain: SIGTERM under load after %d delivered; exited in %v (grace 2s); delivered %d, still queued %d, lost %d, duplicates %d",
		1000, took.Round(time.Millisecond), w.deliveredCount("work"), len(queued), lost, dups)
	if took > 3*time.Second {
		t.Errorf("exited %v after SIGTERM, want within the 2s grace period", took)
	}
	if lost != 0 || dups != 0 {
		t.Errorf("lost %d, duplicates %d", lost, dups)
	}
}

// IngestCrash: events POSTed to the HTTP source with ack: persisted are
// answered 202 once stored in JetStream (on the embedded NATS server). The
// daemon is killed right after the last 202, with deliveries still going
// on; after a restart on the same store every event is delivered, and
// duplicates are bounded by what was in flight.
func TestReliability_IngestCrash(t *testing.T) {
	w := newWorld(t)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		time.Sleep(5 * time.Millisecond)
		return ok
	})
	const total, batch, inFlight = 1000, 10, 50
	addr := freePort(t)
	store := t.TempDir()
	cfg := w.config(fmt.Sprintf("max_in_flight: %d\n", inFlight) +
		fmt.Sprintf("nats: {store_dir: %q, listen: none}\n", store) +
		fmt.Sprintf("sources: [{name: ingest, type: http, listen: %q, ack: persisted, ack_wait: 2s}]\n", addr) +
		"targets: [{name: work, type: lambda, function: work}]\n" +
		"policies: {default: {concurrency: 4}}\n" +
		fmt.Sprintf(workRule, "work"))
	p := start(t, cfg)
	url := "http://" + addr + "/events"
	await(t, "the HTTP source to listen", 30*time.Second, func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	accepted := 0
	for i := 0; i < total; i += batch {
		var events []string
		for n := i; n < i+batch; n++ {
			events = append(events, fmt.Sprintf(`{"version":"0","id":"ev-%d","detail-type":"Job","source":"load","account":"123456789012","time":"2026-11-22T10:00:00Z","region":"us-east-1","resources":[],"detail":{"n":%d}}`, n, n))
		}
		resp, err := http.Post(url, "application/json", strings.NewReader("["+strings.Join(events, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %d answered %d", i/batch, resp.StatusCode)
		}
		accepted += batch
	}
	p.kill()
	atCrash := w.deliveredCount("work")

	p2 := start(t, cfg)
	await(t, "every accepted event to be delivered after the restart", 2*time.Minute, func() bool { return w.deliveredCount("work") == total })
	p2.terminate(10 * time.Second)
	lost, dups, maxDup := w.tally("work", total, nil)
	t.Logf("ingest crash: %d events accepted (202) in %d POSTs; killed right after the last 202 with %d delivered; after restart: delivered %d, lost %d, duplicates %d (max %d times each), bound %d",
		accepted, total/batch, atCrash, w.deliveredCount("work"), lost, dups, maxDup, inFlight)
	if atCrash == total {
		t.Errorf("every event was delivered before the crash: the test proved nothing")
	}
	if lost != 0 {
		t.Errorf("%d accepted events lost", lost)
	}
	if dups > inFlight || maxDup > 2 {
		t.Errorf("%d duplicates (up to %d times), more than the %d in flight at the crash", dups, maxDup, inFlight)
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

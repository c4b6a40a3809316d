package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/ledger"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/redrive"
	"github.com/switchyard-dev/switchyard/router"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
)

// redriveTargets and redriveRules: invoices go to billing (a JSON
// template), orders to shipping (the whole event), notes to notes (a text
// template); spare takes what --to sends it. Every failure is retried once,
// then dead-lettered to the dlq queue.
const (
	redriveTargets = `targets:
  - {name: billing, type: lambda, function: billing}
  - {name: shipping, type: lambda, function: shipping}
  - {name: notes, type: lambda, function: notes}
  - {name: spare, type: lambda, function: spare}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {timeout: 2s, retry: {attempts: 2, initial: 5ms, max: 10ms}, breaker: {failures: 100000}, dead_letter: dlq}
  last: {}
`
	redriveRules = `rules:
  - {name: invoices, pattern: {detail-type: [invoice]}, input: {paths: {n: $.detail.n}, template: '{"N": <n>, "kind": "invoice"}'}, targets: [billing]}
  - {name: orders, pattern: {detail-type: [order]}, targets: [shipping]}
  - {name: notes, pattern: {detail-type: [note]}, input: {paths: {n: $.detail.n}, template: 'note <n>'}, targets: [notes]}
`
)

// fnCall is one invocation a function saw.
type fnCall struct {
	n          int
	deliveryID string
	payload    string
	ok         bool
}

// fleetOfFunctions are the test's Lambda functions: each records its
// calls, and fails while down, or for the numbers fail says.
type fleetOfFunctions struct {
	mu    sync.Mutex
	calls map[string][]fnCall
	down  atomic.Bool
	fail  func(fn string, n int) bool
	delay time.Duration
}

// numberOf reads the message number from a payload: {"N": n}, an event's
// detail.n, or the text "note n".
func numberOf(payload []byte) int {
	var p struct {
		N      *int
		Detail struct{ N int }
	}
	if json.Unmarshal(payload, &p) == nil && p.N != nil {
		return *p.N
	}
	var s string
	if json.Unmarshal(payload, &s) == nil {
		var n int
		fmt.Sscanf(s, "note %d", &n)
		return n
	}
	return p.Detail.N
}

func newFunctions(t *testing.T, srv *awstest.Server) *fleetOfFunctions {
	t.Helper()
	f := &fleetOfFunctions{calls: map[string][]fnCall{}}
	for _, name := range []string{"billing", "shipping", "notes", "spare"} {
		err := srv.Lambda().Register(awstest.Function{Name: name, Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
			f.mu.Lock()
			delay, fail := f.delay, f.fail
			f.mu.Unlock()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
			}
			var cc struct {
				Custom struct {
					ID string `json:"switchyard_delivery_id"`
				} `json:"custom"`
			}
			json.Unmarshal(inv.ClientContext, &cc)
			c := fnCall{n: numberOf(inv.Payload), deliveryID: cc.Custom.ID, payload: string(inv.Payload)}
			var res awstest.Result
			switch {
			case f.down.Load():
				res = awstest.Result{Err: &awstest.APIError{Status: 503, Code: "ServiceException", Message: "down"}}
			case fail != nil && fail(name, c.n):
				res = awstest.ErrorResult("Broken", fmt.Sprintf("cannot take %d", c.n))
			default:
				c.ok = true
			}
			f.mu.Lock()
			f.calls[name] = append(f.calls[name], c)
			f.mu.Unlock()
			return res
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// set makes the functions fail for the numbers fail says, and take delay
// for each call.
func (f *fleetOfFunctions) set(fail func(fn string, n int) bool, delay time.Duration) {
	f.mu.Lock()
	f.fail, f.delay = fail, delay
	f.mu.Unlock()
}

func (f *fleetOfFunctions) of(name string) []fnCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls[name])
}

// succeeded counts each function's successful calls by delivery id.
func (f *fleetOfFunctions) succeeded(name string) map[string]int {
	out := map[string]int{}
	for _, c := range f.of(name) {
		if c.ok {
			out[c.deliveryID]++
		}
	}
	return out
}

// redriveWorld is SQS and Lambda, a config, and the dead letters the
// daemon wrote to dlq while the functions were down.
type redriveWorld struct {
	t       *testing.T
	srv     *awstest.Server
	fns     *fleetOfFunctions
	file    string
	store   string
	natsURL string // "": the embedded server, in store
	nats    string // the nats block, when set
	// first are the daemon's calls by function and number: the delivery
	// ids and payloads the dead letters stand for.
	first map[string]map[int]fnCall
}

// kinds are the detail-types of the messages, by the function they reach.
var kinds = map[string]string{"invoice": "billing", "order": "shipping", "note": "notes"}

// newRedriveWorld runs the daemon on perKind messages of each kind while
// every function is down, until each is in the dead-letter queue.
func newRedriveWorld(t *testing.T, perKind int) *redriveWorld {
	t.Helper()
	return newRedriveWorldOn(t, perKind, "", redriveTargets, func(w *redriveWorld) int { return w.count("dlq") })
}

// newRedriveWorldOn is newRedriveWorld with NATS at natsURL ("" for the
// embedded server), targets, and deadLetters counting the dead letters.
func newRedriveWorldOn(t *testing.T, perKind int, natsURL, targets string, deadLetters func(*redriveWorld) int) *redriveWorld {
	t.Helper()
	awsEnv(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	for _, q := range []string{"jobs", "dlq"} {
		if _, err := srv.SQS().CreateQueue(q, nil); err != nil {
			t.Fatal(err)
		}
	}
	w := &redriveWorld{t: t, srv: srv, fns: newFunctions(t, srv), store: t.TempDir(), natsURL: natsURL, first: map[string]map[int]fnCall{}}
	w.file = w.writeConfig("switchyard.yaml", targets+redriveRules)
	w.fns.down.Store(true)
	for kind := range kinds {
		for i := range perKind {
			srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"shop","detail-type":%q,"detail":{"n":%d}}`, kind, i)})
		}
	}
	d := &daemon{done: make(chan int, 1), stdout: nil, stderr: nil}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	var stderr strings.Builder
	var mu sync.Mutex
	go func() {
		d.done <- run(ctx, []string{"run", "-c", w.file}, strings.NewReader(""), &lockedWriter{mu: &mu, w: &stderr}, &lockedWriter{mu: &mu, w: &stderr})
	}()
	total := perKind * len(kinds)
	deadline := time.Now().Add(30 * time.Second)
	for deadLetters(w) < total || !queueEmpty(t, srv, "jobs")() {
		if time.Now().After(deadline) {
			d.stop()
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the daemon dead-lettered %d of %d messages:\n%s", deadLetters(w), total, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("daemon exit %d", code)
	}
	w.fns.down.Store(false)
	for kind, fn := range kinds {
		w.first[fn] = map[int]fnCall{}
		for _, c := range w.fns.of(fn) {
			w.first[fn][c.n] = c
		}
		if len(w.first[fn]) != perKind {
			t.Fatalf("%s: the daemon called it for %d numbers, want %d (%s)", fn, len(w.first[fn]), perKind, kind)
		}
	}
	return w
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// writeConfig writes a config of the world's endpoints and store.
func (w *redriveWorld) writeConfig(name, body string) string {
	w.t.Helper()
	nats := fmt.Sprintf("nats: {store_dir: %q}\n", w.store)
	switch {
	case w.nats != "":
		nats = w.nats
	case w.natsURL != "":
		nats = fmt.Sprintf("nats: {url: %q}\n", w.natsURL)
	}
	cfg := "version: 1\nadmin: {listen: \"127.0.0.1:0\"}\n" + nats + `aws: {region: us-east-1, endpoints: {sqs: "{{URL}}", lambda: "{{URL}}"}}
shutdown_grace: 5s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s}
` + body
	file := filepath.Join(w.t.TempDir(), name)
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(cfg, "{{URL}}", w.srv.URL())), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return file
}

func (w *redriveWorld) count(q string) int {
	c, err := w.srv.SQS().Counts(q)
	if err != nil {
		w.t.Fatal(err)
	}
	return c.Visible + c.InFlight + c.Delayed
}

// letter is a dead letter in the queue, read as redrive reads it.
type letter struct {
	id   string
	n    int
	rec  *router.DeadLetter
	body string
	raw  awstest.MessageInfo
}

func (w *redriveWorld) letters() []letter {
	w.t.Helper()
	ms, err := w.srv.SQS().Messages("dlq")
	if err != nil {
		w.t.Fatal(err)
	}
	var out []letter
	for _, m := range ms {
		attrs := map[string]sqstypes.MessageAttributeValue{}
		for k, a := range m.Attributes {
			v := sqstypes.MessageAttributeValue{DataType: aws.String(a.DataType), BinaryValue: a.BinaryValue}
			if a.StringValue != "" {
				v.StringValue = aws.String(a.StringValue)
			}
			attrs[k] = v
		}
		l := letter{id: m.ID, body: m.Body, raw: m}
		if rec, _, _, err := sqssink.DeadLetterOf(m.Body, attrs); err == nil {
			l.rec = rec
		}
		var ev struct{ Detail struct{ N int } }
		json.Unmarshal([]byte(m.Body), &ev)
		l.n = ev.Detail.N
		out = append(out, l)
	}
	return out
}

// redrive runs switchyard redrive in process.
func (w *redriveWorld) redrive(ctx context.Context, args ...string) (int, string, string) {
	w.t.Helper()
	var out, errb strings.Builder
	code := run(ctx, append([]string{"redrive", "-c", w.file}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// count in a summary: the number on the line that starts with what.
func summaryCount(t *testing.T, summary, what string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(what) + `:\s+(\d+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no %q in the summary:\n%s", what, summary)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// The scenario: the outage is over but billing still fails for
// some invoices. Every other dead letter is delivered to the target that
// failed it, once, with its delivery id and its payload as rendered (text
// stays text); the failing ones are back in the queue with their attempts
// counted and the new error. Run again, with a copy of delivered dead
// letters put back, the ledger keeps those from being sent twice.
func TestRedrive_SendsEachDeadLetterBackOnce(t *testing.T) {
	const perKind = 20
	w := newRedriveWorld(t, perKind)
	failing := func(fn string, n int) bool { return fn == "billing" && n%5 == 0 }
	w.fns.set(failing, 0)
	before := map[string]letter{}
	for _, l := range w.letters() {
		if l.rec == nil || l.rec.Attempts != 2 {
			t.Fatalf("a dead letter of the daemon: %+v", l)
		}
		before[l.rec.Target+fmt.Sprint(l.n)] = l
	}

	code, out, errOut := w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s")
	t.Logf("redrive summary:\n%s", out)
	if code != exitFail {
		t.Errorf("exit %d, want 1 (some failed again); stderr:\n%s", code, errOut)
	}
	const failed = perKind / 5
	if got := summaryCount(t, out, "redriven"); got != 3*perKind-failed {
		t.Errorf("redriven %d, want %d", got, 3*perKind-failed)
	}
	if got := summaryCount(t, out, "failed again"); got != failed {
		t.Errorf("failed again %d, want %d", got, failed)
	}
	for _, fn := range []string{"billing", "shipping", "notes"} {
		ok := w.fns.succeeded(fn)
		for _, c := range w.fns.of(fn)[perKind:] {
			first := w.first[fn][c.n]
			if c.deliveryID != first.deliveryID || c.payload != first.payload {
				t.Errorf("%s %d: redriven as delivery %s with %s, the daemon made delivery %s with %s", fn, c.n, c.deliveryID, c.payload, first.deliveryID, first.payload)
			}
		}
		for n, first := range w.first[fn] {
			want := 1
			if failing(fn, n) {
				want = 0
			}
			if ok[first.deliveryID] != want {
				t.Errorf("%s %d: delivered %d times, want %d", fn, n, ok[first.deliveryID], want)
			}
		}
	}
	if p := w.first["notes"][3].payload; p != `"note 3"` {
		t.Errorf("a text payload went as %s", p)
	}
	after := w.letters()
	if len(after) != failed {
		t.Fatalf("%d dead letters left, want %d", len(after), failed)
	}
	for _, l := range after {
		old := before["billing"+fmt.Sprint(l.n)]
		if l.rec == nil || l.rec.Target != "billing" || !failing("billing", l.n) || l.rec.Attempts != 4 || l.rec.Rule != "invoices" ||
			!strings.Contains(l.rec.LastError, "cannot take") || l.rec.FirstError != old.rec.FirstError ||
			!l.rec.FirstAttempt.Equal(old.rec.FirstAttempt) || !l.rec.LastAttempt.After(old.rec.LastAttempt) || l.body != old.body {
			t.Errorf("dead letter after the redrive: %+v (before: %+v)", l.rec, old.rec)
		}
		if l.raw.State != awstest.MessageVisible {
			t.Errorf("dead letter %s is %v, want visible", l.id, l.raw.State)
		}
	}

	// Copies of three delivered dead letters come back (a dead letter
	// written twice, say): the ledger has them delivered.
	var again []string
	for _, key := range []string{"shipping1", "notes2", "billing3"} {
		l := before[key]
		attrs := map[string]awstest.Attribute{}
		maps.Copy(attrs, l.raw.Attributes)
		id, err := w.srv.SQS().Send("dlq", awstest.Message{Body: l.body, Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, id)
	}
	calls := len(w.fns.of("billing")) + len(w.fns.of("shipping")) + len(w.fns.of("notes"))
	code, out, _ = w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s")
	t.Logf("second run:\n%s", out)
	if got := summaryCount(t, out, "already delivered"); got != 3 {
		t.Errorf("already delivered %d, want 3", got)
	}
	if got := summaryCount(t, out, "failed again"); got != failed || code != exitFail {
		t.Errorf("failed again %d (exit %d), want %d (exit 1)", got, code, failed)
	}
	if got := len(w.fns.of("billing")) + len(w.fns.of("shipping")) + len(w.fns.of("notes")); got != calls+2*failed {
		t.Errorf("%d calls in the second run, want %d (the failing ones' two attempts each)", got-calls, 2*failed)
	}
	for _, l := range w.letters() {
		if slices.Contains(again, l.id) {
			t.Errorf("the copy %s of a delivered dead letter is still there", l.id)
		}
		if l.rec.Attempts != 6 {
			t.Errorf("dead letter of %d after two runs: %d attempts, want 6", l.n, l.rec.Attempts)
		}
	}
}

// A dry run lists what it would do and changes nothing: no call, no
// delete, every dead letter visible again as it was.
func TestRedrive_DryRunChangesNothing(t *testing.T) {
	w := newRedriveWorld(t, 5)
	before := w.letters()
	calls := w.fns.ofAll()
	code, out, errOut := w.redrive(t.Context(), "--from", "dlq", "--dry-run", "--rate", "1000/s")
	t.Logf("dry run:\n%s", out)
	if code != exitOK {
		t.Errorf("exit %d; stderr:\n%s", code, errOut)
	}
	if got := strings.Count(out, ": would redrive: rule "); got != 15 || summaryCount(t, out, "redriven (would be)") != 15 {
		t.Errorf("%d would-redrive lines, want 15", got)
	}
	for _, l := range before {
		if !strings.Contains(out, l.id+": would redrive: rule "+l.rec.Rule+" → "+l.rec.Target+", delivery "+w.first[l.rec.Target][l.n].deliveryID+", attempts 2") {
			t.Errorf("no line for %s (%s %d)", l.id, l.rec.Target, l.n)
		}
	}
	if got := w.fns.ofAll(); got != calls {
		t.Errorf("%d calls in a dry run", got-calls)
	}
	after := w.letters()
	if len(after) != len(before) {
		t.Fatalf("%d dead letters after a dry run, %d before", len(after), len(before))
	}
	for i, l := range after {
		if l.id != before[i].id || l.body != before[i].body || !maps.EqualFunc(l.raw.Attributes, before[i].raw.Attributes, func(a, b awstest.Attribute) bool {
			return a.DataType == b.DataType && a.StringValue == b.StringValue
		}) || l.raw.State != awstest.MessageVisible {
			t.Errorf("dead letter %d changed: %+v, was %+v", i, l.raw, before[i].raw)
		}
	}
}

// ofAll counts every function's calls.
func (f *fleetOfFunctions) ofAll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, cs := range f.calls {
		n += len(cs)
	}
	return n
}

// --pattern redrives only the dead letters it matches, against the record
// and the body; the others stay, counted as skipped by pattern.
func TestRedrive_PatternRedrivesOnlyWhatMatches(t *testing.T) {
	w := newRedriveWorld(t, 10)
	code, out, errOut := w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s",
		"--pattern", `{"target": ["shipping", "notes"], "attempts": [2], "body": {"detail": {"n": [{"numeric": ["<", 4]}]}}}`)
	t.Logf("summary:\n%s", out)
	if code != exitOK {
		t.Errorf("exit %d, want 0 (skipped by pattern is no failure); stderr:\n%s", code, errOut)
	}
	if summaryCount(t, out, "redriven") != 8 || summaryCount(t, out, "skipped by pattern") != 22 {
		t.Errorf("want 8 redriven (shipping and notes 0-3), 22 skipped by pattern")
	}
	for _, fn := range []string{"billing", "shipping", "notes"} {
		ok := w.fns.succeeded(fn)
		for n, first := range w.first[fn] {
			want := 0
			if fn != "billing" && n < 4 {
				want = 1
			}
			if ok[first.deliveryID] != want {
				t.Errorf("%s %d delivered %d times, want %d", fn, n, ok[first.deliveryID], want)
			}
		}
	}
	left := w.letters()
	if len(left) != 22 {
		t.Errorf("%d dead letters left, want 22", len(left))
	}
	for _, l := range left {
		if l.rec.Target != "billing" && l.n < 4 {
			t.Errorf("a redriven dead letter stayed: %s %d", l.rec.Target, l.n)
		}
	}
}

// --to sends dead letters to another target, with their own delivery ids
// and payloads.
func TestRedrive_ToSendsToAnotherTarget(t *testing.T) {
	w := newRedriveWorld(t, 4)
	code, out, _ := w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s", "--to", "spare", "--pattern", `{"rule": ["invoices", "notes"]}`)
	t.Logf("summary:\n%s", out)
	if code != exitOK || summaryCount(t, out, "redriven") != 8 {
		t.Errorf("exit %d, want 0 and 8 redriven", code)
	}
	got := map[string]string{}
	for _, c := range w.fns.of("spare") {
		got[c.deliveryID] = c.payload
	}
	for _, fn := range []string{"billing", "notes"} {
		for n, first := range w.first[fn] {
			if p, ok := got[first.deliveryID]; !ok || p != first.payload {
				t.Errorf("%s %d: spare got %q under its delivery id, want %q", fn, n, p, first.payload)
			}
		}
	}
	if len(w.fns.of("spare")) != 8 || len(w.fns.of("billing")) != 8 || len(w.letters()) != 4 {
		t.Errorf("spare called %d times, billing %d; %d dead letters left (want 8, the daemon's 8, 4 of shipping)",
			len(w.fns.of("spare")), len(w.fns.of("billing")), len(w.letters()))
	}
}

// A dead letter naming a target the config no longer has is skipped with
// the reason, unless --to names one; a message that is not a switchyard
// dead letter is skipped and stays, whatever --to says.
func TestRedrive_SkipsWhatItCannotRedrive(t *testing.T) {
	w := newRedriveWorld(t, 3)
	if _, err := w.srv.SQS().Send("dlq", awstest.Message{Body: `{"hello": "not a dead letter"}`}); err != nil {
		t.Fatal(err)
	}
	// notes is gone from the config; its rule now goes to spare.
	w.file = w.writeConfig("gone.yaml", strings.Replace(redriveTargets, "  - {name: notes, type: lambda, function: notes}\n", "", 1)+
		strings.Replace(redriveRules, "targets: [notes]", "targets: [spare]", 1))
	code, out, errOut := w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s")
	t.Logf("summary:\n%s\nstderr:\n%s", out, errOut)
	if code != exitFail {
		t.Errorf("exit %d, want 1", code)
	}
	if summaryCount(t, out, "redriven") != 6 || summaryCount(t, out, "skipped") != 4 ||
		!strings.Contains(out, `3  target "notes" is not in the config: --to names one to send its dead letters to`) ||
		!strings.Contains(out, "1  unreadable: not a switchyard dead letter: no switchyard-dead-letter or switchyard-attempts attribute") {
		t.Errorf("the summary does not count and explain the skipped ones")
	}
	if !strings.Contains(errOut, "dead letter skipped: it stays") {
		t.Errorf("no log line for a skipped dead letter")
	}
	left := w.letters()
	if len(left) != 4 {
		t.Fatalf("%d dead letters left, want the 3 of notes and the stranger", len(left))
	}
	for _, l := range left {
		if l.raw.State != awstest.MessageVisible {
			t.Errorf("%s left %s, want visible", l.id, l.raw.State)
		}
	}
	code, out, _ = w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s", "--to", "spare")
	t.Logf("with --to spare:\n%s", out)
	if code != exitFail || summaryCount(t, out, "redriven") != 3 || summaryCount(t, out, "skipped") != 1 {
		t.Errorf("exit %d; want notes' three redriven to spare and the stranger skipped", code)
	}
	for n, first := range w.first["notes"] {
		if w.fns.succeeded("spare")[first.deliveryID] != 1 {
			t.Errorf("note %d did not reach spare under its delivery id", n)
		}
	}
	if ls := w.letters(); len(ls) != 1 || ls[0].body != `{"hello": "not a dead letter"}` {
		t.Errorf("left: %+v, want the stranger only", ls)
	}
}

// Interrupted, a redrive finishes what is in flight and deletes nothing
// that was not delivered; what it did not take is visible at once for the
// next run, which finishes the job with nothing delivered twice.
func TestRedrive_InterruptedDeletesNothingUndelivered(t *testing.T) {
	w := newRedriveWorld(t, 10)
	w.fns.set(nil, 50*time.Millisecond)
	base := w.fns.ofAll()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var code int
	var out string
	go func() {
		defer close(done)
		code, out, _ = w.redrive(ctx, "--from", "dlq", "--rate", "40/s")
	}()
	deadline := time.Now().Add(15 * time.Second)
	for w.fns.ofAll() < base+5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	t.Logf("interrupted:\n%s", out)
	if code != exitFail || !strings.Contains(out, "interrupted: nothing deleted that was not delivered") {
		t.Errorf("exit %d, want 1 and the interruption in the summary", code)
	}
	delivered := map[string]bool{}
	for fn := range w.first {
		for id := range w.fns.succeeded(fn) {
			delivered[id] = true
		}
	}
	left := w.letters()
	if len(delivered)+len(left) != 30 || len(delivered) == 0 || len(left) == 0 {
		t.Errorf("%d delivered and %d dead letters left, want 30 in all, some of each", len(delivered), len(left))
	}
	for _, l := range left {
		if delivered[w.first[l.rec.Target][l.n].deliveryID] {
			t.Errorf("%s %d was delivered and its dead letter is still there", l.rec.Target, l.n)
		}
		if l.raw.State != awstest.MessageVisible {
			t.Errorf("%s is %s after the run, want visible", l.id, l.raw.State)
		}
	}
	code, out, _ = w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s")
	if code != exitOK || summaryCount(t, out, "redriven") != len(left) || len(w.letters()) != 0 {
		t.Errorf("the next run: exit %d, summary\n%s", code, out)
	}
	for fn := range w.first {
		for n, first := range w.first[fn] {
			if got := w.fns.succeeded(fn)[first.deliveryID]; got != 1 {
				t.Errorf("%s %d delivered %d times", fn, n, got)
			}
		}
	}
}

// Every mistake on the command line is an error that says what is wrong,
// with exit 2.
func TestRedrive_BadInput(t *testing.T) {
	awsEnv(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	w := &redriveWorld{t: t, srv: srv, store: t.TempDir()}
	w.file = w.writeConfig("switchyard.yaml", strings.Replace(redriveTargets, "policies:", "  - {name: audit, type: nats, subject: audit.x}\npolicies:", 1)+redriveRules)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no --from", nil, "--from is required"},
		{"an unknown --from", []string{"--from", "dql"}, `--from: "dql" is neither a target of ` + w.file + ` that holds dead letters (dlq) nor an SQS queue URL`},
		{"a lambda --from", []string{"--from", "billing"}, "--from: target billing is of type lambda: dead letters are read back from sqs targets and nats targets with jetstream: true"},
		{"a core NATS --from", []string{"--from", "audit"}, "--from: target audit publishes with core NATS, which keeps nothing to read back"},
		{"an unknown --to", []string{"--from", "dlq", "--to", "nobody"}, `--to "nobody" is not a target of ` + w.file + " (targets: audit, billing, dlq, notes, shipping, spare)"},
		{"a bad --rate", []string{"--from", "dlq", "--rate", "fast"}, `--rate: invalid rate "fast"`},
		{"a zero --rate", []string{"--from", "dlq", "--rate", "0/s"}, "the count must be a positive number"},
		{"a negative --max", []string{"--from", "dlq", "--max", "-1"}, "--max must be 0 (no limit) or more, got -1"},
		{"an invalid --pattern", []string{"--from", "dlq", "--pattern", `{"target": "billing"}`}, "--pattern: target: "},
		{"a --pattern that is not JSON", []string{"--from", "dlq", "--pattern", `target=billing`}, "--pattern: "},
		{"a missing --pattern file", []string{"--from", "dlq", "--pattern", "@/nonexistent/pattern.json"}, "no such file"},
		{"an argument", []string{"--from", "dlq", "extra"}, `unexpected argument "extra"`},
		{"a bad log level", []string{"--from", "dlq", "-log-level", "loud"}, `invalid -log-level "loud"`},
		{"a bad log format", []string{"--from", "dlq", "-log-format", "xml"}, `invalid -log-format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := w.redrive(t.Context(), tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want 2 and %q", code, errOut, out, tc.want)
			}
		})
	}
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"help", "redrive"}, strings.NewReader(""), &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "-from string") || !strings.Contains(out.String(), "-dry-run") {
		t.Errorf("help redrive: exit %d\n%s", code, out.String())
	}
	out.Reset()
	run(t.Context(), []string{"help"}, strings.NewReader(""), &out, &errb)
	if !strings.Contains(out.String(), "redrive       send dead letters back to the targets that failed them") {
		t.Errorf("help does not list redrive:\n%s", out.String())
	}
}

// Dead letters of a nats target with jetstream: true are read back from
// its stream: those delivered are deleted from it, those that fail again
// are published again with their attempts counted, and a stranger on the
// subject stays. The ledger is the cluster's (nats.url).
func TestRedrive_FromAJetStreamStream(t *testing.T) {
	ns := natstest.Run(t)
	js := ns.JetStream()
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEAD", Subjects: []string{"dead.>"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.Msgs)
	}
	targets := strings.Replace(redriveTargets, `  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}`,
		`  - {name: dlq, type: nats, subject: dead.letters, jetstream: true, policy: last}`, 1)
	w := newRedriveWorldOn(t, 5, ns.URL(), targets, func(*redriveWorld) int { return msgs() })
	if _, err := js.Publish(ctx, "dead.letters", []byte(`{"not": "a dead letter"}`)); err != nil {
		t.Fatal(err)
	}
	w.fns.set(func(fn string, n int) bool { return fn == "shipping" && n == 2 }, 0)
	code, out, errOut := w.redrive(ctx, "--from", "dlq", "--rate", "1000/s")
	t.Logf("summary:\n%s", out)
	if code != exitFail || summaryCount(t, out, "redriven") != 14 || summaryCount(t, out, "failed again") != 1 || summaryCount(t, out, "skipped") != 1 ||
		!strings.Contains(out, "redrive from jetstream stream DEAD (dead.letters)") {
		t.Errorf("exit %d; stderr:\n%s", code, errOut)
	}
	for fn, firsts := range w.first {
		for n, first := range firsts {
			want := 1
			if fn == "shipping" && n == 2 {
				want = 0
			}
			if got := w.fns.succeeded(fn)[first.deliveryID]; got != want {
				t.Errorf("%s %d delivered %d times, want %d", fn, n, got, want)
			}
		}
	}
	if got := msgs(); got != 2 {
		t.Fatalf("%d messages in the stream, want the stranger and the new dead letter", got)
	}
	var found bool
	for seq := uint64(1); seq < 100; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if rec, body, err := router.ParseDeadLetterDocument(m.Data); err == nil {
			found = true
			if rec.Target != "shipping" || rec.Attempts != 4 || !strings.Contains(rec.LastError, "cannot take 2") || numberOf(body) != 2 {
				t.Errorf("the new dead letter: %+v %s", rec, body)
			}
		}
	}
	if !found {
		t.Error("no new dead letter in the stream")
	}
}

// --rate bounds the sends per second, --max the dead letters taken; what
// --max leaves stays, and is no failure.
func TestRedrive_RateAndMax(t *testing.T) {
	w := newRedriveWorld(t, 10)
	base := w.fns.ofAll()
	begin := time.Now()
	code, out, _ := w.redrive(t.Context(), "--from", "dlq", "--rate", "20/s", "--max", "21")
	took := time.Since(begin)
	t.Logf("--rate 20/s --max 21 took %v:\n%s", took.Round(time.Millisecond), out)
	if code != exitOK || summaryCount(t, out, "redriven") != 21 || !strings.Contains(out, "(beyond --max)") {
		t.Errorf("exit %d, want 0 and 21 redriven, the rest left beyond --max", code)
	}
	if got := w.fns.ofAll() - base; got != 21 || len(w.letters()) != 9 {
		t.Errorf("%d calls and %d dead letters left, want 21 and 9", got, len(w.letters()))
	}
	// 21 sends at 20/s, one at a time: the last no sooner than a second
	// after the first.
	if took < time.Second {
		t.Errorf("21 sends at --rate 20/s took %v", took)
	}
	for _, l := range w.letters() {
		if l.raw.State != awstest.MessageVisible {
			t.Errorf("%s left %s, want visible", l.id, l.raw.State)
		}
	}
}

// With the embedded NATS server, a redrive on the host of a running
// daemon uses the daemon's server (its ledger), reached at nats.listen:
// its store cannot be opened twice. With nats.listen none, a daemon that
// answers on admin.listen stops the redrive.
func TestRedrive_SharesTheEmbeddedServerOfARunningDaemon(t *testing.T) {
	w := newRedriveWorld(t, 2)
	daemonNATS := natstest.Run(t) // stands for the daemon's embedded server
	l, err := ledger.Open(t.Context(), daemonNATS.JetStream(), ledgerDefaults())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{w.first["billing"][0].deliveryID, w.first["notes"][1].deliveryID} {
		if err := l.Put(t.Context(), id, router.Record{State: router.Delivered}); err != nil {
			t.Fatal(err)
		}
	}
	w.nats = fmt.Sprintf("nats: {store_dir: %q, listen: %q}\n", t.TempDir(), strings.TrimPrefix(daemonNATS.URL(), "nats://"))
	w.file = w.writeConfig("listen.yaml", redriveTargets+redriveRules)
	code, out, errOut := w.redrive(t.Context(), "--from", "dlq", "--rate", "1000/s")
	t.Logf("summary:\n%s", out)
	if code != exitOK || summaryCount(t, out, "already delivered") != 2 || summaryCount(t, out, "redriven") != 4 {
		t.Errorf("exit %d, want the two the daemon's ledger has found delivered; stderr:\n%s", code, errOut)
	}

	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer admin.Close()
	w.nats = fmt.Sprintf("nats: {store_dir: %q, listen: none}\n", t.TempDir())
	w.file = w.writeConfig("none.yaml", redriveTargets+redriveRules)
	cfg, _ := os.ReadFile(w.file)
	os.WriteFile(w.file, []byte(strings.Replace(string(cfg), `admin: {listen: "127.0.0.1:0"}`, fmt.Sprintf("admin: {listen: %q}", strings.TrimPrefix(admin.URL, "http://")), 1)), 0o644)
	code, _, errOut = w.redrive(t.Context(), "--from", "dlq")
	if code != exitFail || !strings.Contains(errOut, "with the embedded NATS server, and nats.listen is none: its store") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// ledgerDefaults is the ledger's config with its defaults.
func ledgerDefaults() ledger.Config {
	var c ledger.Config
	c.SetDefaults()
	return c
}

// On a terminal the counts are one line redrawn in place, and log lines
// are written above it; to a pipe, each report is a line of its own.
func TestRedriveProgress_RedrawsInPlaceOnATerminal(t *testing.T) {
	st := &redrive.Stats{}
	st.Received.Store(12)
	st.Redriven.Store(10)
	var term strings.Builder
	p := &progressWriter{w: &term, term: true}
	p.show(st)
	p.Write([]byte("a log line\n"))
	st.Redriven.Store(11)
	p.show(st)
	const line = "redrive: 12 taken, 0 in flight: %d redriven, 0 already delivered, 0 failed again, 0 skipped by pattern, 0 skipped"
	want := "\r\033[K" + fmt.Sprintf(line, 10) + "\r\033[Ka log line\n" + fmt.Sprintf(line, 10) + "\r\033[K" + fmt.Sprintf(line, 11)
	if term.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", term.String(), want)
	}
	var pipe strings.Builder
	p = &progressWriter{w: &pipe}
	p.show(st)
	p.Write([]byte("a log line\n"))
	p.show(st)
	if want := fmt.Sprintf(line, 11) + "\na log line\n" + fmt.Sprintf(line, 11) + "\n"; pipe.String() != want {
		t.Errorf("pipe:\n%q\nwant\n%q", pipe.String(), want)
	}
}

// A dead-letter queue that does not exist ends the run at once, naming it.
func TestRedrive_AQueueThatDoesNotExistEndsTheRun(t *testing.T) {
	awsEnv(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	w := &redriveWorld{t: t, srv: srv, store: t.TempDir()}
	w.file = w.writeConfig("switchyard.yaml", redriveTargets+redriveRules)
	begin := time.Now()
	code, _, errOut := w.redrive(t.Context(), "--from", "dlq")
	if code != exitFail || !strings.Contains(errOut, "switchyard redrive: sqs queue "+srv.SQS().QueueURL("dlq")+": receive: ") ||
		!strings.Contains(errOut, "The specified queue does not exist") || time.Since(begin) > 5*time.Second {
		t.Errorf("exit %d after %v, stderr:\n%s", code, time.Since(begin), errOut)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
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

	"github.com/switchyard-dev/switchyard/internal/awstest"
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
			if f.delay > 0 {
				select {
				case <-time.After(f.delay):
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
			case f.fail != nil && f.fail(name, c.n):
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
	t     *testing.T
	srv   *awstest.Server
	fns   *fleetOfFunctions
	file  string
	store string
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
	awsEnv(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	for _, q := range []string{"jobs", "dlq"} {
		if _, err := srv.SQS().CreateQueue(q, nil); err != nil {
			t.Fatal(err)
		}
	}
	w := &redriveWorld{t: t, srv: srv, fns: newFunctions(t, srv), store: t.TempDir(), first: map[string]map[int]fnCall{}}
	w.file = w.writeConfig("switchyard.yaml", redriveTargets+redriveRules)
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
	for w.count("dlq") < total || !queueEmpty(t, srv, "jobs")() {
		if time.Now().After(deadline) {
			d.stop()
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the daemon dead-lettered %d of %d messages:\n%s", w.count("dlq"), total, stderr.String())
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
	cfg := "version: 1\nadmin: {listen: \"127.0.0.1:0\"}\n" + fmt.Sprintf("nats: {store_dir: %q}\n", w.store) + `aws: {region: us-east-1, endpoints: {sqs: "{{URL}}", lambda: "{{URL}}"}}
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
	w.fns.fail = failing
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

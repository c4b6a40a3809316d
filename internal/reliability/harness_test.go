package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
)

// daemonBinary builds switchyard once, as it is shipped (no race detector,
// so that its memory is what a user sees).
func daemonBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the reliability suite builds and runs the daemon")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads memory from /proc")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "switchyard-reliability")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(binDir, "switchyard")
		out, err := exec.Command("go", "build", "-o", binary, "../../cmd/switchyard").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// world is the AWS the daemon talks to, and what its function saw.
type world struct {
	t   *testing.T
	srv *awstest.Server

	mu        sync.Mutex
	delivered map[string]map[int]int // function → message number → successful invocations
	attempts  map[string]map[int]int // function → message number → invocations of any outcome
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, srv: awstest.NewTestServer(t, awstest.Options{}), delivered: map[string]map[int]int{}, attempts: map[string]map[int]int{}}
	for _, q := range []string{"jobs", "dlq"} {
		if _, err := w.srv.SQS().CreateQueue(q, nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// number reads the message number from a payload {"n": N}.
func number(payload []byte) int {
	var p struct{ N int }
	json.Unmarshal(payload, &p)
	return p.N
}

// function registers name with a handler deciding each call's outcome.
// Deliveries and attempts are recorded per message number.
func (w *world) function(name string, concurrency int, decide func(ctx context.Context, n int) awstest.Result) {
	w.t.Helper()
	w.mu.Lock()
	if w.delivered[name] == nil {
		w.delivered[name], w.attempts[name] = map[int]int{}, map[int]int{}
	}
	w.mu.Unlock()
	err := w.srv.Lambda().Register(awstest.Function{Name: name, Concurrency: concurrency, Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
		n := number(inv.Payload)
		res := decide(ctx, n)
		w.mu.Lock()
		w.attempts[name][n]++
		if res.Err == nil && res.FunctionError == "" {
			w.delivered[name][n]++
		}
		w.mu.Unlock()
		return res
	}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// send puts messages 0..n-1 in the jobs queue.
func (w *world) send(n int) {
	w.t.Helper()
	for i := range n {
		if _, err := w.srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// deliveredCount is how many distinct messages fn has taken.
func (w *world) deliveredCount(fn string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.delivered[fn])
}

// tally counts, over messages 0..total-1, those fn never took (lost unless
// still queued) and those it took more than once.
func (w *world) tally(fn string, total int, queued map[int]bool) (lost, dups, maxDup int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range total {
		n := w.delivered[fn][i]
		if n == 0 && !queued[i] {
			lost++
		}
		if n > 1 {
			dups++
			maxDup = max(maxDup, n)
		}
	}
	return lost, dups, maxDup
}

// inQueue returns the numbers of the messages still in a queue.
func (w *world) inQueue(q string) map[int]bool { return w.inQueueLocked(q) }

// inQueueLocked is inQueue, for a caller holding w.mu (it reads only the
// queue).
func (w *world) inQueueLocked(q string) map[int]bool {
	ms, err := w.srv.SQS().Messages(q)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[int]bool{}
	for _, m := range ms {
		var ev struct {
			Detail struct{ N int } `json:"detail"`
		}
		json.Unmarshal([]byte(m.Body), &ev)
		out[ev.Detail.N] = true
	}
	return out
}

func (w *world) queued(q string) int {
	c, err := w.srv.SQS().Counts(q)
	if err != nil {
		w.t.Fatal(err)
	}
	return c.Visible + c.InFlight + c.Delayed
}

// deadLetters returns the message numbers in the DLQ and their attributes.
func (w *world) deadLetters() map[int]map[string]awstest.Attribute {
	ms, err := w.srv.SQS().Messages("dlq")
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[int]map[string]awstest.Attribute{}
	for _, m := range ms {
		var ev struct {
			Detail struct{ N int } `json:"detail"`
		}
		json.Unmarshal([]byte(m.Body), &ev)
		out[ev.Detail.N] = m.Attributes
	}
	return out
}

// config is the daemon's config: the common part, then the scenario's.
func (w *world) config(body string) string {
	return strings.ReplaceAll(`version: 1
admin: {listen: "127.0.0.1:0"}
aws: {region: us-east-1, endpoints: {sqs: "{{URL}}", lambda: "{{URL}}"}}
`+body, "{{URL}}", w.srv.URL())
}

// proc is a running daemon.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	exited chan error
	peak   int64 // peak RSS in KiB, sampled
	mu     sync.Mutex
	stop   chan struct{}
}

// start runs the daemon on config.
func start(t *testing.T, config string) *proc {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBinary(t), "run", "-c", file)
	cmd.Dir = workDir(t) // its state (./data/nats) survives a restart within the test
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	p := &proc{t: t, cmd: cmd, stderr: &syncbuf.Buffer{}, exited: make(chan error, 1), stop: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait(); close(p.stop) }()
	go p.sample()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.stop
		if t.Failed() {
			t.Logf("daemon log (last 3 KB):\n%s", tail(p.stderr.String(), 3072))
		}
	})
	return p
}

// workDirs are the tests' working directories for the daemon, by test.
var workDirs sync.Map

// workDir is the directory the test's daemons run in: the same for each
// restart, so that what they keep on disk carries over.
func workDir(t *testing.T) string {
	if d, ok := workDirs.Load(t); ok {
		return d.(string)
	}
	d := t.TempDir()
	workDirs.Store(t, d)
	return d
}

// sample records the daemon's peak resident memory every 50ms.
func (p *proc) sample() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		if kb := rss(p.cmd.Process.Pid); kb > 0 {
			p.mu.Lock()
			p.peak = max(p.peak, kb)
			p.mu.Unlock()
		}
	}
}

// peakRSS returns the peak resident memory seen, in MiB.
func (p *proc) peakRSS() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.peak) / 1024
}

// rss reads VmRSS (KiB) from /proc.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// terminate sends SIGTERM and waits for the exit, returning how long it
// took.
func (p *proc) terminate(within time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(within):
		p.t.Fatalf("the daemon did not exit within %v of SIGTERM", within)
	}
	return time.Since(start)
}

// kill sends SIGKILL: a crash.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ok is a successful invocation.
var ok = awstest.Result{}

// unavailable is a 503 from Lambda.
var unavailable = awstest.Result{Err: &awstest.APIError{Status: 503, Code: "ServiceException", Message: "outage"}}

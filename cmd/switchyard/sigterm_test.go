package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// buildBinary builds switchyard once per test run, as a user would run it.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "switchyard")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// binaryEnv gives the built daemon test credentials and a region, and
// keeps it away from the machine's own AWS files (dir holds none).
func binaryEnv(dir string) []string {
	return append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
}

// SIGTERM during a run of 1,000 messages: the process exits within the
// grace period, and every message is either delivered and deleted, or
// still in the queue; none is deleted without being delivered, and none is
// delivered twice.
func TestRun_SIGTERMDrainsWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", map[string]string{"VisibilityTimeout": "30"})
	var mu sync.Mutex
	delivered := map[int]int{} // id → completed invocations
	srv.Lambda().Register(awstest.Function{Name: "work", Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
		var p struct{ N int }
		json.Unmarshal(inv.Payload, &p)
		wait := 20 * time.Millisecond
		if p.N%50 == 7 {
			wait = time.Minute // longer than the grace period: these get nacked
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return awstest.Result{Err: &awstest.APIError{Status: 500, Code: "ServiceException", Message: "cancelled"}}
		}
		mu.Lock()
		delivered[p.N]++
		mu.Unlock()
		return awstest.Result{}
	}})
	const total = 1000
	for i := range total {
		if _, err := srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "switchyard.yaml")
	os.WriteFile(config, []byte(withAdmin(strings.ReplaceAll(`
version: 1
aws: {region: us-east-1, endpoints: {sqs: "{{URL}}", lambda: "{{URL}}"}}
max_in_flight: 64
shutdown_grace: 3s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, pollers: 2}
targets:
  - {name: work, type: lambda, function: work}
policies:
  default: {concurrency: 32, timeout: 2m}
rules:
  - {name: all, pattern: {source: [load]}, input: {paths: {n: $.detail.n}, template: '{"N": <n>}'}, targets: [work]}
`, "{{URL}}", srv.URL()))), 0o644)

	cmd := exec.Command(bin, "run", "-c", config)
	cmd.Env, cmd.Dir = binaryEnv(dir), dir
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("daemon log (last 4 KB):\n%s", tail(stderr.String(), 4096))
		}
	}()

	waitFor(t, "300 deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= 300
	})
	cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the daemon did not exit after SIGTERM")
	}
	took := time.Since(start)
	if took > 3*time.Second+time.Second {
		t.Errorf("exited %v after SIGTERM, want within the 3s grace period", took)
	}

	// Every message is delivered and deleted, or still in the queue.
	msgs, _ := srv.SQS().Messages("jobs")
	inQueue := map[int]bool{}
	for _, m := range msgs {
		var ev struct {
			Detail struct{ N int } `json:"detail"`
		}
		json.Unmarshal([]byte(m.Body), &ev)
		inQueue[ev.Detail.N] = true
	}
	mu.Lock()
	defer mu.Unlock()
	lost, dup := 0, 0
	for i := range total {
		if delivered[i] == 0 && !inQueue[i] {
			lost++
		}
		if delivered[i] > 1 {
			dup++
		}
	}
	counts, _ := srv.SQS().Counts("jobs")
	t.Logf("SIGTERM after %d delivered; exited in %v; delivered %d, still queued %d (visible %d, in flight %d), lost %d, duplicates %d",
		300, took.Round(time.Millisecond), len(delivered), len(msgs), counts.Visible, counts.InFlight, lost, dup)
	if lost > 0 {
		t.Errorf("%d messages were deleted without being delivered", lost)
	}
	if dup > 0 {
		t.Errorf("%d messages were delivered twice", dup)
	}
	if len(delivered)+len(msgs) < total {
		t.Errorf("delivered %d + queued %d < %d", len(delivered), len(msgs), total)
	}
	nacked := 0
	for _, m := range msgs {
		if m.ReceiveCount > 0 {
			nacked++
		}
	}
	if nacked == 0 {
		t.Error("no message was in flight at the end of the grace period: the test did not exercise nacking")
	}
	if !strings.Contains(stderr.String(), "shutdown grace period over") {
		t.Error("no log of the grace period ending")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// A second signal exits at once, without waiting for the grace period.
func TestRun_SecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	started := make(chan struct{}, 1)
	srv.Lambda().Register(awstest.Function{Name: "stuck", Handler: func(ctx context.Context, _ awstest.Invocation) awstest.Result {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return awstest.Result{}
	}})
	srv.SQS().Send("jobs", awstest.Message{Body: `{"source":"s","detail-type":"x","detail":{}}`})
	dir := t.TempDir()
	config := filepath.Join(dir, "switchyard.yaml")
	os.WriteFile(config, []byte(withAdmin(strings.ReplaceAll(`
version: 1
aws: {region: us-east-1, endpoints: {sqs: "{{URL}}", lambda: "{{URL}}"}}
shutdown_grace: 1m
sources: [{name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s}]
targets: [{name: stuck, type: lambda, function: stuck}]
rules: [{name: all, pattern: {source: [s]}, targets: [stuck]}]
`, "{{URL}}", srv.URL()))), 0o644)
	cmd := exec.Command(bin, "run", "-c", config)
	cmd.Env, cmd.Dir = binaryEnv(dir), dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the delivery never started")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		t.Fatalf("exited on the first signal (%v) although a delivery runs and the grace period is 1m", err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("exited %v after the second signal", took)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the second signal did not end the process")
	}
	// The message was never acked: it is still in the queue.
	if c, _ := srv.SQS().Counts("jobs"); c.Visible+c.InFlight != 1 {
		t.Errorf("queue counts %+v: the message must still be there", c)
	}
}

// SIGHUP reloads the config of the running binary; a bad config is
// rejected and the process goes on with the old one.
func TestRun_SIGHUPReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "fa"})
	srv.Lambda().Register(awstest.Function{Name: "fb"})
	dir := t.TempDir()
	config := filepath.Join(dir, "switchyard.yaml")
	write := func(target string) {
		os.WriteFile(config, []byte(withAdmin(strings.ReplaceAll(reloadConfig(target), "{{URL}}", srv.URL()))), 0o644)
	}
	write("a")
	var stderr syncbuf.Buffer
	cmd := exec.Command(bin, "run", "-c", config)
	cmd.Stderr = &stderr
	cmd.Env, cmd.Dir = binaryEnv(dir), dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon log:\n%s", stderr.String())
		}
	})
	send := func(id string) {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(id, "k", 1)})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	}
	send("e-1")
	write("b")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), `"msg":"config reloaded"`) })
	send("e-2")
	write("nowhere")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the rejection", func() bool { return strings.Contains(stderr.String(), `"msg":"config reload rejected`) })
	if !strings.Contains(stderr.String(), `unknown target \"nowhere\"`) {
		t.Errorf("the rejection does not carry the validation error:\n%s", stderr.String())
	}
	send("e-3")
	if a, b := len(srv.Lambda().Invocations("fa")), len(srv.Lambda().Invocations("fb")); a != 1 || b != 2 {
		t.Errorf("invocations: fa %d, fb %d; want 1 before the reload, 2 after (the bad config was not applied)", a, b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

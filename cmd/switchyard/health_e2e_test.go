package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// logConfig is baseConfig (one SQS source) delivering everything to a log
// target.
const logConfig = baseConfig + `
targets: [{name: out, type: log}]
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [out]}]
`

// runCmd runs a switchyard command in process and returns its exit code
// and everything it wrote.
func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb strings.Builder
	code := run(t.Context(), args, strings.NewReader(""), &out, &errb)
	return code, out.String() + errb.String()
}

// fastStartupRetries makes startup try a failing source again within
// milliseconds. Call it before startDaemon: the daemon stops first.
func fastStartupRetries(t *testing.T) {
	t.Helper()
	old := startupBackoff
	startupBackoff.initial, startupBackoff.max = 20*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { startupBackoff = old })
}

// An outage of SQS while the daemon starts delays it; it does not stop it.
// Meanwhile it is neither ready nor started, and says why; once SQS
// answers, it runs.
func TestRun_TransientStartupFailuresAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault awstest.Fault
		shows string
	}{
		{"500", awstest.InternalError("InternalFailure"), "StatusCode: 500"},
		{"throttled", awstest.Throttled(), "ThrottlingException"},
		{"no answer", awstest.Fault{Drop: true}, "request send failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := awstest.NewTestServer(t, awstest.Options{})
			srv.SQS().CreateQueue("jobs", nil)
			fastStartupRetries(t)
			t.Setenv("AWS_MAX_ATTEMPTS", "1") // one call per attempt: the SDK's retries would only slow the test
			remove := srv.InjectFault(awstest.FaultRule{Op: "sqs:GetQueueAttributes", Fault: tc.fault})
			d := startDaemon(t, srv, logConfig)
			addr := adminAddr(t, d.stderr)
			waitFor(t, "startup to try again", func() bool { return srv.Calls("sqs:GetQueueAttributes") >= 3 })

			code, body := get(t, "http://"+addr+"/readyz")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "starting: source jobs: attempt") || !strings.Contains(body, tc.shows) {
				t.Errorf("/readyz while SQS fails = %d %q; want 503, what startup waits for and why", code, body)
			}
			if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not started: ") {
				t.Errorf("/healthz while starting = %d %q, want 503 not started", code, body)
			}
			if code, out := runCmd(t, "health", "--addr", addr); code != exitFail || !strings.Contains(out, "not started") {
				t.Errorf("health while starting: exit %d, %q; want 1 and why", code, out)
			}

			remove()
			waitFor(t, "ready", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == http.StatusOK })
			if code, out := runCmd(t, "health", "--addr", addr); code != exitOK {
				t.Errorf("health once started: exit %d, %q", code, out)
			}
			srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "a.png", 1)})
			waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
			if !strings.Contains(d.stderr.String(), "startup: a source could not be opened; trying again") {
				t.Error("the retried startup was not logged")
			}
		})
	}
}

// A failure that will not pass by itself still stops the daemon at once,
// after one call.
func TestRun_PermanentStartupFailureExitsAtOnce(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	awsEnv(t)
	srv.InjectFault(awstest.FaultRule{Op: "sqs:GetQueueAttributes", Fault: awstest.Fault{Status: http.StatusForbidden, Code: "AccessDenied", Message: "not authorized to perform sqs:GetQueueAttributes"}})
	file := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(file, []byte(withAdmin(strings.ReplaceAll(logConfig, "{{URL}}", srv.URL()))), 0o644)
	code, out := runCmd(t, "run", "-c", file)
	if code != exitFail || !strings.Contains(out, "startup: sqs source jobs") || !strings.Contains(out, "AccessDenied") {
		t.Errorf("exit %d, output:\n%s\nwant 1 and the AccessDenied", code, out)
	}
	if n := srv.Calls("sqs:GetQueueAttributes"); n != 1 {
		t.Errorf("%d GetQueueAttributes calls, want 1: access denied is not tried again", n)
	}
}

// SIGTERM while startup waits out an outage stops the daemon promptly,
// and cleanly: it was asked to stop.
func TestRun_SIGTERMWhileStartingExitsPromptly(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	old := startupBackoff
	startupBackoff.initial, startupBackoff.max = time.Minute, time.Minute
	t.Cleanup(func() { startupBackoff = old })
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	srv.InjectFault(awstest.FaultRule{Op: "sqs:GetQueueAttributes", Fault: awstest.InternalError("InternalFailure")})
	d := startDaemon(t, srv, logConfig)
	addr := adminAddr(t, d.stderr)
	waitFor(t, "startup to wait", func() bool {
		_, body := get(t, "http://"+addr+"/readyz")
		return strings.Contains(body, "attempt 1 failed")
	})
	start := time.Now()
	code := d.stop()
	if took := time.Since(start); code != exitOK || took > 5*time.Second {
		t.Errorf("SIGTERM while starting: exit %d after %s; want 0 within 5s (the wait is a minute)", code, took.Round(time.Millisecond))
	}
	if !strings.Contains(d.stderr.String(), "switchyard stopped while starting") {
		t.Error("the stop was not logged")
	}
}

// The container health check asks whether the process works: SQS failing
// every receive makes the daemon not ready, and leaves it healthy.
func TestRun_HealthIsLivenessReadinessIsAFlag(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	d := startDaemon(t, srv, logConfig)
	addr := adminAddr(t, d.stderr)
	waitFor(t, "ready", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == http.StatusOK })
	if code, out := runCmd(t, "health", "--ready", "--addr", addr); code != exitOK || out != "ready\n" {
		t.Errorf("health --ready while ready: exit %d, %q", code, out)
	}

	remove := srv.InjectFault(awstest.FaultRule{Op: "sqs:ReceiveMessage", Fault: awstest.InternalError("InternalFailure")})
	waitFor(t, "not ready", func() bool {
		c, body := get(t, "http://"+addr+"/readyz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "receives failed")
	})
	if code, out := runCmd(t, "health", "--addr", addr); code != exitOK || out != "ok\n" {
		t.Errorf("health while SQS fails every receive: exit %d, %q; want 0: the process works", code, out)
	}
	if code, out := runCmd(t, "health", "--ready", "--addr", addr); code != exitFail || !strings.Contains(out, "source jobs: the last") {
		t.Errorf("health --ready while SQS fails: exit %d, %q; want 1 and why", code, out)
	}
	remove()
	waitFor(t, "ready again", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == http.StatusOK })
}

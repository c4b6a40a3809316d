package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/configsrc"
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
			if !strings.Contains(d.stderr.String(), "startup: trying again after a failure that may pass") {
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
	os.WriteFile(file, []byte(withStore(t, withAdmin(strings.ReplaceAll(logConfig, "{{URL}}", srv.URL())))), 0o644)
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

// health, status and reload find the admin endpoint where the config puts
// it, the config found as run finds it; --addr wins; a config that cannot
// be read, or has no endpoint, is said so (exit 2), never guessed around.
func TestAdminCommands_FindTheEndpointInTheConfig(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	addr := freeAddr(t)
	cfg := strings.Replace(logConfig, "version: 1\n", "version: 1\nadmin: {listen: \"${ADMIN_ADDR}\"}\n", 1)
	t.Setenv("ADMIN_ADDR", addr)
	d := startDaemon(t, srv, cfg)
	file := configFileOf(t, d)
	waitFor(t, "ready", func() bool { c, _ := get(t, "http://"+addr+"/readyz"); return c == http.StatusOK })

	t.Chdir(t.TempDir()) // no ./switchyard.yaml
	for _, k := range []string{configsrc.EnvRef, configsrc.EnvYAML} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	if code, out := runCmd(t, "health", "-c", file); code != exitOK || out != "ok\n" {
		t.Errorf("health -c FILE: exit %d, %q", code, out)
	}
	if code, out := runCmd(t, "status", "-c", file); code != exitOK || !strings.Contains(out, "SOURCE") {
		t.Errorf("status -c FILE: exit %d, %q", code, out)
	}
	if code, out := runCmd(t, "health", "-c", file, "--addr", "127.0.0.1:1"); code != exitFail || !strings.Contains(out, "127.0.0.1:1 (--addr)") {
		t.Errorf("health -c FILE --addr elsewhere: exit %d, %q; want --addr to win", code, out)
	}

	t.Setenv(configsrc.EnvRef, file)
	if code, out := runCmd(t, "health"); code != exitOK {
		t.Errorf("health with $%s: exit %d, %q", configsrc.EnvRef, code, out)
	}
	os.Unsetenv(configsrc.EnvRef)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(configsrc.EnvYAML, string(data))
	if code, out := runCmd(t, "health"); code != exitOK {
		t.Errorf("health with $%s (as on ECS): exit %d, %q", configsrc.EnvYAML, code, out)
	}
	os.Unsetenv(configsrc.EnvYAML)

	// A reload of a config the daemon rejects still finds it, and fails.
	bad := strings.Replace(string(data), "targets: [out]}]", "targets: [nowhere]}]", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd(t, "reload", "-c", file); code != exitFail || !strings.Contains(out, "rejected") || !strings.Contains(out, `unknown target "nowhere"`) {
		t.Errorf("reload -c FILE of a rejected config: exit %d, %q; want 1 and the problems", code, out)
	}
	if code, out := runCmd(t, "health", "-c", file); code != exitOK {
		t.Errorf("health -c FILE edited into an invalid config: exit %d, %q; want 0: its admin.listen is fine", code, out)
	}

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{"-c", filepath.Join(dir, "nope.yaml")}, exitUsage, "nope.yaml: no such file or directory"},
		{"no endpoint", []string{"-c", write("none.yaml", "version: 1\nadmin: {listen: none}\n")}, exitUsage, "admin.listen is none"},
		{"broken YAML", []string{"-c", write("broken.yaml", "version: 1\nadmin: {listen: [\n")}, exitUsage, "broken.yaml:"},
		{"unset variable", []string{"-c", write("unset.yaml", "admin: {listen: '${NO_SUCH_VARIABLE_HERE}'}\n")}, exitUsage, "NO_SUCH_VARIABLE_HERE is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := runCmd(t, append([]string{"health"}, tc.args...)...); code != tc.code || !strings.Contains(out, tc.want) || !strings.Contains(out, "admin.listen") {
				t.Errorf("exit %d, %q; want %d and %q", code, out, tc.code, tc.want)
			}
		})
	}
	// Nothing given and no ./switchyard.yaml: the default, and it says so.
	if code, out := runCmd(t, "health", "--timeout", "2s"); code != exitOK && !strings.Contains(out, "127.0.0.1:9090 (admin.listen's default") {
		t.Errorf("health with no config: exit %d, %q; want it to say it asked the default", code, out)
	}
}

// A config that cannot be fetched in time ends health within --timeout.
func TestHealth_ConfigFetchIsBounded(t *testing.T) {
	s, _, _ := configServer(t)
	s.InjectFault(awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Fault{Latency: time.Minute}})
	start := time.Now()
	code, out := runCmd(t, "health", "-c", "ssm:/switchyard/prod", "--timeout", "300ms")
	if took := time.Since(start); code != exitUsage || took > 5*time.Second || !strings.Contains(out, "reading the config for admin.listen") || !strings.Contains(out, "within 300ms") {
		t.Errorf("health with a config that does not come: exit %d after %s, %q; want 2 within the timeout, and why", code, took.Round(time.Millisecond), out)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

// awsEnv gives the daemon credentials and a region from the environment,
// and keeps it away from the machine's own AWS files and metadata.
func awsEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// daemon is switchyard run, in process.
type daemon struct {
	cancel         context.CancelFunc
	done           chan int
	stdout, stderr *syncbuf.Buffer
}

// startDaemon writes config (with {{URL}} replaced by the endpoint's URL)
// and runs the daemon on it until the test ends or stop is called.
func startDaemon(t *testing.T, srv *awstest.Server, config string) *daemon {
	t.Helper()
	awsEnv(t)
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(file, []byte(withStore(t, withAdmin(strings.ReplaceAll(config, "{{URL}}", srv.URL())))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{cancel: cancel, done: make(chan int, 1), stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}}
	go func() {
		d.done <- run(ctx, []string{"run", "-c", file, "-log-level", "debug"}, strings.NewReader(""), d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		if code := d.stop(); code != exitOK && !t.Failed() {
			t.Errorf("daemon exited %d", code)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	return d
}

// withAdmin gives a config without an admin block an admin endpoint on a
// free port, so that daemons of parallel tests do not compete for 9090.
func withAdmin(config string) string {
	if strings.Contains(config, "\nadmin:") {
		return config
	}
	return strings.Replace(config, "version: 1\n", "version: 1\nadmin: {listen: \"127.0.0.1:0\"}\n", 1)
}

// withStore gives a config without a nats block an embedded NATS store
// (for the ledger) of the test's own, rather than ./data/nats in the
// package's directory, shared by every test.
func withStore(t *testing.T, config string) string {
	if strings.Contains(config, "\nnats:") {
		return config
	}
	return withStoreDir(config, t.TempDir())
}

// withStoreDir gives a config the embedded NATS store dir, and, unless it
// has one, an admin endpoint on a free port: the default, 9090, may be
// another program's on the machine running the tests.
func withStoreDir(config, dir string) string {
	add := fmt.Sprintf("version: 1\nnats: {store_dir: %q}\n", dir)
	if !strings.Contains(config, "\nadmin:") {
		add += "admin: {listen: \"127.0.0.1:0\"}\n"
	}
	return strings.Replace(config, "version: 1\n", add, 1)
}

// stop stops the daemon as SIGTERM would and returns its exit code.
func (d *daemon) stop() int {
	d.cancel()
	select {
	case code := <-d.done:
		d.done <- code
		return code
	case <-time.After(30 * time.Second):
		return -1
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func queueEmpty(t *testing.T, srv *awstest.Server, q string) func() bool {
	return func() bool {
		c, err := srv.SQS().Counts(q)
		if err != nil {
			t.Fatal(err)
		}
		return c.Visible+c.InFlight+c.Delayed == 0
	}
}

func s3Event(id, key string, size int) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"Object Created","source":"aws.s3","account":"123456789012","time":"2026-11-20T12:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::media"],"detail":{"bucket":{"name":"media"},"object":{"key":%q,"size":%d}}}`, id, key, size)
}

const baseConfig = `
version: 1
aws:
  region: us-east-1
  endpoints: {sqs: "{{URL}}", lambda: "{{URL}}", ecs: "{{URL}}"}
shutdown_grace: 5s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s}
`

func TestRun_SQSToLambda(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "thumb"})
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: thumbs, type: lambda, function: thumb}
rules:
  - name: images
    pattern: {source: [aws.s3], detail-type: [Object Created], detail: {object: {key: [{suffix: .png}]}}}
    input:
      paths: {key: $.detail.object.key, size: $.detail.object.size}
      template: '{"key": <key>, "size": <size>, "rule": <aws.events.rule-name>}'
    targets: [thumbs]
`)
	for i := range 20 {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(fmt.Sprintf("e-%d", i), fmt.Sprintf("img/%d.png", i), i)})
	}
	waitFor(t, "20 invocations", func() bool { return len(srv.Lambda().Invocations("thumb")) == 20 })
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	var keys []string
	for _, inv := range srv.Lambda().Invocations("thumb") {
		var p struct {
			Key  string `json:"key"`
			Size int    `json:"size"`
			Rule string `json:"rule"`
		}
		if err := json.Unmarshal(inv.Payload, &p); err != nil || p.Rule != "images" {
			t.Errorf("payload %s: %v", inv.Payload, err)
		}
		keys = append(keys, p.Key)
	}
	slices.Sort(keys)
	if keys[0] != "img/0.png" || len(slices.Compact(keys)) != 20 {
		t.Errorf("keys: %v", keys)
	}
}

func TestRun_SQSToECSAndFanOut(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "audit"})
	srv.ECS().CreateCluster("media")
	srv.ECS().RegisterTaskDefinition(awstest.TaskDefinition{Family: "transcode", Containers: []awstest.ContainerDefinition{{Name: "app"}}})
	startDaemon(t, srv, baseConfig+`
targets:
  - name: transcode
    type: ecs_task
    cluster: media
    task_definition: transcode:1
    launch_type: FARGATE
    network: {subnets: [subnet-1]}
    container_overrides:
      - {name: app, command: [transcode, "<key>"], environment: {SIZE: "<size>"}}
  - {name: audit, type: lambda, function: audit}
rules:
  - name: videos
    pattern: {detail: {object: {key: [{prefix: videos/}], size: [{numeric: [">", 1000]}]}}}
    input:
      paths: {key: $.detail.object.key, size: $.detail.object.size}
      template: '{"key": <key>, "size": <size>}'
    targets: [transcode, audit]
`)
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "videos/cat.mp4", 5000)})
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-2", "videos/small.mp4", 10)})
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	tasks := srv.ECS().Tasks("media")
	if len(tasks) != 1 {
		t.Fatalf("%d tasks, want 1 (the small video does not match)", len(tasks))
	}
	var cmd []string
	var size string
	for _, o := range tasks[0].Overrides.ContainerOverrides {
		if o.Name == "app" {
			cmd = o.Command
			for _, kv := range o.Environment {
				if kv.Name == "SIZE" {
					size = kv.Value
				}
			}
		}
	}
	if !slices.Equal(cmd, []string{"transcode", "videos/cat.mp4"}) || size != "5000" || tasks[0].StartedBy != "switchyard/videos" {
		t.Errorf("task: command %v, SIZE %q, startedBy %q", cmd, size, tasks[0].StartedBy)
	}
	if inv := srv.Lambda().Invocations("audit"); len(inv) != 1 || string(inv[0].Payload) != `{"key": "videos/cat.mp4", "size": 5000}` {
		t.Errorf("fan-out to Lambda: %+v", inv)
	}
}

// EventBridge rules deliver ECS task-state changes to SQS; a pattern on
// detail.lastStatus and the containers picks the failed ones.
func TestRun_ECSTaskStateChangeViaSQS(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "page"})
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: page, type: lambda, function: page}
rules:
  - name: task-failed
    pattern:
      source: [aws.ecs]
      detail-type: [ECS Task State Change]
      detail: {lastStatus: [STOPPED], containers: {name: [app], exitCode: [{anything-but: 0}]}}
    input:
      paths: {task: $.detail.taskArn, code: "$.detail.containers[0].exitCode"}
      template: '"task <task> exited <code>"'
    targets: [page]
`)
	change := func(id, status string, appExit, sidecarExit int) string {
		return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"ECS Task State Change","source":"aws.ecs","account":"123456789012","time":"2026-11-20T12:00:00Z","region":"us-east-1","resources":[],"detail":{"taskArn":"arn:aws:ecs:us-east-1:123456789012:task/media/%s","lastStatus":%q,"containers":[{"name":"app","exitCode":%d},{"name":"sidecar","exitCode":%d}]}}`, id, id, status, appExit, sidecarExit)
	}
	srv.SQS().Send("jobs", awstest.Message{Body: change("t1", "RUNNING", 0, 0)})
	srv.SQS().Send("jobs", awstest.Message{Body: change("t2", "STOPPED", 137, 0)})
	srv.SQS().Send("jobs", awstest.Message{Body: change("t3", "STOPPED", 0, 1)}) // the sidecar failed, not the app
	srv.SQS().Send("jobs", awstest.Message{Body: change("t4", "STOPPED", 0, 0)})
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	inv := srv.Lambda().Invocations("page")
	if len(inv) != 1 || string(inv[0].Payload) != `"task arn:aws:ecs:us-east-1:123456789012:task/media/t2 exited 137"` {
		t.Errorf("invocations: %+v", inv)
	}
}

func TestRun_SNSAndRawBodies(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "fn"})
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: fn, type: lambda, function: fn}
rules:
  - {name: from-sns, pattern: {detail-type: [SNS Notification], detail: {kind: [upload]}}, targets: [fn]}
  - {name: raw, pattern: {source: [jobs], detail-type: [SQS Message], attributes: {tenant: [acme]}}, targets: [fn]}
`)
	inner, _ := json.Marshal(map[string]string{"kind": "upload"})
	sns, _ := json.Marshal(map[string]any{"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": string(inner), "Timestamp": "2026-11-20T12:00:00.000Z"})
	srv.SQS().Send("jobs", awstest.Message{Body: string(sns)})
	srv.SQS().Send("jobs", awstest.Message{Body: "plain text", Attributes: map[string]awstest.Attribute{"tenant": {DataType: "String", StringValue: "acme"}}})
	waitFor(t, "two invocations", func() bool { return len(srv.Lambda().Invocations("fn")) == 2 })
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	var kinds []string
	for _, inv := range srv.Lambda().Invocations("fn") {
		var ev struct {
			DetailType string `json:"detail-type"`
			Detail     any    `json:"detail"`
		}
		json.Unmarshal(inv.Payload, &ev)
		kinds = append(kinds, fmt.Sprintf("%s %v", ev.DetailType, ev.Detail))
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"SNS Notification map[kind:upload]", "SQS Message plain text"}) {
		t.Errorf("payloads: %q", kinds)
	}
}

func TestRun_FIFOOrderWithinGroups(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	var mu sync.Mutex
	order := map[string][]int{}
	srv.Lambda().Register(awstest.Function{Name: "fn", Latency: time.Millisecond, Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var p struct {
			Group string `json:"group"`
			N     int    `json:"n"`
		}
		json.Unmarshal(inv.Payload, &p)
		mu.Lock()
		order[p.Group] = append(order[p.Group], p.N)
		mu.Unlock()
		return awstest.Result{}
	}})
	startDaemon(t, srv, strings.Replace(baseConfig, "/jobs\"", "/jobs.fifo\"", 1)+`
targets:
  - {name: fn, type: lambda, function: fn}
rules:
  - {name: all, pattern: {detail: {group: [{exists: true}]}}, input: {paths: {g: $.detail.group, n: $.detail.n}, template: '{"group": <g>, "n": <n>}'}, targets: [fn]}
`)
	for i := range 30 {
		g := []string{"a", "b", "c"}[i%3]
		body := fmt.Sprintf(`{"source":"app","detail-type":"step","detail":{"group":%q,"n":%d}}`, g, i)
		if _, err := srv.SQS().Send("jobs.fifo", awstest.Message{Body: body, GroupID: g}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs.fifo"))
	for g, ns := range order {
		if len(ns) != 10 || !slices.IsSorted(ns) {
			t.Errorf("group %s delivered %v, want 10 in order", g, ns)
		}
	}
}

func TestRun_UnmatchedMessagesAreAcked(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "fn"})
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: fn, type: lambda, function: fn}
rules:
  - {name: none, pattern: {source: [nothing.sends.this]}, targets: [fn]}
`)
	for i := range 5 {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(fmt.Sprint(i), "x", 1)})
	}
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	if n := len(srv.Lambda().Invocations("fn")); n != 0 {
		t.Errorf("%d invocations", n)
	}
}

// A permanent failure goes to the dead-letter queue with why, and the
// source message is deleted; a target that keeps failing without a
// dead-letter target leaves its message in the queue.
func TestRun_DeadLettersAndUnresolvedMessages(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("dlq", nil)
	srv.Lambda().Register(awstest.Function{Name: "down", Handler: func(context.Context, awstest.Invocation) awstest.Result {
		return awstest.Result{Err: &awstest.APIError{Status: 503, Code: "ServiceException", Message: "down"}}
	}})
	d := startDaemon(t, srv, baseConfig+`
targets:
  - {name: missing, type: lambda, function: no-such-function}
  - {name: down, type: lambda, function: down, policy: no-dlq}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {retry: {attempts: 3, initial: 10ms, max: 50ms}, dead_letter: dlq}
  no-dlq: {retry: {attempts: 2, initial: 10ms, max: 50ms}, breaker: {failures: 100}}
  last: {}
rules:
  - {name: to-missing, pattern: {detail: {object: {key: [missing]}}}, targets: [missing]}
  - {name: to-down, pattern: {detail: {object: {key: [down]}}}, targets: [down]}
`)
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-missing", "missing", 1), Attributes: map[string]awstest.Attribute{"tenant": {DataType: "String", StringValue: "acme"}}})
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-down", "down", 1)})
	waitFor(t, "a dead letter", func() bool { m, _ := srv.SQS().Messages("dlq"); return len(m) == 1 })
	waitFor(t, "the down target's attempts", func() bool { return len(srv.Lambda().Invocations("down")) >= 2 })
	dl, _ := srv.SQS().Messages("dlq")
	a := dl[0].Attributes
	if dl[0].Body != s3Event("e-missing", "missing", 1) || a["switchyard-target"].StringValue != "missing" || a["switchyard-rule"].StringValue != "to-missing" ||
		a["switchyard-attempts"].StringValue != "1" || !strings.Contains(a["switchyard-last-error"].StringValue, "ResourceNotFoundException") {
		t.Errorf("dead letter: %s %+v", dl[0].Body, a)
	}
	waitFor(t, "the dead-lettered message to be deleted", func() bool {
		ms, _ := srv.SQS().Messages("jobs")
		return len(ms) == 1
	})
	ms, _ := srv.SQS().Messages("jobs")
	if len(ms) != 1 || !strings.Contains(ms[0].Body, "e-down") {
		t.Fatalf("queue holds %+v, want only the unresolved message", ms)
	}
	if code := d.stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if ms, _ := srv.SQS().Messages("jobs"); len(ms) != 1 {
		t.Errorf("the unresolved message is gone after shutdown")
	}
}

// A dead letter sent to SQS carries the original message's attributes as
// they came (String, Number, Binary, custom labels): with at most one, the
// record is the nine switchyard-* attributes beside it; with more, the
// record is one attribute, switchyard-dead-letter, as JSON; beyond SQS's
// ten, the originals last by name are left out and named in the record.
func TestRun_SQSDeadLettersKeepTheMessageAttributes(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("dlq", nil)
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: missing, type: lambda, function: no-such-function}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {retry: {attempts: 1}, dead_letter: dlq}
  last: {}
rules: [{name: all, pattern: {source: [aws.s3]}, targets: [missing]}]
`)
	str := func(v string) awstest.Attribute { return awstest.Attribute{DataType: "String", StringValue: v} }
	typed := map[string]awstest.Attribute{
		"tenant": str("acme"), "priority": {DataType: "Number", StringValue: "7"}, "count": {DataType: "Number.int", StringValue: "42"},
		"blob": {DataType: "Binary", BinaryValue: []byte{0, 1, 2, 0xff}}, "picture": {DataType: "Binary.png", BinaryValue: []byte{0x89, 'P', 'N', 'G'}},
	}
	ten := map[string]awstest.Attribute{}
	for i := range 10 {
		ten[fmt.Sprintf("a%d", i)] = str(fmt.Sprint(i))
	}
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-typed", "k", 1), Attributes: typed})
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-one", "k", 1), Attributes: map[string]awstest.Attribute{"tenant": str("acme")}})
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-ten", "k", 1), Attributes: ten})
	var dls []awstest.MessageInfo
	waitFor(t, "three dead letters", func() bool { dls, _ = srv.SQS().Messages("dlq"); return len(dls) == 3 })
	byEvent := map[string]map[string]awstest.Attribute{}
	for _, m := range dls {
		var ev struct{ ID string }
		json.Unmarshal([]byte(m.Body), &ev)
		byEvent[ev.ID] = m.Attributes
	}
	record := func(t *testing.T, a map[string]awstest.Attribute) map[string]any {
		t.Helper()
		var rec map[string]any
		if v := a["switchyard-dead-letter"]; v.DataType != "String" || json.Unmarshal([]byte(v.StringValue), &rec) != nil {
			t.Fatalf("switchyard-dead-letter is %+v, want the record as JSON", v)
		}
		if rec["target"] != "missing" || rec["rule"] != "all" || rec["source"] != "jobs" || rec["attempts"] != 1.0 ||
			!strings.Contains(fmt.Sprint(rec["last_error"]), "ResourceNotFoundException") {
			t.Errorf("record %v", rec)
		}
		return rec
	}

	a := byEvent["e-typed"]
	for k, want := range typed {
		if got := a[k]; got.DataType != want.DataType || got.StringValue != want.StringValue || !bytes.Equal(got.BinaryValue, want.BinaryValue) {
			t.Errorf("attribute %s = %+v, want %+v as it came", k, got, want)
		}
	}
	if rec := record(t, a); rec["dropped_attributes"] != nil || len(a) != len(typed)+1 {
		t.Errorf("dead letter of five attributes: %d attributes, record %v", len(a), rec)
	}

	a = byEvent["e-one"]
	if a["tenant"].StringValue != "acme" || a["switchyard-target"].StringValue != "missing" || a["switchyard-attempts"].DataType != "Number" ||
		a["switchyard-dead-letter"].DataType != "" || len(a) != 10 {
		t.Errorf("dead letter of one attribute: %+v, want it and the nine switchyard-* attributes", a)
	}

	a = byEvent["e-ten"]
	rec := record(t, a)
	if dropped := fmt.Sprint(rec["dropped_attributes"]); len(a) != 10 || a["a8"].StringValue != "8" || a["a9"].DataType != "" || dropped != "[a9]" {
		t.Errorf("dead letter of ten attributes: %+v, dropped %s; want a0 to a8 and the record naming a9", a, dropped)
	}
}

func TestRun_StartupFailsFast(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	awsEnv(t)
	for _, tc := range []struct {
		name, config, want string
	}{
		{"missing queue", baseConfig + "targets: [{name: l, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [l]}]\n",
			"startup: sqs source jobs: queue " + srv.URL() + "/123456789012/jobs"},
		{"unreachable endpoint", strings.ReplaceAll(baseConfig, "{{URL}}", "http://127.0.0.1:1") + "targets: [{name: l, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [l]}]\n",
			"startup: aws.endpoints.sqs: http://127.0.0.1:1 is unreachable"},
		{"invalid config", "version: 1\nsources: []\n", "sources: at least one is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "s.yaml")
			os.WriteFile(file, []byte(withStore(t, strings.ReplaceAll(tc.config, "{{URL}}", srv.URL()))), 0o644)
			var stderr syncbuf.Buffer
			code := run(context.Background(), []string{"run", "-c", file}, strings.NewReader(""), &syncbuf.Buffer{}, &stderr)
			if code != exitFail || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr.String(), tc.want)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		srv.SQS().CreateQueue("jobs", nil)
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		file := filepath.Join(t.TempDir(), "s.yaml")
		os.WriteFile(file, []byte(withStore(t, strings.ReplaceAll(baseConfig, "{{URL}}", srv.URL())+"targets: [{name: l, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [l]}]\n")), 0o644)
		var stderr syncbuf.Buffer
		code := run(context.Background(), []string{"run", "-c", file}, strings.NewReader(""), &syncbuf.Buffer{}, &stderr)
		if code != exitFail || !strings.Contains(stderr.String(), "no usable credentials") {
			t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
		}
	})
}

// Each class of failure, through the whole daemon: retryable and
// throttled failures are retried until they succeed (the message is
// deleted only then), permanent ones are dead-lettered at once, and a
// RunTask whose response was lost is retried with the same token and
// starts one task.
func TestRun_ErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fault        awstest.Fault
		op           string
		deadLettered bool
	}{
		{"lambda throttled", awstest.TooManyRequests(time.Second), "lambda:Invoke", false},
		{"lambda 503", awstest.Unavailable(), "lambda:Invoke", false},
		{"lambda service exception", awstest.InternalError("ServiceException"), "lambda:Invoke", false},
		{"lambda connection reset", awstest.Fault{Drop: true}, "lambda:Invoke", false},
		{"lambda bad request", awstest.Fault{Status: 400, Code: "InvalidRequestContentException"}, "lambda:Invoke", true},
		{"lambda too large", awstest.Fault{Status: 413, Code: "RequestTooLargeException"}, "lambda:Invoke", true},
		{"ecs response lost", awstest.Fault{Commit: true, Drop: true}, "ecs:RunTask", false},
		{"ecs throttled", awstest.Throttled(), "ecs:RunTask", false},
		{"ecs client exception", awstest.Fault{Status: 400, Code: "ClientException"}, "ecs:RunTask", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := awstest.NewTestServer(t, awstest.Options{})
			srv.SQS().CreateQueue("jobs", nil)
			srv.SQS().CreateQueue("dlq", nil)
			srv.Lambda().Register(awstest.Function{Name: "fn"})
			srv.ECS().RegisterTaskDefinition(awstest.TaskDefinition{Family: "job", Containers: []awstest.ContainerDefinition{{Name: "app"}}})
			target := "fn"
			if strings.HasPrefix(tc.op, "ecs") {
				target = "task"
			}
			startDaemon(t, srv, baseConfig+`
targets:
  - {name: fn, type: lambda, function: fn}
  - {name: task, type: ecs_task, task_definition: "job:1", launch_type: FARGATE, network: {subnets: [subnet-1]}}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {retry: {attempts: 5, initial: 10ms, max: 100ms}, dead_letter: dlq}
  last: {}
rules:
  - {name: r, pattern: {source: [aws.s3]}, targets: [`+target+`]}
`)
			srv.FailNext(tc.op, 2, tc.fault)
			srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "k", 1)})
			waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
			dl, _ := srv.SQS().Messages("dlq")
			if tc.deadLettered {
				if len(dl) != 1 || srv.Calls(tc.op) != 1 {
					t.Errorf("dead letters %d after %d calls, want 1 after 1", len(dl), srv.Calls(tc.op))
				}
				return
			}
			if len(dl) != 0 {
				t.Errorf("%d dead letters for a failure that recovers", len(dl))
			}
			if got := srv.Calls(tc.op); got != 3 {
				t.Errorf("%d calls, want 2 failed and 1 that succeeded", got)
			}
			switch target {
			case "fn":
				ok := 0
				for _, inv := range srv.Lambda().Invocations("fn") {
					if inv.StatusCode == 200 && inv.FunctionError == "" {
						ok++
					}
				}
				if ok != 1 {
					t.Errorf("%d successful invocations, want 1", ok)
				}
			case "task":
				if n := len(srv.ECS().Tasks("default")); n != 1 {
					t.Errorf("%d tasks, want exactly 1", n)
				}
			}
		})
	}
}

// A function written for Lambda's SQS event-source mapping works behind
// batch mode unchanged, including partial batch failures.
func TestRun_LambdaBatchMode(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	var mu sync.Mutex
	seen := map[string]int{}
	srv.Lambda().Register(awstest.Function{Name: "legacy", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var ev struct {
			Records []struct {
				MessageID string `json:"messageId"`
				Body      string `json:"body"`
			}
		}
		json.Unmarshal(inv.Payload, &ev)
		var failures []map[string]string
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			seen[r.Body]++
			// Fail each "flaky" record the first time it is seen.
			if strings.Contains(r.Body, "flaky") && seen[r.Body] == 1 {
				failures = append(failures, map[string]string{"itemIdentifier": r.MessageID})
			}
		}
		return awstest.JSONResult(map[string]any{"batchItemFailures": failures})
	}})
	startDaemon(t, srv, baseConfig+`
targets:
  - {name: legacy, type: lambda, function: legacy, batch: {size: 10, window: 100ms}}
policies:
  default: {retry: {initial: 10ms, max: 50ms}}
rules:
  - {name: all, pattern: {detail: {kind: [{exists: true}]}}, targets: [legacy]}
`)
	for i := range 25 {
		kind := "ok"
		if i%5 == 0 {
			kind = "flaky"
		}
		srv.SQS().Send("jobs", awstest.Message{Body: fmt.Sprintf(`{"source":"app","detail-type":"x","detail":{"kind":%q,"n":%d}}`, kind, i)})
	}
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 25 {
		t.Errorf("%d distinct records, want 25", len(seen))
	}
	for body, n := range seen {
		want := 1
		if strings.Contains(body, "flaky") {
			want = 2
		}
		if n != want {
			t.Errorf("record %s seen %d times, want %d", body, n, want)
		}
	}
	if calls := srv.Calls("lambda:Invoke"); calls > 10 {
		t.Errorf("%d invocations for 25 records in batches of 10", calls)
	}
}

// A body that does not fit an eventbridge source is dead-lettered when the
// source says so, and routed as a wrapped event otherwise.
func TestRun_MalformedBodies(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("strict", nil)
	srv.SQS().CreateQueue("bad", nil)
	srv.Lambda().Register(awstest.Function{Name: "fn"})
	startDaemon(t, srv, baseConfig+`
  - {name: strict, type: sqs, queue_url: "{{URL}}/123456789012/strict", wait_time: 1s, envelope: eventbridge, malformed: dead_letter, dead_letter: bad}
targets:
  - {name: fn, type: lambda, function: fn}
  - {name: bad, type: sqs, queue_url: "{{URL}}/123456789012/bad"}
rules:
  - {name: all, pattern: {source: [{prefix: ""}]}, targets: [fn]}
`)
	srv.SQS().Send("strict", awstest.Message{Body: "this is not an EventBridge event"})
	srv.SQS().Send("strict", awstest.Message{Body: s3Event("ok", "k", 1)})
	srv.SQS().Send("jobs", awstest.Message{Body: "plain text is wrapped"})
	waitFor(t, "both queues to drain", func() bool { return queueEmpty(t, srv, "strict")() && queueEmpty(t, srv, "jobs")() })
	bad, _ := srv.SQS().Messages("bad")
	if len(bad) != 1 || bad[0].Body != "this is not an EventBridge event" || bad[0].Attributes["switchyard-source"].StringValue != "strict" ||
		!strings.Contains(bad[0].Attributes["switchyard-last-error"].StringValue, "not an EventBridge event") {
		t.Errorf("dead letters: %+v", bad)
	}
	if n := len(srv.Lambda().Invocations("fn")); n != 2 {
		t.Errorf("%d invocations, want 2 (the valid event and the wrapped text)", n)
	}
}

// When the dead-letter target fails too, the source message is not
// deleted (it comes back), and the failure is logged loudly.
func TestRun_DeadLetterFailureKeepsTheMessage(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	d := startDaemon(t, srv, baseConfig+`
targets:
  - {name: missing, type: lambda, function: no-such-function}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/no-such-queue", policy: last}
policies:
  default: {dead_letter: dlq}
  last: {retry: {attempts: 1}}
rules:
  - {name: r, pattern: {source: [aws.s3]}, targets: [missing]}
`)
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "k", 1)})
	waitFor(t, "the loud log line", func() bool { return strings.Contains(d.stderr.String(), "DEAD LETTER FAILED") })
	if code := d.stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if ms, _ := srv.SQS().Messages("jobs"); len(ms) != 1 {
		t.Errorf("the message is gone although its dead letter failed: %+v", ms)
	}
}

// Every type the config file accepts can be built by run.
func TestRun_BuildsEveryConfigType(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(sourceKinds)), config.SourceTypes(); !slices.Equal(got, want) {
		t.Errorf("run builds sources %v, the config accepts %v", got, want)
	}
	if got, want := slices.Sorted(maps.Keys(sinkKinds)), config.TargetTypes(); !slices.Equal(got, want) {
		t.Errorf("run builds targets %v, the config accepts %v", got, want)
	}
}

// The loop closed: an event launches a task (ECS target), the ECS source
// sees the task that switchyard started stop with a non-zero exit code, and
// one rule pages with the id of the event that launched it.
func TestRun_LaunchedTaskFailureClosesTheLoop(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.Lambda().Register(awstest.Function{Name: "page"})
	srv.ECS().CreateCluster("media")
	srv.ECS().RegisterTaskDefinition(awstest.TaskDefinition{Family: "transcode", Containers: []awstest.ContainerDefinition{{Name: "app"}}})
	startDaemon(t, srv, baseConfig+fmt.Sprintf(`  - {name: tasks, type: ecs, cluster: media, started_by: switchyard/videos, interval: 1s}
nats: {store_dir: %q, listen: none}
targets:
  - {name: transcode, type: ecs_task, cluster: media, task_definition: transcode:1, launch_type: FARGATE, network: {subnets: [subnet-1]}}
  - {name: page, type: lambda, function: page}
rules:
  - {name: videos, sources: [jobs], pattern: {detail: {object: {key: [{prefix: videos/}]}}}, targets: [transcode]}
  - name: transcode-failed
    sources: [tasks]
    pattern:
      detail-type: [ECS Task State Change]
      detail:
        lastStatus: [STOPPED]
        startedBy: [switchyard/videos]
        containers: {name: [app], exitCode: [{anything-but: 0}]}
        tags: {key: ["switchyard:event-id"]}
    input:
      paths: {task: $.detail.taskArn, code: "$.detail.containers[0].exitCode", tags: $.detail.tags}
      template: '{"task": <task>, "exit": <code>, "tags": <tags>}'
    targets: [page]
`, t.TempDir()))
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-1", "videos/cat.mp4", 5000)})
	waitFor(t, "the task to be launched", func() bool { return len(srv.ECS().Tasks("media")) == 1 })
	task := srv.ECS().Tasks("media")[0]
	if err := srv.ECS().SetTaskStatus(task.TaskARN, awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a poll sees it running
	if err := srv.ECS().StopTask(task.TaskARN, awstest.StopOptions{ExitCodes: map[string]int{"app": 2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the page", func() bool { return len(srv.Lambda().Invocations("page")) == 1 })
	var p struct {
		Task string
		Exit int
		Tags []struct{ Key, Value string }
	}
	if err := json.Unmarshal(srv.Lambda().Invocations("page")[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	event := ""
	for _, tag := range p.Tags {
		if tag.Key == "switchyard:event-id" {
			event = tag.Value
		}
	}
	if p.Task != task.TaskARN || p.Exit != 2 || event != "e-1" {
		t.Errorf("page: %+v", p)
	}
	time.Sleep(2 * time.Second) // more polls: the stop is not reported twice
	if n := len(srv.Lambda().Invocations("page")); n != 1 {
		t.Errorf("paged %d times", n)
	}

}

// The review's case: an event with a string that is not UTF-8, posted to
// an SQS target, was stored with U+FFFD, failed the SDK's MD5 check, was
// stored again on each retry, then dead-lettered the same way. JSON is
// UTF-8: the POST is refused, as is an event with a key twice, and the
// queues hold only the valid event, once.
func TestRun_HTTPIngestRefusesInvalidUTF8AndDuplicateKeys(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	for _, q := range []string{"out", "dlq"} {
		srv.SQS().CreateQueue(q, nil)
	}
	addr := freeAddr(t)
	startDaemon(t, srv, fmt.Sprintf(`
version: 1
aws: {region: us-east-1, endpoints: {sqs: "{{URL}}"}}
sources: [{name: ingest, type: http, listen: %q}]
targets:
  - {name: out, type: sqs, queue_url: "{{URL}}/123456789012/out", policy: quick}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  quick: {retry: {attempts: 3, initial: 10ms, max: 50ms}, dead_letter: dlq}
  last: {retry: {attempts: 2, initial: 10ms, max: 50ms}}
rules:
  - {name: orders, pattern: {detail-type: [Order Placed]}, targets: [out]}
`, addr))
	waitListening(t, addr)
	url := "http://" + addr + "/events"
	for _, tc := range []struct{ body, want string }{
		{strings.Replace(orderEvent("o-1", "eu"), `"eu"`, "\"caf\xe9\"", 1), "invalid UTF-8"},
		{strings.Replace(orderEvent("o-2", "eu"), `"region":"eu"`, `"amount":1,"amount":1000000`, 1), "duplicate key $.detail.amount"},
	} {
		if status, body := postEvents(t, url, tc.body); status != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("POST answered %d %s, want 400 %q", status, body, tc.want)
		}
	}
	if status, body := postEvents(t, url, orderEvent("o-3", "eu")); status != 200 {
		t.Fatalf("POST of a valid event answered %d %s", status, body)
	}
	out, _ := srv.SQS().Messages("out")
	dlq, _ := srv.SQS().Messages("dlq")
	if len(out) != 1 || !strings.Contains(out[0].Body, `"id":"o-3"`) || len(dlq) != 0 {
		t.Errorf("out holds %d messages, dlq %d; want the valid event once", len(out), len(dlq))
	}
}

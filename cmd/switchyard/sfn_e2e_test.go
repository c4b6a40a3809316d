package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

const sfnConfig = `
version: 1
aws:
  region: us-east-1
  endpoints: {sqs: "{{URL}}", stepfunctions: "{{URL}}"}
shutdown_grace: 5s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s}
targets:
  - {name: flow, type: stepfunctions, state_machine: "arn:aws:states:us-east-1:123456789012:stateMachine:orders", name_prefix: "sy-"}
  - {name: score, type: stepfunctions, state_machine: "arn:aws:states:us-east-1:123456789012:stateMachine:score", mode: express_sync, permanent_errors: [InvalidOrder]}
  - {name: gone, type: stepfunctions, state_machine: "arn:aws:states:us-east-1:123456789012:stateMachine:deleted"}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {retry: {attempts: 5, initial: 10ms, max: 50ms}, dead_letter: dlq}
  last: {}
rules:
  - name: orders
    pattern: {detail: {object: {key: [{prefix: "order/"}]}}}
    input:
      paths: {key: $.detail.object.key}
      template: '{"key": <key>}'
    targets: [flow]
  - {name: scores, pattern: {detail: {object: {key: [{prefix: "score/"}]}}}, targets: [score]}
  - {name: lost, pattern: {detail: {object: {key: [lost]}}}, targets: [gone]}
`

// Through switchyard run: every order starts one execution, named after
// its delivery, although the first start's answer is lost, the next
// answers a 5xx and two are throttled; express executions are retried
// when they fail and dead-lettered when their error is a permanent one; a
// state machine that does not exist dead-letters at once.
func TestRun_StepFunctions(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("dlq", nil)
	if _, err := srv.StepFunctions().CreateStateMachine(awstest.StateMachine{Name: "orders"}); err != nil {
		t.Fatal(err)
	}
	var flaky atomic.Int32
	if _, err := srv.StepFunctions().CreateStateMachine(awstest.StateMachine{Name: "score", Type: awstest.StateMachineExpress,
		Handler: func(_ context.Context, ex awstest.Execution) awstest.ExecutionResult {
			switch {
			case strings.Contains(ex.Input, "score/invalid"):
				return awstest.Failed("InvalidOrder", "no lines")
			case strings.Contains(ex.Input, "score/flaky") && flaky.Add(1) == 1:
				return awstest.Failed("States.TaskFailed", "downstream 503")
			}
			return awstest.Succeeded(`{"ok":true}`)
		}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []awstest.Fault{{Commit: true, Drop: true}, awstest.InternalError("InternalFailure"), awstest.Throttled(), awstest.Throttled()} {
		srv.InjectFault(awstest.FaultRule{Op: "states:StartExecution", Resource: "orders", Times: 1, Fault: f})
	}
	d := startDaemon(t, srv, sfnConfig)
	addr := adminAddr(t, d.stderr)

	for i := range 10 {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event(fmt.Sprintf("e-%d", i), fmt.Sprintf("order/%d", i), i)})
	}
	for _, key := range []string{"score/ok", "score/flaky", "score/invalid", "lost"} {
		srv.SQS().Send("jobs", awstest.Message{Body: s3Event("e-"+key, key, 1)})
	}
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))

	orders := srv.StepFunctions().Executions("orders")
	if len(orders) != 10 {
		t.Fatalf("%d executions of orders for 10 deliveries", len(orders))
	}
	named := regexp.MustCompile(`^sy-[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, ex := range orders {
		var in struct{ Key string }
		if err := json.Unmarshal([]byte(ex.Input), &in); err != nil || !strings.HasPrefix(in.Key, "order/") || !named.MatchString(ex.Name) || seen[ex.Name] {
			t.Errorf("execution %s: input %s (%v)", ex.Name, ex.Input, err)
		}
		seen[ex.Name] = true
	}
	if calls := srv.Calls("states:StartExecution"); calls != 10+4+1 {
		t.Errorf("%d StartExecution calls, want 10, 4 faulted and 1 for the state machine that does not exist", calls)
	}
	if n := scrape(t, addr)[`switchyard_target_throttled_total{target="flow"}`]; n != 2 {
		t.Errorf("%v throttles counted for flow, want 2", n)
	}

	var ok, failed int
	for _, ex := range srv.StepFunctions().Executions("score") {
		switch ex.Status {
		case awstest.ExecutionSucceeded:
			ok++
		case awstest.ExecutionFailed:
			failed++
		}
	}
	if ok != 2 || failed != 2 {
		t.Errorf("score: %d succeeded, %d failed; want 2 and 2 (flaky once, invalid once)", ok, failed)
	}

	dl, _ := srv.SQS().Messages("dlq")
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	byTarget := map[string]awstest.MessageInfo{}
	for _, m := range dl {
		byTarget[m.Attributes["switchyard-target"].StringValue] = m
	}
	for target, want := range map[string]string{"score": "FAILED: InvalidOrder: no lines", "gone": "StateMachineDoesNotExist"} {
		m, found := byTarget[target]
		a := m.Attributes
		if !found || a["switchyard-attempts"].StringValue != "1" || !strings.Contains(a["switchyard-last-error"].StringValue, want) {
			t.Errorf("dead letter of %s: %+v, want one after 1 attempt naming %q", target, a, want)
		}
	}
}

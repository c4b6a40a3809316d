package redrive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	"github.com/switchyard-dev/switchyard/sinks/lambda"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// testConfig has a source of each kind, and rules with a JSON template, a
// text template and none.
const testConfig = `version: 1
aws: {region: eu-west-1}
sources:
  - {name: jobs, type: sqs, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"}
  - {name: strict, type: sqs, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/strict", envelope: eventbridge}
  - {name: ingest, type: http, listen: "127.0.0.1:0", envelope: eventbridge}
  - {name: bus, type: nats, subject: "events.>"}
  - {name: tasks, type: ecs, cluster: c}
targets:
  - {name: t, type: log}
rules:
  - {name: json, pattern: {source: [{prefix: ""}]}, input: {paths: {n: $.detail.n}, template: '{"n": <n>}'}, targets: [t]}
  - {name: text, pattern: {source: [{prefix: ""}]}, input: {paths: {n: $.detail.n}, template: 'number <n>'}, targets: [t]}
  - {name: whole, pattern: {source: [{prefix: ""}]}, targets: [t]}
`

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The delivery made again is the one run made: its id from the event id
// (a wrapped body's is its message id), the rule and the target; its
// payload rendered by the rule; text stays text.
func TestRebuilder_MakesTheDeliveryRunMade(t *testing.T) {
	t.Parallel()
	b, err := NewRebuilder(loadConfig(t, testConfig))
	if err != nil {
		t.Fatal(err)
	}
	event := `{"version":"0","id":"ev-1","source":"shop","detail-type":"order","account":"1","time":"2026-11-20T12:00:00Z","region":"eu-west-1","resources":[],"detail":{"n":7}}`
	first := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, source, rule, body string
		attrs                    map[string]router.Attribute
		eventID, payload         string
		text, whole              bool
	}{
		{"an EventBridge event from SQS, JSON template", "jobs", "json", event, nil, "ev-1", `{"n": 7}`, false, false},
		{"text template", "jobs", "text", event, nil, "ev-1", `number 7`, true, false},
		{"a wrapped SQS body, whole event", "jobs", "whole", `{"n": 1}`, map[string]router.Attribute{"tenant": {DataType: "String", StringValue: "a"}},
			"m-1", `{"version":"0","id":"m-1","detail-type":"SQS Message","source":"jobs","account":"123456789012","time":"2026-11-20T12:00:00Z","region":"eu-west-1","resources":["arn:aws:sqs:eu-west-1:123456789012:jobs"],"detail":{"n":1},"attributes":{"tenant":"a"}}`, false, true},
		{"an http source's event", "ingest", "json", event, nil, "ev-1", `{"n": 7}`, false, false},
		{"a NATS payload, wrapped", "bus", "json", `{"n": 3}`, nil, "m-1", `{"n": 3}`, false, false},
		{"an ECS source's event", "tasks", "json", event, nil, "ev-1", `{"n": 7}`, false, false},
		{"a malformed message's dead letter names no rule: the whole event", "jobs", "", "plain text", nil, "m-1", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &Letter{Record: &router.DeadLetter{Source: tc.source, MessageID: "m-1", Rule: tc.rule, Target: "t", Attempts: 3, FirstError: "first",
				FirstAttempt: first, LastAttempt: first.Add(time.Minute)}, Body: []byte(tc.body), Attributes: tc.attrs}
			d, err := b.Delivery(l, "t")
			if err != nil {
				t.Fatal(err)
			}
			if want := router.DeliveryID(tc.eventID, tc.rule, "t"); d.ID != want {
				t.Errorf("delivery id %s, want %s (event %s)", d.ID, want, tc.eventID)
			}
			if tc.payload != "" && string(d.Payload) != tc.payload {
				t.Errorf("payload %s, want %s", d.Payload, tc.payload)
			}
			if d.Text != tc.text || d.Whole != tc.whole || d.Attempt != 3 || d.Failures != 0 || !d.FirstAttempt.IsZero() ||
				d.FirstErr == nil || d.FirstErr.Error() != "first" || d.Message.Source != tc.source || string(d.Message.Body) != tc.body {
				t.Errorf("delivery %+v", d)
			}
		})
	}
}

func TestRebuilder_SaysWhyItCannot(t *testing.T) {
	t.Parallel()
	b, err := NewRebuilder(loadConfig(t, testConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, source, rule, body, want string
	}{
		{"a source the config no longer has", "old", "json", `{}`, `source "old" is not in the config: its body cannot be decoded as it was (sources: bus, ingest, jobs, strict, tasks)`},
		{"a rule the config no longer has", "jobs", "gone", `{}`, `rule "gone" is not in the config: its payload cannot be rendered`},
		{"a body the http source refuses", "ingest", "json", `{"not": "an event"}`, "source ingest refuses the body"},
		{"an ECS body that is no event", "tasks", "json", `[1]`, "source tasks: the body is not an event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.Delivery(&Letter{Record: &router.DeadLetter{Source: tc.source, MessageID: "m", Rule: tc.rule, Target: "t", LastAttempt: time.Now()},
				Body: []byte(tc.body)}, "t")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A pattern sees the record's fields at the top level and the body.
func TestDocument_IsTheRecordAndTheBody(t *testing.T) {
	t.Parallel()
	l := &Letter{Record: &router.DeadLetter{Source: "jobs", MessageID: "m", Rule: "r", Target: "billing", Attempts: 5, LastError: "503",
		LastAttempt: time.Date(2026, 11, 20, 12, 0, 0, 0, time.FixedZone("x", 3600)), Attributes: map[string]string{"tenant": "acme"}},
		Body: []byte(`{"detail": {"n": 4}}`)}
	want := `{"source":"jobs","message_id":"m","rule":"r","target":"billing","attempts":5,"last_error":"503","first_attempt":"0001-01-01T00:00:00Z","last_attempt":"2026-11-20T11:00:00Z","attributes":{"tenant":"acme"},"body":{"detail":{"n":4}}}`
	if got := string(Document(l)); got != want {
		t.Errorf("document\n got %s\nwant %s", got, want)
	}
	for pattern, match := range map[string]bool{
		`{"target": ["billing"], "attempts": [{"numeric": [">=", 5]}], "body": {"detail": {"n": [4]}}}`: true,
		`{"attributes": {"tenant": ["acme"]}}`:                                                          true,
		`{"target": ["shipping"]}`:                                                                      false,
		`{"body": {"detail": {"n": [5]}}}`:                                                              false,
	} {
		p, err := router.ParsePattern([]byte(pattern))
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := p.Match(Document(l)); ok != match {
			t.Errorf("%s matches: %v, want %v", pattern, ok, match)
		}
	}
	if got := string(Document(&Letter{Body: []byte("not json")})); got != `{"body":"not json"}` {
		t.Errorf("an unreadable letter's document: %s", got)
	}
}

func TestSubjectFilter_MakesPlaceholdersWildcards(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"dead.letters": "dead.letters", "dead.<tenant>.x": "dead.*.x", "dead.t-<switchyard.rule>": "dead.*"} {
		if got := subjectFilter(in); got != want {
			t.Errorf("subjectFilter(%q) = %q, want %q", in, got, want)
		}
	}
}

// Two dead letters of one delivery in the queue (written twice): the
// first is redriven, the second deleted without a call (delivered in this
// run), or, when the first failed again, deleted as a duplicate of the
// new dead letter, which stays.
func TestRedriver_SettlesEveryCopyOfADeliveryOnce(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("dlq", nil)
	var mu sync.Mutex
	calls := map[string]int{}
	for _, fn := range []string{"good", "bad"} {
		srv.Lambda().Register(awstest.Function{Name: fn, Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
			mu.Lock()
			calls[fn]++
			mu.Unlock()
			if fn == "bad" {
				return awstest.ErrorResult("Broken", "still broken")
			}
			return awstest.Result{}
		}})
	}
	cfg := loadConfig(t, `version: 1
aws: {region: us-east-1}
sources: [{name: jobs, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"}]
targets: [{name: good, type: lambda, function: good}, {name: bad, type: lambda, function: bad}]
rules: [{name: r, pattern: {source: [shop]}, targets: [good, bad]}]
`)
	writer := sqssink.New("dlq", sqssink.Config{QueueURL: url}, srv.SQSClient())
	dls := &DeadLetters{Writer: writer}
	quick := policy.Config{Timeout: time.Second, Retry: policy.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}}
	targets := map[string]router.Sink{}
	for _, fn := range []string{"good", "bad"} {
		targets[fn] = policy.Wrap(lambda.New(fn, lambda.Config{Function: fn, Invocation: "request_response"}, srv.LambdaClient(func(o *awslambda.Options) { o.Retryer = aws.NopRetryer{} })), quick, dls)
	}
	first := time.Now().Add(-time.Hour).UTC()
	for _, target := range []string{"good", "good", "bad", "bad"} {
		m := &router.Message{Source: "jobs", ID: "m-1", Body: []byte(`{"id":"ev-1","source":"shop","detail-type":"d","detail":{}}`)}
		d := &router.Delivery{ID: "x", Message: m, Payload: m.Body, DeadLetter: &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r",
			Target: target, Attempts: 5, FirstError: "503", LastError: "503", FirstAttempt: first, LastAttempt: first.Add(time.Minute)}}
		if err := writer.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	rb, err := NewRebuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Place: NewSQS(srv.SQSClient(), url), DeadLetters: dls, Targets: targets, Rebuild: rb, Rate: 1000, Hold: 10 * time.Second})
	if err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	t.Logf("received %d: redriven %d, already delivered %d, failed again %d, duplicates %d, own %d",
		st.Received.Load(), st.Redriven.Load(), st.AlreadyDelivered.Load(), st.FailedAgain.Load(), st.Duplicates.Load(), st.Own.Load())
	if st.Redriven.Load() != 1 || st.AlreadyDelivered.Load() != 1 || st.FailedAgain.Load() != 1 || st.Duplicates.Load() != 1 || st.Skipped.Load() != 0 {
		t.Errorf("want 1 redriven, 1 already delivered, 1 failed again, 1 duplicate")
	}
	if calls["good"] != 1 || calls["bad"] != 2 {
		t.Errorf("calls %v, want good once and bad's two attempts", calls)
	}
	ms, _ := srv.SQS().Messages("dlq")
	if len(ms) != 1 || ms[0].Attributes["switchyard-target"].StringValue != "bad" || ms[0].Attributes["switchyard-attempts"].StringValue != "7" ||
		ms[0].Attributes["switchyard-first-attempt"].StringValue != first.Format(time.RFC3339Nano) || ms[0].State != awstest.MessageVisible {
		t.Errorf("left in the queue: %+v", ms)
	}
}

// A dead letter that no redriven delivery expects is a wiring bug: it is
// refused for good, not written.
func TestDeadLetters_RefusesWhatItDoesNotExpect(t *testing.T) {
	t.Parallel()
	dls := &DeadLetters{Writer: policy.Wrap(&failSink{}, policy.Config{}, nil)}
	err := dls.Deliver(t.Context(), &router.Delivery{Message: &router.Message{}, DeadLetter: &router.DeadLetter{}})
	if !errors.Is(err, errUnexpected) || router.ClassOf(err) != router.Permanent {
		t.Errorf("error %v", err)
	}
	if (&DeadLetters{}).Name() != "redrive" {
		t.Error("a DeadLetters without a writer has no name")
	}
}

type failSink struct{}

func (*failSink) Name() string { return "f" }
func (*failSink) Deliver(context.Context, *router.Delivery) error {
	return fmt.Errorf("must not be called")
}

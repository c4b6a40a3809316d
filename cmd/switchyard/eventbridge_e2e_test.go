package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

const eventBridgeConfig = `
version: 1
aws:
  region: us-east-1
  endpoints: {sqs: "{{URL}}", eventbridge: "{{URL}}"}
shutdown_grace: 5s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s}
`

func shopEvent(id string, n int) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"Order Placed","source":"com.example.shop","account":"123456789012",`+
		`"time":"2026-11-20T12:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::orders"],"detail":{"order":%q,"n":%d}}`, id, "o-"+id, n)
}

// An event goes from SQS through switchyard run onto event buses: as it
// was (its detail, source and detail-type), and transformed (by an input
// in EventBridge's keys), under the target's own source and detail-type.
func TestRun_SQSToEventBridge(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.EventBridge().CreateEventBus("orders")
	srv.EventBridge().CreateEventBus("uploads")
	// The messages wait in the queue before the daemon starts, so that
	// receives take several at once and their deliveries share calls.
	for i := range 12 {
		srv.SQS().Send("jobs", awstest.Message{Body: shopEvent(fmt.Sprint(i), i)})
	}
	srv.SQS().Send("jobs", awstest.Message{Body: s3Event("s3-1", "img/a.png", 7)})
	startDaemon(t, srv, eventBridgeConfig+`
targets:
  - {name: orders, type: eventbridge, bus: orders}
  - {name: summaries, type: eventbridge, source: com.example.switchyard, detail_type: Order Summary, resources: []}
  - {name: uploads, type: eventbridge, bus: "arn:aws:events:us-east-1:123456789012:event-bus/uploads", source: com.example.uploads}
rules:
  - {name: forward, pattern: {source: [com.example.shop]}, targets: [orders]}
  - name: summarise
    pattern: {detail-type: [Order Placed]}
    input:
      InputTransformer:
        InputPathsMap: {order: $.detail.order, n: $.detail.n}
        InputTemplate: '{"order": <order>, "items": <n>, "rule": <aws.events.rule-name>}'
    targets: [summaries]
  - {name: s3, pattern: {source: [aws.s3]}, targets: [uploads]}
`)
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))

	forwarded := srv.EventBridge().Events("orders")
	summaries := srv.EventBridge().Events("default")
	uploads := srv.EventBridge().Events("uploads")
	if len(forwarded) != 12 || len(summaries) != 12 || len(uploads) != 1 {
		t.Fatalf("events: %d forwarded, %d summaries, %d uploads; want 12, 12, 1", len(forwarded), len(summaries), len(uploads))
	}
	var orders []string
	for _, e := range forwarded {
		var d struct {
			Order string `json:"order"`
			N     int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || e.Source != "com.example.shop" || e.DetailType != "Order Placed" ||
			!slices.Equal(e.Resources, []string{"arn:aws:s3:::orders"}) || !e.Time.Equal(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("forwarded event: %+v (%v)", e, err)
		}
		orders = append(orders, d.Order)
	}
	slices.Sort(orders)
	if len(slices.Compact(orders)) != 12 {
		t.Errorf("forwarded orders: %v", orders)
	}
	for _, e := range summaries {
		var d struct {
			Order string `json:"order"`
			Items int    `json:"items"`
			Rule  string `json:"rule"`
		}
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || !strings.HasPrefix(d.Order, "o-") || d.Rule != "summarise" ||
			e.Source != "com.example.switchyard" || e.DetailType != "Order Summary" || len(e.Resources) != 0 {
			t.Errorf("summary: %+v (%v)", e, err)
		}
	}
	if u := uploads[0]; u.Source != "com.example.uploads" || u.DetailType != "Object Created" || !strings.Contains(u.Detail, `"key":"img/a.png"`) {
		t.Errorf("upload: %+v", u)
	}
	// Events of one receive share calls.
	if n := largestCall(srv); n < 2 {
		t.Errorf("no PutEvents call carried more than %d entries", n)
	}
}

// Through the daemon's policies: a 5xx is retried, throttles are counted
// as throttles, a permanent refusal is dead-lettered after one call, and
// after a partial failure only the failed entries are sent again.
func TestRun_EventBridgeFailures(t *testing.T) {
	// setup starts the daemon after before has run.
	setup := func(t *testing.T, before func(*awstest.Server)) (*awstest.Server, *daemon) {
		srv := awstest.NewTestServer(t, awstest.Options{})
		srv.SQS().CreateQueue("jobs", nil)
		srv.SQS().CreateQueue("dlq", nil)
		if before != nil {
			before(srv)
		}
		d := startDaemon(t, srv, eventBridgeConfig+`
targets:
  - {name: bus, type: eventbridge}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {retry: {attempts: 5, initial: 10ms, max: 100ms}, dead_letter: dlq}
  last: {}
rules:
  - {name: r, pattern: {source: [com.example.shop]}, targets: [bus]}
`)
		return srv, d
	}
	deadLetters := func(srv *awstest.Server) int {
		ms, _ := srv.SQS().Messages("dlq")
		return len(ms)
	}

	t.Run("5xx retried", func(t *testing.T) {
		srv, _ := setup(t, nil)
		srv.FailNext("events:PutEvents", 2, awstest.InternalError("InternalException"))
		srv.SQS().Send("jobs", awstest.Message{Body: shopEvent("1", 1)})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
		if calls, ev := srv.Calls("events:PutEvents"), srv.EventBridge().Events("default"); calls != 3 || len(ev) != 1 || deadLetters(srv) != 0 {
			t.Errorf("%d calls, %d events, %d dead letters; want 3, 1, 0", calls, len(ev), deadLetters(srv))
		}
	})

	t.Run("throttles counted as throttles", func(t *testing.T) {
		srv, d := setup(t, nil)
		addr := adminAddr(t, d.stderr)
		srv.FailNext("events:PutEvents", 1, awstest.Throttled())
		srv.EventBridge().FailEntries(awstest.EntryFault{Code: "ThrottlingException", Times: 1})
		srv.SQS().Send("jobs", awstest.Message{Body: shopEvent("1", 1)})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
		var m map[string]float64
		waitFor(t, "the counters", func() bool {
			m = scrape(t, addr)
			return m[`switchyard_target_deliveries_total{outcome="delivered",target="bus"}`] == 1
		})
		if got := m[`switchyard_target_throttled_total{target="bus"}`]; got != 2 {
			t.Errorf("throttled %v, want 2 (the call's and the entry's)", got)
		}
		if th, re := m[`switchyard_target_attempt_duration_seconds{outcome="throttled",target="bus"}_count`],
			m[`switchyard_target_attempt_duration_seconds{outcome="retryable",target="bus"}_count`]; th != 2 || re != 0 {
			t.Errorf("attempts: %v throttled, %v retryable; want 2, 0", th, re)
		}
		if n := len(srv.EventBridge().Events("default")); n != 1 || srv.Calls("events:PutEvents") != 3 {
			t.Errorf("%d events after %d calls, want 1 after 3", n, srv.Calls("events:PutEvents"))
		}
	})

	t.Run("permanent dead-lettered", func(t *testing.T) {
		srv, _ := setup(t, nil)
		srv.EventBridge().FailEntries(awstest.EntryFault{Code: "AccessDeniedException", Message: "not on this bus"})
		srv.SQS().Send("jobs", awstest.Message{Body: shopEvent("1", 1)})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
		ms, _ := srv.SQS().Messages("dlq")
		if len(ms) != 1 || srv.Calls("events:PutEvents") != 1 ||
			!strings.Contains(ms[0].Attributes["switchyard-last-error"].StringValue, "entry refused: AccessDeniedException: not on this bus") {
			t.Fatalf("%d dead letters after %d calls: %+v", len(ms), srv.Calls("events:PutEvents"), ms)
		}
	})

	t.Run("partial batch failure", func(t *testing.T) {
		// The messages wait in the queue before the daemon starts, so
		// that one receive takes them all and their deliveries share calls.
		srv, _ := setup(t, func(srv *awstest.Server) {
			for i := range 8 {
				srv.SQS().Send("jobs", awstest.Message{Body: shopEvent(fmt.Sprint(i), i)})
			}
			for _, o := range []string{`"o-2"`, `"o-5"`} {
				srv.EventBridge().FailEntries(awstest.EntryFault{Code: "InternalFailure", Times: 1, Match: func(e awstest.EventBridgeEntry) bool {
					return strings.Contains(e.Detail, o)
				}})
			}
		})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
		entries, sentAgain := 0, map[string]int{}
		seen := map[string]int{}
		for _, call := range srv.EventBridge().PutEventsCalls() {
			for _, e := range call {
				entries++
				var d struct{ Order string }
				json.Unmarshal([]byte(e.Detail), &d)
				seen[d.Order]++
				if seen[d.Order] > 1 {
					sentAgain[d.Order]++
				}
			}
		}
		if entries != 10 || len(sentAgain) != 2 || sentAgain["o-2"] != 1 || sentAgain["o-5"] != 1 {
			t.Errorf("%d entries sent (want 8 and the 2 failed again), sent again: %v", entries, sentAgain)
		}
		if n := len(srv.EventBridge().Events("default")); n != 8 || deadLetters(srv) != 0 {
			t.Errorf("%d events, %d dead letters; want 8, 0", n, deadLetters(srv))
		}
		if n := largestCall(srv); n < 2 {
			t.Errorf("no PutEvents call carried more than %d entries: the deliveries did not share calls", n)
		}
	})

	t.Run("entry over 256 KiB refused before the call", func(t *testing.T) {
		srv := awstest.NewTestServer(t, awstest.Options{})
		srv.SQS().CreateQueue("jobs", nil)
		srv.SQS().CreateQueue("dlq", nil)
		startDaemon(t, srv, eventBridgeConfig+`
targets:
  - {name: bus, type: eventbridge}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
policies:
  default: {dead_letter: dlq}
  last: {}
rules:
  - name: twice
    pattern: {source: [com.example.shop]}
    input: {paths: {blob: $.detail.blob}, template: '{"a": <blob>, "b": <blob>}'}
    targets: [bus]
`)
		// 150 KB in the message; twice that in the rendered detail.
		body := fmt.Sprintf(`{"source":"com.example.shop","detail-type":"Big","detail":{"blob":%q}}`, strings.Repeat("x", 150_000))
		srv.SQS().Send("jobs", awstest.Message{Body: body})
		waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
		ms, _ := srv.SQS().Messages("dlq")
		if len(ms) != 1 || srv.Calls("events:PutEvents") != 0 ||
			!strings.Contains(ms[0].Attributes["switchyard-last-error"].StringValue, "over PutEvents' limit of 262144 bytes (256 KiB) for an entry") {
			t.Errorf("%d dead letters, %d calls: %+v", len(ms), srv.Calls("events:PutEvents"), ms)
		}
	})
}

// largestCall is the most entries a PutEvents call carried.
func largestCall(srv *awstest.Server) int {
	n := 0
	for _, c := range srv.EventBridge().PutEventsCalls() {
		n = max(n, len(c))
	}
	return n
}

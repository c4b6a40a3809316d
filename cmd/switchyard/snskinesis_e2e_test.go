package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

const streamsConfig = `
version: 1
aws:
  region: us-east-1
  endpoints: {sqs: "{{URL}}", sns: "{{URL}}", kinesis: "{{URL}}"}
shutdown_grace: 5s
sources:
  - {name: jobs, type: sqs, queue_url: "{{URL}}/123456789012/jobs", wait_time: 1s, visibility_timeout: 30s}
policies:
  default: {retry: {attempts: 3, initial: 10ms, max: 50ms}, dead_letter: dlq}
  last: {}
`

func placedOrder(id string, n int) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"Order Placed","source":"shop","account":"123456789012","time":"2026-11-20T12:00:00Z","region":"us-east-1","resources":[],"detail":{"orderId":"o-%d","tenant":"t-%d","total":%d}}`, id, n, n%3, n)
}

// An event goes through switchyard run to an SNS FIFO topic and a Kinesis
// stream: the subject, attributes and group rendered from it, the
// partition key its order id.
func TestRun_SQSToSNSAndKinesis(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("dlq", nil)
	topic, err := srv.SNS().CreateTopic(awstest.SNSTopic{Name: "orders.fifo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Kinesis().CreateStream("orders", 2); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, srv, streamsConfig+`
targets:
  - name: notify
    type: sns
    topic_arn: "`+topic+`"
    subject: "Order <$.detail.orderId>"
    message_attributes: {tenant: "<$.detail.tenant>"}
    message_group_id: "<$.detail.tenant>"
  - {name: clicks, type: kinesis, stream: orders, partition_key: "<$.detail.orderId>"}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
rules:
  - {name: orders, pattern: {detail-type: [Order Placed]}, targets: [notify, clicks]}
`)
	for i := range 12 {
		srv.SQS().Send("jobs", awstest.Message{Body: placedOrder(fmt.Sprintf("e-%d", i), i)})
	}
	waitFor(t, "12 messages and 12 records", func() bool {
		return len(srv.SNS().Messages("orders.fifo")) == 12 && len(srv.Kinesis().Records("orders")) == 12
	})
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))
	for _, m := range srv.SNS().Messages("orders.fifo") {
		var ev struct {
			ID     string `json:"id"`
			Detail struct {
				OrderID string `json:"orderId"`
				Tenant  string `json:"tenant"`
			} `json:"detail"`
		}
		if err := json.Unmarshal([]byte(m.Message), &ev); err != nil {
			t.Fatalf("message %q: %v", m.Message, err)
		}
		if m.Subject != "Order "+ev.Detail.OrderID || m.GroupID != ev.Detail.Tenant || m.Attributes["tenant"].StringValue != ev.Detail.Tenant ||
			m.Attributes["switchyard-event-id"].StringValue != ev.ID || m.Attributes["switchyard-rule"].StringValue != "orders" || len(m.DedupID) != 32 {
			t.Errorf("message %+v", m)
		}
	}
	var keys []string
	for _, r := range srv.Kinesis().Records("orders") {
		var ev struct {
			Detail struct{ OrderID string } `json:"detail"`
		}
		if err := json.Unmarshal(r.Data, &ev); err != nil || r.PartitionKey != ev.Detail.OrderID {
			t.Errorf("record %s keyed %q: %v", r.Data, r.PartitionKey, err)
		}
		keys = append(keys, r.PartitionKey)
	}
	slices.Sort(keys)
	if len(slices.Compact(keys)) != 12 {
		t.Errorf("partition keys %v", keys)
	}
	if ms, _ := srv.SQS().Messages("dlq"); len(ms) != 0 {
		t.Errorf("dead letters: %+v", ms)
	}
}

// Through switchyard run: records Kinesis fails are retried alone, SNS's
// 5xx and throttles are retried, and permanent SNS failures (a subject
// with no value, found before the call; a topic that does not exist) are
// dead-lettered.
func TestRun_SNSAndKinesisFailures(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.SQS().CreateQueue("jobs", nil)
	srv.SQS().CreateQueue("dlq", nil)
	topic, err := srv.SNS().CreateTopic(awstest.SNSTopic{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Kinesis().CreateStream("orders", 2); err != nil {
		t.Fatal(err)
	}
	// Each of these records fails once with a throughput error.
	var mu sync.Mutex
	failOnce := map[string]bool{"o-2": true, "o-5": true, "o-9": true}
	sent := 0
	srv.SetHook(func(op string, r *http.Request) *awstest.Fault {
		if op != "kinesis:PutRecords" {
			return nil
		}
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Records []struct{ PartitionKey string }
		}
		_ = json.Unmarshal(body, &in)
		mu.Lock()
		defer mu.Unlock()
		var now []string
		for _, rec := range in.Records {
			sent++
			if failOnce[rec.PartitionKey] {
				delete(failOnce, rec.PartitionKey)
				now = append(now, rec.PartitionKey)
			}
		}
		if len(now) == 0 {
			return nil
		}
		return &awstest.Fault{Code: "ProvisionedThroughputExceededException", BatchEntries: now}
	})
	srv.InjectFault(awstest.FaultRule{Op: "sns:Publish", Times: 2, Fault: awstest.InternalError("InternalError")})
	srv.InjectFault(awstest.FaultRule{Op: "sns:Publish", Times: 2, Fault: awstest.Fault{Code: "Throttled", Message: "Rate exceeded"}})
	startDaemon(t, srv, streamsConfig+`
targets:
  - {name: notify, type: sns, topic_arn: "`+topic+`", subject: "<kind>"}
  - {name: gone, type: sns, topic_arn: "arn:aws:sns:us-east-1:123456789012:gone"}
  - {name: clicks, type: kinesis, stream: orders, partition_key: "<$.detail.orderId>"}
  - {name: dlq, type: sqs, queue_url: "{{URL}}/123456789012/dlq", policy: last}
rules:
  - {name: orders, pattern: {detail-type: [Order Placed]}, targets: [clicks]}
  - name: notify
    pattern: {detail-type: [Order Placed], detail: {total: [{numeric: ["<", 2]}]}}
    input: {paths: {id: $.detail.orderId}, template: '{"id": <id>, "kind": "order"}'}
    targets: [notify]
  - name: notify-broken
    pattern: {detail-type: [Order Placed], detail: {total: [11]}}
    input: {paths: {id: $.detail.orderId}, template: '{"id": <id>}'}
    targets: [notify, gone]
`)
	for i := range 12 {
		srv.SQS().Send("jobs", awstest.Message{Body: placedOrder(fmt.Sprintf("e-%d", i), i)})
	}
	waitFor(t, "12 records", func() bool { return len(srv.Kinesis().Records("orders")) == 12 })
	waitFor(t, "2 messages", func() bool { return len(srv.SNS().Messages("orders")) == 2 })
	waitFor(t, "2 dead letters", func() bool { m, _ := srv.SQS().Messages("dlq"); return len(m) == 2 })
	waitFor(t, "the queue to drain", queueEmpty(t, srv, "jobs"))

	mu.Lock()
	if sent != 15 || len(failOnce) != 0 {
		t.Errorf("%d records sent (want 12, and the 3 failed again); not failed: %v", sent, failOnce)
	}
	mu.Unlock()
	var keys []string
	for _, r := range srv.Kinesis().Records("orders") {
		keys = append(keys, r.PartitionKey)
	}
	slices.Sort(keys)
	if len(slices.Compact(keys)) != 12 {
		t.Errorf("records stored more than once: %v", keys)
	}
	for _, m := range srv.SNS().Messages("orders") {
		if m.Subject != "order" || !strings.HasPrefix(m.Message, `{"id": "o-`) {
			t.Errorf("message %+v", m)
		}
	}
	if n := srv.Calls("sns:Publish"); n != 2+4+1 {
		t.Errorf("%d publishes: want 2 delivered, 4 retried (2 5xx, 2 throttles), 1 to the missing topic", n)
	}
	dl, _ := srv.SQS().Messages("dlq")
	want := map[string]string{"notify": "subject: placeholder <kind> has no value", "gone": "NotFound: Topic does not exist"}
	for _, m := range dl {
		a := m.Attributes
		target := a["switchyard-target"].StringValue
		if w, ok := want[target]; !ok || a["switchyard-rule"].StringValue != "notify-broken" || !strings.Contains(a["switchyard-last-error"].StringValue, w) {
			t.Errorf("dead letter %+v", a)
		}
		delete(want, target)
	}
}

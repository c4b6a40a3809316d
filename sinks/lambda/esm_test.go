package lambda

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/sqsmd5"
	"github.com/switchyard-dev/switchyard/router"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// A batch-mode invocation is the event Lambda's SQS event-source mapping
// would send for the same messages: a function written for the mapping,
// decoding it into the Lambda Go runtime's events.SQSEvent, finds every
// field of every record as the mapping writes it (the message's own
// receipt handle, its system attributes, typed message attributes and
// their digest, null without attributes, the queue's ARN and region).
func TestLambdaSink_BatchIsTheEventSourceMappingsEvent(t *testing.T) {
	srv := server(t)
	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	queues := map[string]awstest.Message{
		"orders.fifo": {Body: `{"order":1}`, GroupID: "customer-7", DeduplicationID: "order-1", TraceHeader: trace,
			Attributes: map[string]awstest.Attribute{
				"tenant":   {DataType: "String", StringValue: "acme"},
				"priority": {DataType: "Number.int", StringValue: "7"},
				"blob":     {DataType: "Binary", BinaryValue: []byte{0, 0xff, 'x'}},
				"label":    {DataType: "String.custom", StringValue: "ünï"},
			}},
		"jobs": {Body: "plain text, no attributes"},
	}
	var mu sync.Mutex
	var got []events.SQSMessage
	var raw []map[string]json.RawMessage
	srv.Lambda().Register(awstest.Function{Name: "fn", Handler: func(_ context.Context, inv awstest.Invocation) awstest.Result {
		var ev events.SQSEvent
		if err := json.Unmarshal(inv.Payload, &ev); err != nil {
			t.Errorf("events.SQSEvent: %v", err)
		}
		var recs struct{ Records []map[string]json.RawMessage }
		json.Unmarshal(inv.Payload, &recs)
		mu.Lock()
		got = append(got, ev.Records...)
		raw = append(raw, recs.Records...)
		mu.Unlock()
		return awstest.JSONResult(map[string]any{"batchItemFailures": []any{}})
	}})
	s := sink(t, srv, Config{Function: "fn", Batch: &Batch{Size: 10, Window: 200 * time.Millisecond}})

	want := map[string]events.SQSMessage{}
	var wg sync.WaitGroup
	for name, m := range queues {
		attrs := map[string]string{}
		if name == "orders.fifo" {
			attrs = map[string]string{"FifoQueue": "true"}
		}
		url, err := srv.SQS().CreateQueue(name, attrs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.SQS().Send(name, m); err != nil {
			t.Fatal(err)
		}
		cfg := sqssource.Config{QueueURL: url, WaitTime: time.Second}
		cfg.SetDefaults()
		src := sqssource.New(name, cfg, srv.SQSClient(), nil)
		if err := src.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close(context.Background()) })
		msgs, err := src.Receive(t.Context(), 10)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: received %d messages, %v", name, len(msgs), err)
		}
		// What the mapping would send for this receive, from the queue's
		// own record of it.
		infos, err := srv.SQS().Messages(name)
		if err != nil || len(infos) != 1 {
			t.Fatalf("%s: %v", name, err)
		}
		want[infos[0].ID] = mappingRecord(srv.SQS().QueueARN(name), infos[0])
		wg.Go(func() {
			if err := s.Deliver(t.Context(), &router.Delivery{ID: "d-" + name, Rule: "r", Target: "fn", Whole: true, Payload: msgs[0].Body, Message: msgs[0]}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	wg.Wait()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	// Without message attributes, the digest is null, as the mapping
	// writes it (events.SQSMessage reads null and "" alike).
	for _, r := range raw {
		var id string
		json.Unmarshal(r["messageId"], &id)
		if md5, attrs := string(r["md5OfMessageAttributes"]), len(want[id].MessageAttributes) > 0; attrs == (md5 == "null") {
			t.Errorf("record %s (attributes: %v): md5OfMessageAttributes %s", id, attrs, md5)
		}
	}
	for _, r := range got {
		w := want[r.MessageId]
		if !reflect.DeepEqual(r, w) {
			gb, _ := json.MarshalIndent(r, "", "  ")
			wb, _ := json.MarshalIndent(w, "", "  ")
			t.Errorf("record %s:\n got  %s\n want %s", r.MessageId, gb, wb)
		}
	}
}

// mappingRecord is the record Lambda's SQS event-source mapping writes for
// a message as the queue holds it after a receive (the mapping asks for
// all attributes).
func mappingRecord(queueARN string, m awstest.MessageInfo) events.SQSMessage {
	sum := md5.Sum([]byte(m.Body))
	r := events.SQSMessage{
		MessageId: m.ID, ReceiptHandle: m.ReceiptHandle, Body: m.Body, Md5OfBody: hex.EncodeToString(sum[:]),
		EventSource: "aws:sqs", EventSourceARN: queueARN, AWSRegion: "us-east-1",
		Attributes: map[string]string{
			"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":                    strconv.FormatInt(m.SentAt.UnixMilli(), 10),
			"SenderId":                         awstest.AccessKeyID,
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceivedAt.UnixMilli(), 10),
		},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
	}
	for k, v := range map[string]string{"MessageGroupId": m.GroupID, "MessageDeduplicationId": m.DeduplicationID,
		"SequenceNumber": m.SequenceNumber, "AWSTraceHeader": m.TraceHeader} {
		if v != "" {
			r.Attributes[k] = v
		}
	}
	digest := map[string]sqsmd5.Attribute{}
	for k, a := range m.Attributes {
		ma := events.SQSMessageAttribute{DataType: a.DataType, StringListValues: []string{}, BinaryListValues: [][]byte{}}
		v := []byte(a.StringValue)
		if sqsmd5.IsBinary(a.DataType) {
			ma.BinaryValue, v = a.BinaryValue, a.BinaryValue
		} else {
			ma.StringValue = &a.StringValue
		}
		r.MessageAttributes[k] = ma
		digest[k] = sqsmd5.Attribute{DataType: a.DataType, Value: v}
	}
	r.Md5OfMessageAttributes = sqsmd5.Attributes(digest)
	return r
}

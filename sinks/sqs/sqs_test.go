package sqs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func delivery() *router.Delivery {
	ev, _ := router.ParseEvent([]byte(`{"id":"ev-1","source":"s","detail-type":"d","detail":{}}`), time.Now())
	return &router.Delivery{ID: "d-1", Rule: "r", Target: "q", Payload: []byte(`{"k":1}`),
		Message: &router.Message{ID: "m-1", Source: "jobs", Body: []byte("orig"), Event: ev, Group: "g"}}
}

func TestSQSSink_SendsWithOrigin(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out", nil)
	s := New("out", Config{QueueURL: url}, srv.SQSClient())
	if err := s.Deliver(t.Context(), delivery()); err != nil {
		t.Fatal(err)
	}
	ms, _ := srv.SQS().Messages("out")
	if len(ms) != 1 || ms[0].Body != `{"k":1}` {
		t.Fatalf("messages: %+v", ms)
	}
	for k, v := range map[string]string{"switchyard-source": "jobs", "switchyard-message-id": "m-1", "switchyard-rule": "r",
		"switchyard-delivery-id": "d-1", "switchyard-event-id": "ev-1"} {
		if a := ms[0].Attributes[k]; a.StringValue != v {
			t.Errorf("attribute %s = %q, want %q", k, a.StringValue, v)
		}
	}
}

func TestSQSSink_DeadLetterCarriesWhy(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("dlq", nil)
	s := New("dlq", Config{QueueURL: url}, srv.SQSClient())
	d := delivery()
	first := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	d.Payload = d.Message.Body
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r", Target: "thumbs", Attempts: 5,
		FirstError: "503", LastError: strings.Repeat("e", 5000), FirstAttempt: first, LastAttempt: first.Add(time.Minute)}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ms, _ := srv.SQS().Messages("dlq")
	a := ms[0].Attributes
	if ms[0].Body != "orig" || a["switchyard-attempts"].StringValue != "5" || a["switchyard-attempts"].DataType != "Number" ||
		a["switchyard-target"].StringValue != "thumbs" || a["switchyard-first-error"].StringValue != "503" ||
		len(a["switchyard-last-error"].StringValue) != maxErrorAttribute || a["switchyard-first-attempt"].StringValue != "2026-11-20T12:00:00Z" ||
		a["switchyard-last-attempt"].StringValue != "2026-11-20T12:01:00Z" {
		t.Errorf("dead letter: body %q attributes %+v", ms[0].Body, a)
	}
}

// On a FIFO queue a retried send of one delivery is not delivered twice.
func TestSQSSink_FIFODeduplicatesRetries(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out.fifo", map[string]string{"FifoQueue": "true"})
	s := New("out", Config{QueueURL: url}, srv.SQSClient())
	for range 2 {
		if err := s.Deliver(t.Context(), delivery()); err != nil {
			t.Fatal(err)
		}
	}
	ms, _ := srv.SQS().Messages("out.fifo")
	if len(ms) != 1 || ms[0].GroupID != "g" || ms[0].DeduplicationID != "d-1" {
		t.Errorf("messages: %+v", ms)
	}
}

func TestSQSSink_Classifies(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out", nil)
	missing := New("gone", Config{QueueURL: srv.SQS().QueueURL("gone")}, srv.SQSClient())
	if err := missing.Deliver(t.Context(), delivery()); router.ClassOf(err) != router.Permanent {
		t.Errorf("missing queue: %v (%s)", err, router.ClassOf(err))
	}
	s := New("out", Config{QueueURL: url}, srv.SQSClient())
	srv.FailNext("sqs:SendMessage", 1, awstest.Throttled())
	if err := s.Deliver(t.Context(), delivery()); router.ClassOf(err) != router.Throttled {
		t.Errorf("throttled: %v (%s)", err, router.ClassOf(err))
	}
	srv.FailNext("sqs:SendMessage", 1, awstest.InternalError("InternalError"))
	if err := s.Deliver(t.Context(), delivery()); router.ClassOf(err) != router.Retryable {
		t.Errorf("500: %v (%s)", err, router.ClassOf(err))
	}
	bad := delivery()
	bad.Payload = []byte("bad \x00 character")
	if err := s.Deliver(t.Context(), bad); router.ClassOf(err) != router.Permanent {
		t.Errorf("invalid body: %v (%s)", err, router.ClassOf(err))
	}
}

// The delivery's trace context goes as the AWSTraceHeader system
// attribute, in X-Ray form, and none without one.
func TestSQSSink_SendsAWSTraceHeader(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out", nil)
	s := New("out", Config{QueueURL: url}, srv.SQSClient())
	traced := delivery()
	traced.Trace = router.TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}
	for _, d := range []*router.Delivery{traced, delivery()} {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ms, _ := srv.SQS().Messages("out")
	want := []string{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", ""}
	for i, m := range ms {
		if m.TraceHeader != want[i] {
			t.Errorf("message %d: AWSTraceHeader %q, want %q", i, m.TraceHeader, want[i])
		}
	}
}

// Attributes without types (NATS headers) go to a dead letter as Strings;
// names SQS refuses are left out and named in the record, and an earlier
// hop's switchyard-* attributes give way to this dead letter's record.
func TestSQSSink_DeadLetterKeepsTheOriginalAttributes(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("dlq", nil)
	s := New("dlq", Config{QueueURL: url}, srv.SQSClient())
	d := delivery()
	d.Payload = d.Message.Body
	d.Message.Attributes = map[string]string{"Tenant": "acme", "Content-Type": "application/json", "X weird": "v", "switchyard-rule": "old"}
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r", Target: "thumbs", Attempts: 2,
		LastError: "boom", Attributes: d.Message.Attributes}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ms, _ := srv.SQS().Messages("dlq")
	a := ms[0].Attributes
	var rec map[string]any
	if err := json.Unmarshal([]byte(a["switchyard-dead-letter"].StringValue), &rec); err != nil {
		t.Fatalf("switchyard-dead-letter: %v (%+v)", err, a)
	}
	if len(a) != 3 || a["Tenant"].StringValue != "acme" || a["Tenant"].DataType != "String" || a["Content-Type"].StringValue != "application/json" ||
		rec["rule"] != "r" || rec["attempts"] != 2.0 || rec["last_error"] != "boom" || fmt.Sprint(rec["dropped_attributes"]) != "[X weird]" || rec["attributes"] != nil {
		t.Errorf("dead letter attributes %+v, record %v", a, rec)
	}
}

// An error cut to fit an attribute is cut between characters.
func TestAttributes_TruncatesErrorsAtACharacter(t *testing.T) {
	d := delivery()
	d.DeadLetter = &router.DeadLetter{Source: "jobs", LastError: strings.Repeat("€", 1000)}
	v := *Attributes(d)["switchyard-last-error"].StringValue
	if !utf8.ValidString(v) || len(v) > maxErrorAttribute || len(v) < maxErrorAttribute-3 {
		t.Errorf("a %d-byte error is cut to %d bytes, valid UTF-8 %v", 3000, len(v), utf8.ValidString(v))
	}
}

// A payload that is not UTF-8 (a dead letter's body from a NATS source) is
// sent once, with U+FFFD for each invalid sequence: not sent, refused by
// the SDK's checksum and sent again, storing a copy on every attempt.
func TestSQSSink_InvalidUTF8IsSentOnceAsReplacement(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("dlq", nil)
	s := New("dlq", Config{QueueURL: url}, srv.SQSClient())
	d := delivery()
	d.Message.Body = []byte("caf\xe9 \xff\xfe ok")
	d.Payload = d.Message.Body
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Attempts: 1, LastError: "503", FirstAttempt: time.Now(), LastAttempt: time.Now()}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Errorf("Deliver = %v (%s), want it sent", err, router.ClassOf(err))
	}
	ms, _ := srv.SQS().Messages("dlq")
	if len(ms) != 1 || ms[0].Body != "caf\uFFFD \uFFFD\uFFFD ok" {
		t.Fatalf("messages %+v, want one with U+FFFD in place of the invalid bytes", ms)
	}
}

// A dead letter's attributes are switchyard's record: an error text from a
// target with bytes SQS refuses, or cut inside a character by the length
// limit, must not make the dead letter undeliverable.
func TestSQSSink_AttributesAreTextSQSAccepts(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("dlq", nil)
	s := New("dlq", Config{QueueURL: url}, srv.SQSClient())
	d := delivery()
	d.Payload = d.Message.Body
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Attempts: 1,
		FirstError:   "bad \x00 \xff answer",
		LastError:    "x" + strings.Repeat("é", maxErrorAttribute),
		FirstAttempt: time.Now(), LastAttempt: time.Now()}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("Deliver = %v (%s), want it sent", err, router.ClassOf(err))
	}
	ms, _ := srv.SQS().Messages("dlq")
	a := ms[0].Attributes
	if first := a["switchyard-first-error"].StringValue; first != "bad \uFFFD \uFFFD answer" {
		t.Errorf("first error attribute %q", first)
	}
	if last := a["switchyard-last-error"].StringValue; last != "x"+strings.Repeat("é", maxErrorAttribute/2-1) {
		t.Errorf("last error attribute %q (%d bytes), want whole characters up to %d bytes", last, len(last), maxErrorAttribute)
	}
}

// SQS accepted the message when it answers with its id, whatever the MD5
// says: a retry would store it again, so a mismatch is permanent, not
// retryable, and says which message the queue holds.
func TestSQSSink_ChecksumMismatchIsPermanent(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out", nil)
	s := New("out", Config{QueueURL: url}, srv.SQSClient())
	srv.FailNext("sqs:SendMessage", 1, awstest.Fault{Commit: true, Status: 200,
		Body: []byte(`{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274","MD5OfMessageBody":"00000000000000000000000000000000"}`)})
	err := s.Deliver(t.Context(), delivery())
	if router.ClassOf(err) != router.Permanent || !strings.Contains(fmt.Sprint(err), "5fea7756-0ea4-451a-a703-a558b933e274") {
		t.Errorf("Deliver = %v (%s), want permanent, naming the stored message", err, router.ClassOf(err))
	}
	if ms, _ := srv.SQS().Messages("out"); len(ms) != 1 {
		t.Errorf("%d messages, want the one accepted", len(ms))
	}
}

// message_group_id sets a FIFO message's group from the payload or the
// event; a value that does not fill, or fills to what SQS refuses, fails
// the delivery for good without a send.
func TestSQSSink_FIFOMessageGroup(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, _ := srv.SQS().CreateQueue("out.fifo", map[string]string{"FifoQueue": "true"})
	for _, tc := range []struct {
		group, payload, want, fails string
	}{
		{"customer-<$.detail.customer>", `{"k":1}`, "customer-c7", ""},
		{"<k>", `{"k":"from-payload"}`, "from-payload", ""},
		{"fixed", `{}`, "fixed", ""},
		{"<missing>", `{}`, "", "message_group_id"},
		{"<k>", `{"k":"has space"}`, "", "no spaces"},
	} {
		cfg := Config{QueueURL: url, MessageGroupID: tc.group}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.group, err)
		}
		before, _ := srv.SQS().Messages("out.fifo")
		d := delivery()
		d.ID, d.Payload = "d-"+tc.group+tc.payload, []byte(tc.payload)
		d.Message.Event, _ = router.ParseEvent([]byte(`{"id":"ev-1","source":"s","detail-type":"d","detail":{"customer":"c7"}}`), time.Now())
		err := New("out", cfg, srv.SQSClient()).Deliver(t.Context(), d)
		after, _ := srv.SQS().Messages("out.fifo")
		if tc.fails != "" {
			if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), tc.fails) || len(after) != len(before) {
				t.Errorf("%s with %s: %v (%s), %d sent; want a permanent error naming %q and nothing sent", tc.group, tc.payload, err, router.ClassOf(err), len(after)-len(before), tc.fails)
			}
			continue
		}
		if err != nil || len(after) != len(before)+1 || after[len(after)-1].GroupID != tc.want {
			t.Errorf("%s with %s: %v, group %q; want %q", tc.group, tc.payload, err, after[len(after)-1].GroupID, tc.want)
		}
	}
}

func TestSQSConfig_MessageGroup(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/out", MessageGroupID: "g"}, "message_group_id: a standard queue has no message groups"},
		{Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/out.fifo", MessageGroupID: "a b"}, "message_group_id: \"a b\""},
		{Config{QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/out.fifo", MessageGroupID: strings.Repeat("g", 129)}, "message_group_id: 129 characters: AWS takes 1 to 128"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

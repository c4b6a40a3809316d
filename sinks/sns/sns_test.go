package sns

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const topicARN = "arn:aws:sns:us-east-1:123456789012:orders"

func delivery(t *testing.T) *router.Delivery {
	t.Helper()
	ev, err := router.ParseEvent([]byte(`{"id":"ev-1","source":"shop","detail-type":"Order Placed","detail":{"orderId":"o-42","tenant":"acme","total":12.5}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &router.Delivery{ID: "3f1c0a9e8b7d6c5f4e3d2c1b0a998877", Rule: "orders", Target: "t", Payload: []byte(`{"order":"o-42","kind":"web"}`),
		Message: &router.Message{ID: "m-1", Source: "jobs", Body: []byte("orig"), Event: ev}}
}

func newSink(t *testing.T, cfg Config, topic awstest.SNSTopic) (*Sink, *awstest.Server) {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	arn, err := srv.SNS().CreateTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TopicARN = arn
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New("t", cfg, srv.SNSClient()), srv
}

func TestSNSSink_Publishes(t *testing.T) {
	t.Parallel()
	s, srv := newSink(t, Config{
		Subject:           "Order <order> (<$.detail.tenant>)",
		MessageAttributes: map[string]string{"tenant": "<$.detail.tenant>", "kind": "<kind>", "fixed": "v1", "empty": "<$.detail.none-such>x"},
	}, awstest.SNSTopic{Name: "orders"})
	s.cfg.MessageAttributes["empty"] = "" // set after validation: a value that fills to nothing
	s.attrs = New("t", s.cfg, s.api).attrs
	d := delivery(t)
	d.Trace = router.TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	ms := srv.SNS().Messages("orders")
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	m := ms[0]
	if m.Message != `{"order":"o-42","kind":"web"}` || m.Subject != "Order o-42 (acme)" || m.GroupID != "" || m.DedupID != "" ||
		m.TraceHeader != "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" {
		t.Errorf("message %+v", m)
	}
	want := map[string]string{"tenant": "acme", "kind": "web", "fixed": "v1", "switchyard-delivery-id": d.ID, "switchyard-event-id": "ev-1",
		"switchyard-rule": "orders", "switchyard-source": "jobs", "switchyard-message-id": "m-1"}
	if len(m.Attributes) != len(want) {
		t.Errorf("attributes %v, want %v", m.Attributes, want)
	}
	for k, v := range want {
		if a := m.Attributes[k]; a.StringValue != v || a.DataType != "String" {
			t.Errorf("attribute %s = %+v, want %q", k, a, v)
		}
	}

	// Without a trace context, no header; a text payload goes as it is.
	plain := delivery(t)
	plain.Payload, plain.Text = []byte("plain text"), true
	s2, srv2 := newSink(t, Config{}, awstest.SNSTopic{Name: "orders"})
	if err := s2.Deliver(t.Context(), plain); err != nil {
		t.Fatal(err)
	}
	if m := srv2.SNS().Messages("orders")[0]; m.TraceHeader != "" || m.Message != "plain text" || m.Subject != "" {
		t.Errorf("plain: %+v", m)
	}
}

// switchyard's attributes fill what the configured ones leave of SNS's 10.
func TestSNSSink_AttributesWithinTen(t *testing.T) {
	t.Parallel()
	attrs := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		attrs[k] = k
	}
	s, srv := newSink(t, Config{MessageAttributes: attrs}, awstest.SNSTopic{Name: "orders"})
	if err := s.Deliver(t.Context(), delivery(t)); err != nil {
		t.Fatal(err)
	}
	a := srv.SNS().Messages("orders")[0].Attributes
	if len(a) != 10 || a["switchyard-delivery-id"].StringValue == "" || a["switchyard-event-id"].StringValue != "ev-1" || a["h"].StringValue != "h" {
		t.Errorf("attributes %v", a)
	}
}

// On a FIFO topic the group is the source message's (else the rule), the
// deduplication id the delivery id: a second publish of one delivery is
// dropped by SNS.
func TestSNSSink_FIFO(t *testing.T) {
	t.Parallel()
	s, srv := newSink(t, Config{}, awstest.SNSTopic{Name: "orders.fifo"})
	d := delivery(t)
	for range 2 {
		if err := s.Deliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	grouped := delivery(t)
	grouped.ID = "another-delivery"
	grouped.Message.Group = "customer-7"
	if err := s.Deliver(t.Context(), grouped); err != nil {
		t.Fatal(err)
	}
	ms := srv.SNS().Messages("orders.fifo")
	if len(ms) != 2 || ms[0].GroupID != "orders" || ms[0].DedupID != d.ID || ms[1].GroupID != "customer-7" || ms[1].DedupID != "another-delivery" {
		t.Errorf("messages %+v", ms)
	}
	if n := srv.Calls("sns:Publish"); n != 3 {
		t.Errorf("%d calls", n)
	}

	// A configured group, from the event.
	s2, srv2 := newSink(t, Config{MessageGroupID: "tenant-<$.detail.tenant>"}, awstest.SNSTopic{Name: "orders.fifo"})
	if err := s2.Deliver(t.Context(), delivery(t)); err != nil {
		t.Fatal(err)
	}
	if m := srv2.SNS().Messages("orders.fifo")[0]; m.GroupID != "tenant-acme" {
		t.Errorf("group %q", m.GroupID)
	}
	// An overlong or odd default group is made one SNS takes.
	long := delivery(t)
	long.Message.Group = strings.Repeat("é", 100)
	if g := defaultGroup(long); len(g) != maxToken || names.CheckGroupID(g) != nil {
		t.Errorf("default group %q", g)
	}
}

// A group id on a standard topic goes to SQS fair queues; no
// deduplication id is sent there.
func TestSNSSink_StandardTopicGroup(t *testing.T) {
	t.Parallel()
	s, srv := newSink(t, Config{MessageGroupID: "<$.detail.tenant>"}, awstest.SNSTopic{Name: "orders"})
	if err := s.Deliver(t.Context(), delivery(t)); err != nil {
		t.Fatal(err)
	}
	if m := srv.SNS().Messages("orders")[0]; m.GroupID != "acme" || m.DedupID != "" {
		t.Errorf("message %+v", m)
	}
}

// What SNS could never take fails for good before any call.
func TestSNSSink_RefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		payload string
		want    string
	}{
		{"over 256 KiB", Config{}, `"` + strings.Repeat("x", 256<<10) + `"`, "over the topic's limit of 256KiB (max_message_size"},
		{"attributes count", Config{MessageAttributes: map[string]string{"big": strings.Repeat("v", 100)}}, `"` + strings.Repeat("x", 256<<10-150) + `"`, "over the topic's limit of 256KiB"},
		{"attribute placeholder with no value", Config{MessageAttributes: map[string]string{"c": "<customer>"}}, `{"order":"o"}`, `message_attributes c: placeholder <customer> has no value`},
		{"group placeholder with no value", Config{MessageGroupID: "<$.detail.region>"}, `{}`, "message_group_id: placeholder <$.detail.region> has no value: the event has no $.detail.region"},
		{"group too long", Config{MessageGroupID: "<long>"}, `{"long":"` + strings.Repeat("g", 129) + `"}`, "message_group_id \"ggg"},
		{"group with a space", Config{MessageGroupID: "<kind>"}, `{"kind":"a b"}`, "only letters, digits and punctuation"},
		{"subject too long", Config{Subject: "<s>"}, `{"s":"` + strings.Repeat("s", 100) + `"}`, "100 characters: SNS takes subjects under 100"},
		{"subject with a line break", Config{Subject: "<s>"}, `{"s":"a\nb"}`, "no line breaks"},
		{"empty payload", Config{}, ``, "SNS publishes no empty messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := newSink(t, tc.cfg, awstest.SNSTopic{Name: "orders"})
			d := delivery(t)
			d.Payload = []byte(tc.payload)
			err := s.Deliver(t.Context(), d)
			if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v (%s), want permanent %q", err, router.ClassOf(err), tc.want)
			}
			if n := srv.Calls("sns:Publish"); n != 0 {
				t.Errorf("%d calls made", n)
			}
		})
	}
	// max_message_size raised for a topic that takes 1 MiB.
	s, srv := newSink(t, Config{MaxMessageSize: size.MiB}, awstest.SNSTopic{Name: "large", MaximumMessageSize: 1 << 20})
	d := delivery(t)
	d.Payload = []byte(`"` + strings.Repeat("x", 300<<10) + `"`)
	if err := s.Deliver(t.Context(), d); err != nil || len(srv.SNS().Messages("large")) != 1 {
		t.Errorf("300 KiB to a 1 MiB topic: %v", err)
	}
}

func TestSNSSink_Classifies(t *testing.T) {
	t.Parallel()
	s, srv := newSink(t, Config{}, awstest.SNSTopic{Name: "orders"})
	for _, tc := range []struct {
		fault awstest.Fault
		want  router.Class
	}{
		{awstest.Fault{Code: "Throttled", Message: "Rate exceeded"}, router.Throttled},
		{awstest.Fault{Status: 400, Code: "Throttling", Message: "Rate exceeded"}, router.Throttled},
		{awstest.Fault{Code: "KMSThrottling"}, router.Throttled},
		{awstest.Fault{Status: http.StatusTooManyRequests}, router.Throttled},
		{awstest.Fault{Code: "NotFound", Message: "Topic does not exist"}, router.Permanent},
		{awstest.Fault{Code: "AuthorizationError"}, router.Permanent},
		{awstest.Fault{Code: "InvalidParameter"}, router.Permanent},
		{awstest.Fault{Code: "ParameterValueInvalid"}, router.Permanent},
		{awstest.Fault{Code: "InvalidSecurity"}, router.Permanent},
		{awstest.Fault{Code: "EndpointDisabled"}, router.Permanent},
		{awstest.Fault{Code: "PlatformApplicationDisabled"}, router.Permanent},
		{awstest.Fault{Code: "KMSAccessDenied"}, router.Permanent},
		{awstest.Fault{Code: "KMSDisabled"}, router.Permanent},
		{awstest.Fault{Code: "KMSInvalidState"}, router.Permanent},
		{awstest.Fault{Code: "KMSNotFound"}, router.Permanent},
		{awstest.Fault{Code: "KMSOptInRequired"}, router.Permanent},
		{awstest.Fault{Code: "ValidationException"}, router.Permanent},
		{awstest.InternalError("InternalError"), router.Retryable},
		{awstest.Unavailable(), router.Retryable},
		{awstest.Fault{Status: http.StatusBadGateway, Body: []byte("<html>bad gateway</html>")}, router.Retryable},
		{awstest.Fault{Drop: true}, router.Retryable},
	} {
		srv.FailNext("sns:Publish", 1, tc.fault)
		err := s.Deliver(t.Context(), delivery(t))
		if router.ClassOf(err) != tc.want {
			t.Errorf("%+v: %v is %s, want %s", tc.fault, err, router.ClassOf(err), tc.want)
		}
	}
	if n := len(srv.SNS().Messages("orders")); n != 0 {
		t.Errorf("%d published", n)
	}
}

// A dead letter's message is the record of why and the original body.
func TestSNSSink_DeadLetter(t *testing.T) {
	t.Parallel()
	s, srv := newSink(t, Config{}, awstest.SNSTopic{Name: "dlq"})
	d := delivery(t)
	d.Payload = d.Message.Body
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "orders", Target: "app", Attempts: 5, LastError: "503"}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		DeadLetter router.DeadLetter `json:"dead_letter"`
		Body       string            `json:"body"`
	}
	m := srv.SNS().Messages("dlq")[0]
	if err := json.Unmarshal([]byte(m.Message), &doc); err != nil || doc.Body != "orig" || doc.DeadLetter.Target != "app" || doc.DeadLetter.Attempts != 5 {
		t.Errorf("dead letter %s: %v", m.Message, err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for _, k := range strings.Split("a b c d e f g h i j k", " ") {
		many[k] = "v"
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TopicARN: topicARN}, ""},
		{Config{TopicARN: "arn:aws-cn:sns:cn-north-1:123456789012:orders.fifo", MessageGroupID: "<$.detail.tenant>", Subject: "New <$.detail-type>",
			MessageAttributes: map[string]string{"tenant": "<$.detail.tenant>", "x.y-z_1": "v"}, MaxMessageSize: size.MiB}, ""},
		{Config{}, "topic_arn: required"},
		{Config{TopicARN: "orders"}, "not an SNS topic ARN"},
		{Config{TopicARN: "arn:aws:sqs:us-east-1:123456789012:orders"}, "not an SNS topic ARN"},
		{Config{TopicARN: "arn:aws:sns:us-east-1:1234:orders"}, "the account \"1234\" is not 12 digits"},
		{Config{TopicARN: "arn:aws:sns:us-east-1:123456789012:my topic"}, "a topic name has 1 to 256"},
		{Config{TopicARN: "arn:aws:sns:us-east-1:123456789012:.fifo"}, "a topic name has 1 to 256"},
		{Config{TopicARN: "arn:aws:sns::123456789012:orders"}, "is not a region"},
		{Config{TopicARN: topicARN, Subject: strings.Repeat("s", 100)}, "subject: 100 characters"},
		{Config{TopicARN: topicARN, Subject: "a\tb"}, "subject: SNS takes no line breaks"},
		{Config{TopicARN: topicARN, Subject: "<$.detail[x]>"}, "subject: placeholder <$.detail[x]>"},
		{Config{TopicARN: topicARN, MessageAttributes: many}, "11 attributes exceed SNS's limit of 10"},
		{Config{TopicARN: topicARN, MessageAttributes: map[string]string{"AWS.trace": "v"}}, "reserved by SNS"},
		{Config{TopicARN: topicARN, MessageAttributes: map[string]string{"switchyard-rule": "v"}}, "reserved for switchyard's own"},
		{Config{TopicARN: topicARN, MessageAttributes: map[string]string{"a..b": "v"}}, "two in a row"},
		{Config{TopicARN: topicARN, MessageAttributes: map[string]string{"a b": "v"}}, "letters, digits"},
		{Config{TopicARN: topicARN, MessageAttributes: map[string]string{"k": "<$.a[b]>"}}, "message_attributes: k: placeholder"},
		{Config{TopicARN: topicARN, MessageGroupID: "has space"}, "message_group_id: \"has space\""},
		{Config{TopicARN: topicARN, MessageGroupID: strings.Repeat("g", 128) + "<x>"}, "message_group_id: 129 characters"},
		{Config{TopicARN: topicARN, MaxMessageSize: 2 * size.MiB}, "max_message_size: 2MiB is outside SNS's range of 1KiB to 1MiB"},
		{Config{TopicARN: topicARN, MaxMessageSize: 512}, "max_message_size"},
	} {
		kindtest.Check(t, tc.cfg, tc.want)
	}
	c := Config{TopicARN: topicARN}
	c.SetDefaults()
	if c.MaxMessageSize != 256*size.KiB {
		t.Errorf("default max_message_size %s", c.MaxMessageSize)
	}
}

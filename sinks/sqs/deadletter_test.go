package sqs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/router"
)

// receiveAll takes every message of a queue through the SDK, with its
// attributes.
func receiveAll(t *testing.T, srv *awstest.Server, url string) []types.Message {
	t.Helper()
	var out []types.Message
	for range 10 {
		res, err := srv.SQSClient().ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		out = append(out, res.Messages...)
	}
	t.Fatal("more messages than expected")
	return nil
}

// A dead letter written by the sink reads back as it was written, in
// either form of its record (nine attributes, or one of JSON when the
// original's attributes take the room).
func TestDeadLetterOf_ReadsWhatDeliverWrites(t *testing.T) {
	first := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	rec := router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r", Target: "thumbs", Attempts: 5,
		FirstError: "503", LastError: "lambda thumbs: timeout", FirstAttempt: first, LastAttempt: first.Add(time.Minute)}
	for _, tc := range []struct {
		name  string
		attrs map[string]router.Attribute
		form  string
		rec   func(r *router.DeadLetter)
	}{
		{name: "no attributes", form: "switchyard-attempts"},
		{name: "one Number attribute", form: "switchyard-attempts",
			attrs: map[string]router.Attribute{"size": {DataType: "Number.int", StringValue: "42"}}},
		{name: "String and Binary attributes", form: "switchyard-dead-letter",
			attrs: map[string]router.Attribute{"tenant": {DataType: "String", StringValue: "acme"}, "blob": {DataType: "Binary.png", BinaryValue: []byte{1, 2, 0}}}},
		{name: "a malformed message's, with no rule or target", form: "switchyard-attempts",
			rec: func(r *router.DeadLetter) { r.Rule, r.Target, r.Attempts = "", "", 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := awstest.NewTestServer(t, awstest.Options{})
			url, _ := srv.SQS().CreateQueue("dlq", nil)
			want := rec
			if tc.rec != nil {
				tc.rec(&want)
			}
			d := delivery()
			d.Message.Body = []byte(`{"detail": {"n": 1}}`)
			d.Message.TypedAttributes = tc.attrs
			d.Payload = d.Message.Body
			w := want
			d.DeadLetter = &w
			if err := New("dlq", Config{QueueURL: url}, srv.SQSClient()).Deliver(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			ms := receiveAll(t, srv, url)
			if len(ms) != 1 {
				t.Fatalf("%d messages", len(ms))
			}
			if _, ok := ms[0].MessageAttributes[tc.form]; !ok {
				t.Fatalf("the record is not in %s: %v", tc.form, ms[0].MessageAttributes)
			}
			got, orig, body, err := DeadLetterOf(aws.ToString(ms[0].Body), ms[0].MessageAttributes)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.attrs) > 0 {
				want.Attributes = map[string]string{}
				for k, a := range tc.attrs {
					if !a.IsBinary() {
						want.Attributes[k] = a.StringValue
					}
				}
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("record\n got %+v\nwant %+v", *got, want)
			}
			if !reflect.DeepEqual(orig, tc.attrs) {
				t.Errorf("attributes %+v, want %+v", orig, tc.attrs)
			}
			if string(body) != `{"detail": {"n": 1}}` {
				t.Errorf("body %q", body)
			}
		})
	}
}

func TestDeadLetterOf_RefusesWhatIsNotOne(t *testing.T) {
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	num := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(v)}
	}
	nine := func(change func(map[string]types.MessageAttributeValue)) map[string]types.MessageAttributeValue {
		a := map[string]types.MessageAttributeValue{"switchyard-source": str("jobs"), "switchyard-message-id": str("m-1"),
			"switchyard-attempts": num("3"), "switchyard-last-attempt": str("2026-11-20T12:00:00Z")}
		change(a)
		return a
	}
	for _, tc := range []struct {
		name  string
		body  string
		attrs map[string]types.MessageAttributeValue
		want  string
	}{
		{"a plain message", `{"source":"s","detail-type":"d","detail":{}}`, map[string]types.MessageAttributeValue{"tenant": str("a")},
			"no switchyard-dead-letter or switchyard-attempts attribute"},
		{"a delivery, not a dead letter", `{}`, map[string]types.MessageAttributeValue{"switchyard-delivery-id": str("d"), "switchyard-rule": str("r")},
			"no switchyard-dead-letter or switchyard-attempts attribute"},
		{"attempts not a number", `{}`, nine(func(a map[string]types.MessageAttributeValue) { a["switchyard-attempts"] = num("many") }),
			`switchyard-attempts "many" is not a number`},
		{"a bad time", `{}`, nine(func(a map[string]types.MessageAttributeValue) { a["switchyard-first-attempt"] = str("noon") }),
			`switchyard-first-attempt "noon" is not a time`},
		{"no source", `{}`, nine(func(a map[string]types.MessageAttributeValue) { delete(a, "switchyard-source") }),
			"the record has no source"},
		{"a JSON record that is not JSON", `{}`, map[string]types.MessageAttributeValue{"switchyard-dead-letter": str("{oops")},
			"attribute switchyard-dead-letter"},
		{"a JSON record without its message", `{}`, map[string]types.MessageAttributeValue{"switchyard-dead-letter": str(`{"source":"s","attempts":1,"last_attempt":"2026-11-20T12:00:00Z"}`)},
			"the record has no message_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := DeadLetterOf(tc.body, tc.attrs)
			if !errors.Is(err, router.ErrNotDeadLetter) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrNotDeadLetter with %q", err, tc.want)
			}
		})
	}
	// A dead letter document in the body is one.
	doc := router.DeadLetterDocument(&router.Delivery{Payload: []byte("text body"),
		DeadLetter: &router.DeadLetter{Source: "jobs", MessageID: "m-9", Target: "t", Attempts: 2, LastAttempt: time.Now(), Attributes: map[string]string{"k": "v"}}})
	dl, orig, body, err := DeadLetterOf(string(doc), nil)
	if err != nil || dl.MessageID != "m-9" || string(body) != "text body" || orig["k"].StringValue != "v" {
		t.Errorf("a document body: %+v %v %q %v", dl, orig, body, err)
	}
}

package router

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	received := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	sent := time.Date(2026, 11, 20, 11, 59, 58, 0, time.UTC)
	origin := Origin{Source: "jobs", DetailType: "SQS Message", ID: "m-1", Time: sent, Account: "123456789012", Region: "us-east-1",
		Resources: []string{"arn:aws:sqs:us-east-1:123456789012:jobs"}, Attributes: map[string]string{"tenant": "acme", "kind": "upload"}}
	eventBridge := `{"version":"0","id":"e-1","detail-type":"ECS Task State Change","source":"aws.ecs","account":"1","time":"t","region":"r","resources":[],"detail":{"lastStatus":"STOPPED"}}`
	sns := func(message string) string {
		b, _ := json.Marshal(map[string]any{
			"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads",
			"Message": message, "Timestamp": "2026-11-20T11:59:00.123Z",
			"MessageAttributes": map[string]any{"color": map[string]string{"Type": "String", "Value": "blue"}},
		})
		return string(b)
	}
	wrapped := func(detail string, attrs string) string {
		s := `{"version":"0","id":"m-1","detail-type":"SQS Message","source":"jobs","account":"123456789012","time":"2026-11-20T11:59:58Z","region":"us-east-1","resources":["arn:aws:sqs:us-east-1:123456789012:jobs"],"detail":` + detail
		if attrs != "" {
			s += `,"attributes":` + attrs
		}
		return s + "}"
	}
	const attrs = `{"kind":"upload","tenant":"acme"}`
	for _, tc := range []struct {
		name  string
		env   Envelope
		body  string
		want  string
		error bool
	}{
		{"eventbridge: an event is used as is", EnvelopeEventBridge, eventBridge, eventBridge, false},
		{"eventbridge: not an event", EnvelopeEventBridge, `{"hello":"world"}`, "", true},
		{"eventbridge: not JSON", EnvelopeEventBridge, `hello`, "", true},
		{"eventbridge: no detail", EnvelopeEventBridge, `{"source":"a","detail-type":"b"}`, "", true},
		{"auto: an event is used as is", EnvelopeAuto, eventBridge, eventBridge, false},
		{"auto: JSON is wrapped as detail", EnvelopeAuto, `{"order":"o-1","total":12.5}`, wrapped(`{"order":"o-1","total":12.5}`, attrs), false},
		{"auto: JSON is compacted", EnvelopeAuto, "{ \"a\" : [ 1 ,\n2 ] }", wrapped(`{"a":[1,2]}`, attrs), false},
		{"auto: a JSON array", EnvelopeAuto, `[1,2]`, wrapped(`[1,2]`, attrs), false},
		{"auto: text is a string", EnvelopeAuto, `hello "world"`, wrapped(`"hello \"world\""`, attrs), false},
		{"auto: broken JSON is a string", EnvelopeAuto, `{"a":`, wrapped(`"{\"a\":"`, attrs), false},
		{"auto: SNS with an event inside", EnvelopeAuto, sns(eventBridge), eventBridge, false},
		{"raw: an event is wrapped too", EnvelopeRaw, `{"source":"a","detail-type":"b","detail":{}}`, wrapped(`{"source":"a","detail-type":"b","detail":{}}`, attrs), false},
		{"sns: not a notification", EnvelopeSNS, `{"Type":"SubscriptionConfirmation","TopicArn":"t","Message":"m"}`, "", true},
		// JSON must be UTF-8 and have no key twice; a body that is not is
		// wrapped as a string, with U+FFFD for each byte that is not UTF-8.
		{"auto: invalid UTF-8 is a string", EnvelopeAuto, "{\"a\":\"caf\xe9\"}", wrapped(`"{\"a\":\"caf\ufffd\"}"`, attrs), false},
		{"raw: invalid UTF-8 is a string", EnvelopeRaw, "{\"a\":\"\xff\"}", wrapped(`"{\"a\":\"\ufffd\"}"`, attrs), false},
		{"auto: text with invalid UTF-8", EnvelopeAuto, "ol\xe1 \xe4\xb8\xad", wrapped(`"ol\ufffd 中"`, attrs), false},
		{"auto: a key twice is a string", EnvelopeAuto, `{"a":1,"a":2}`, wrapped(`"{\"a\":1,\"a\":2}"`, attrs), false},
		{"auto: an event with a key twice is a string", EnvelopeAuto, `{"source":"a","detail-type":"b","detail":{"n":1,"n":2}}`,
			wrapped(`"{\"source\":\"a\",\"detail-type\":\"b\",\"detail\":{\"n\":1,\"n\":2}}"`, attrs), false},
		{"eventbridge: invalid UTF-8", EnvelopeEventBridge, "{\"source\":\"a\",\"detail-type\":\"b\",\"detail\":\"\xff\"}", "", true},
		{"eventbridge: a key twice", EnvelopeEventBridge, `{"source":"a","detail-type":"b","detail":{"n":1,"n":2}}`, "", true},
		{"sns: a key twice", EnvelopeSNS, `{"Type":"Notification","TopicArn":"t","Message":"m","Message":"n"}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Decode(tc.env, []byte(tc.body), origin, received)
			if tc.error {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.JSON) != tc.want {
				t.Errorf("event\n%s\nwant\n%s", ev.JSON, tc.want)
			}
			if !json.Valid(ev.JSON) {
				t.Errorf("not JSON: %s", ev.JSON)
			}
			if ev.Received != received {
				t.Errorf("Received = %v", ev.Received)
			}
		})
	}

	// The error of a body that is not JSON says why.
	_, err := Decode(EnvelopeEventBridge, []byte(`{"source":"a","detail-type":"b","detail":{"n":1,"n":2}}`), origin, received)
	if err == nil || !strings.Contains(err.Error(), "duplicate key $.detail.n") {
		t.Errorf("Decode of a key twice: %v, want its path", err)
	}

	// An SNS notification of plain text is unwrapped and wrapped anew.
	ev, err := Decode(EnvelopeSNS, []byte(sns("file uploaded")), origin, received)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"0","id":"sns-1","detail-type":"SNS Notification","source":"jobs","account":"123456789012","time":"2026-11-20T11:59:00Z","region":"us-east-1","resources":["arn:aws:sns:us-east-1:123456789012:uploads"],"detail":"file uploaded","attributes":{"color":"blue"}}`
	if string(ev.JSON) != want {
		t.Errorf("SNS text:\n%s\nwant\n%s", ev.JSON, want)
	}
	if ev.ID != "sns-1" || ev.Source != "jobs" || ev.DetailType != "SNS Notification" {
		t.Errorf("header fields: %q %q %q", ev.ID, ev.Source, ev.DetailType)
	}
	// A wrapped event matches patterns like any other.
	p := mustPattern(t, `{"detail-type":["SNS Notification"],"attributes":{"color":["blue"]}}`)
	if ok, _ := p.Match(ev.JSON); !ok {
		t.Error("pattern on a wrapped SNS notification did not match")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"source":"a","detail-type":"b","detail":{}}`)
	f.Add(`{"Type":"Notification","TopicArn":"t","Message":"{\"x\":1}"}`)
	f.Add("\xff\xfe not json")
	f.Fuzz(func(t *testing.T, body string) {
		for _, env := range []Envelope{EnvelopeAuto, EnvelopeRaw, EnvelopeEventBridge, EnvelopeSNS} {
			ev, err := Decode(env, []byte(body), Origin{Source: "s", ID: "i", DetailType: "SQS Message"}, time.Unix(0, 0))
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v is not ErrMalformed", env, err)
				}
				continue
			}
			if _, err := ParseEvent(ev.JSON, time.Time{}); err != nil {
				t.Fatalf("%s: Decode(%q) made an invalid event %s: %v", env, body, ev.JSON, err)
			}
			if env == EnvelopeRaw && !strings.Contains(string(ev.JSON), `"source":"s"`) {
				t.Fatalf("raw event lacks its source: %s", ev.JSON)
			}
		}
	})
}

// An EventBridge-shaped event without an id gets the origin's, written
// into its JSON, so that its delivery ids are its own.
func TestDecode_MissingIDGetsOrigins(t *testing.T) {
	o := Origin{Source: "q", DetailType: "SQS Message", ID: "m-1"}
	for body, want := range map[string]string{
		`{"source":"billing","detail-type":"Invoice Paid","detail":{"n":1}}`: `{"id":"m-1","source":"billing","detail-type":"Invoice Paid","detail":{"n":1}}`,
		` { "source":"b","detail-type":"T","detail":{}}`:                     `{"id":"m-1","source":"b","detail-type":"T","detail":{}}`,
		`{"id":"own","source":"b","detail-type":"T","detail":{}}`:            `{"id":"own","source":"b","detail-type":"T","detail":{}}`,
		`{"id":7,"source":"b","detail-type":"T","detail":{}}`:                `{"id":"m-1","source":"b","detail-type":"T","detail":{}}`,
		`{"source":"b","id":null,"detail-type":"T","detail":{"id":1}}`:       `{"id":"m-1","source":"b","detail-type":"T","detail":{"id":1}}`,
		`{"source":"b","detail-type":"T","detail":{}, "id" : ""}`:            `{"id":"m-1","source":"b","detail-type":"T","detail":{}}`,
	} {
		for _, env := range []Envelope{EnvelopeAuto, EnvelopeEventBridge} {
			ev, err := Decode(env, []byte(body), o, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if string(ev.JSON) != want {
				t.Errorf("%s %s: JSON %s, want %s", env, body, ev.JSON, want)
			}
			if _, err := ParseEvent(ev.JSON, time.Now()); err != nil {
				t.Errorf("%s: result does not parse: %v", body, err)
			}
		}
	}
	ev, _ := Decode(EnvelopeAuto, []byte(`{"source":"b","detail-type":"T","detail":{}}`), o, time.Now())
	if ev.ID != "m-1" || ev.Source != "b" || ev.DetailType != "T" {
		t.Errorf("event %+v", ev)
	}
}

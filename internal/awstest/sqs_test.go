package awstest_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func receive(t *testing.T, c *sqs.Client, u string, max int32, fns ...func(*sqs.ReceiveMessageInput)) []sqstypes.Message {
	t.Helper()
	in := &sqs.ReceiveMessageInput{QueueUrl: &u, MaxNumberOfMessages: max, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}}
	for _, fn := range fns {
		fn(in)
	}
	out, err := c.ReceiveMessage(t.Context(), in)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return out.Messages
}

func send(t *testing.T, c *sqs.Client, u, body string, fns ...func(*sqs.SendMessageInput)) *sqs.SendMessageOutput {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: &u, MessageBody: &body}
	for _, fn := range fns {
		fn(in)
	}
	out, err := c.SendMessage(t.Context(), in)
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	return out
}

func counts(t *testing.T, s *awstest.Server, q string) awstest.QueueCounts {
	t.Helper()
	c, err := s.SQS().Counts(q)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSQS_QueueLifecycleThroughTheSDK(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	c := s.SQSClient()
	ctx := t.Context()
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{"VisibilityTimeout": "45", "DelaySeconds": "0", "MessageRetentionPeriod": "3600"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := s.URL() + "/123456789012/jobs"; *out.QueueUrl != want {
		t.Fatalf("url %s, want %s", *out.QueueUrl, want)
	}
	// Same name, same attributes: the same queue.
	if _, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{"VisibilityTimeout": "45"}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{"VisibilityTimeout": "46"}})
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) || exists.ErrorCode() != "QueueAlreadyExists" {
		t.Fatalf("got %v", err)
	}
	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
	if err != nil || *got.QueueUrl != *out.QueueUrl {
		t.Fatalf("GetQueueUrl: %v %v", got, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"VisibilityTimeout": "45", "MessageRetentionPeriod": "3600", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:jobs",
		"ApproximateNumberOfMessages": "0", "MaximumMessageSize": "262144", "ReceiveMessageWaitTimeSeconds": "0",
	} {
		if attrs.Attributes[k] != want {
			t.Errorf("attribute %s = %q, want %q", k, attrs.Attributes[k], want)
		}
	}
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: out.QueueUrl, Attributes: map[string]string{"VisibilityTimeout": "5"}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("jo")})
	if err != nil || len(list.QueueUrls) != 1 {
		t.Fatalf("ListQueues: %v %v", list, err)
	}
	if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs")})
	var recently *sqstypes.QueueDeletedRecently
	if !errors.As(err, &recently) {
		t.Fatalf("recreate at once: %v", err)
	}
}

func TestSQS_SendReceiveDelete(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	sent := send(t, c, u, "héllo ✓", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("greeting")},
			"n":    {DataType: aws.String("Number.int"), StringValue: aws.String("42")},
			"blob": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}
		in.MessageSystemAttributes = map[string]sqstypes.MessageSystemAttributeValue{
			"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String("Root=1-5759e988-bd862e3fe1be46a994272793")},
		}
	})
	if sent.MD5OfMessageAttributes == nil || sent.MD5OfMessageSystemAttributes == nil {
		t.Fatalf("send output lacks attribute digests: %+v", sent)
	}
	msgs := receive(t, c, u, 10, func(in *sqs.ReceiveMessageInput) { in.MessageAttributeNames = []string{"All"} })
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if *m.MessageId != *sent.MessageId || *m.Body != "héllo ✓" || *m.MD5OfBody != *sent.MD5OfMessageBody {
		t.Fatalf("message %+v", m)
	}
	if *m.MD5OfMessageAttributes != *sent.MD5OfMessageAttributes {
		t.Fatalf("receive digest %s, send digest %s", *m.MD5OfMessageAttributes, *sent.MD5OfMessageAttributes)
	}
	if string(m.MessageAttributes["blob"].BinaryValue) != "\x00\x01\x02" || *m.MessageAttributes["n"].StringValue != "42" {
		t.Fatalf("attributes %+v", m.MessageAttributes)
	}
	if m.Attributes["ApproximateReceiveCount"] != "1" || m.Attributes["SentTimestamp"] != strconv.FormatInt(epoch.UnixMilli(), 10) ||
		m.Attributes["AWSTraceHeader"] == "" || m.Attributes["SenderId"] == "" || m.Attributes["ApproximateFirstReceiveTimestamp"] == "" {
		t.Fatalf("system attributes %v", m.Attributes)
	}
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{InFlight: 1}) {
		t.Fatalf("counts %+v", got)
	}
	if _, err := c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Deleting again succeeds, as SQS does.
	if _, err := c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{}) {
		t.Fatalf("counts after delete %+v", got)
	}
}

func TestSQS_MessageAttributeNamesSelectAndDigestWhatIsReturned(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	attrs := map[string]awstest.Attribute{
		"trace.id":   {DataType: "String", StringValue: "t1"},
		"trace.span": {DataType: "String", StringValue: "s1"},
		"other":      {DataType: "Number", StringValue: "1"},
	}
	for _, tt := range []struct {
		name  string
		names []string
		want  []string
	}{
		{"none", nil, nil},
		{"all", []string{"All"}, []string{"other", "trace.id", "trace.span"}},
		{"dot star", []string{".*"}, []string{"other", "trace.id", "trace.span"}},
		{"prefix", []string{"trace.*"}, []string{"trace.id", "trace.span"}},
		{"exact", []string{"other"}, []string{"other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SQS().Send("q", awstest.Message{Body: "b", Attributes: attrs}); err != nil {
				t.Fatal(err)
			}
			msgs := receive(t, c, u, 1, func(in *sqs.ReceiveMessageInput) { in.MessageAttributeNames = tt.names })
			if len(msgs) != 1 {
				t.Fatalf("got %d", len(msgs))
			}
			m := msgs[0]
			var got []string
			sel := map[string]awstest.Attribute{}
			for k := range m.MessageAttributes {
				got = append(got, k)
				sel[k] = attrs[k]
			}
			if fmt.Sprint(sorted(got)) != fmt.Sprint(tt.want) {
				t.Fatalf("attributes %v, want %v", got, tt.want)
			}
			if len(tt.want) == 0 {
				if m.MD5OfMessageAttributes != nil {
					t.Fatalf("digest %s without attributes", *m.MD5OfMessageAttributes)
				}
			} else if *m.MD5OfMessageAttributes != referenceAttrMD5(sel) {
				t.Fatalf("digest %s, want %s", *m.MD5OfMessageAttributes, referenceAttrMD5(sel))
			}
			_, _ = c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle})
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// referenceAttrMD5 spells out the SQS Developer Guide's encoding byte by
// byte, independently of the package's implementation.
func referenceAttrMD5(attrs map[string]awstest.Attribute) string {
	var names []string
	for n := range attrs {
		names = append(names, n)
	}
	names = sorted(names)
	var buf []byte
	lenPrefixed := func(b []byte) {
		n := len(b)
		buf = append(buf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		buf = append(buf, b...)
	}
	for _, n := range names {
		a := attrs[n]
		lenPrefixed([]byte(n))
		lenPrefixed([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			buf = append(buf, 2)
			lenPrefixed(a.BinaryValue)
		} else {
			buf = append(buf, 1)
			lenPrefixed([]byte(a.StringValue))
		}
	}
	sum := md5.Sum(buf)
	return hex.EncodeToString(sum[:])
}

func TestSQS_AttributeDigestMatchesTheGuide(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	// A single attribute {"a": String "b"} is encoded as
	// 00000001 'a' 00000006 "String" 01 00000001 'b'.
	one := []byte{0, 0, 0, 1, 'a', 0, 0, 0, 6, 'S', 't', 'r', 'i', 'n', 'g', 1, 0, 0, 0, 1, 'b'}
	sum := md5.Sum(one)
	out := send(t, c, u, "x", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{"a": {DataType: aws.String("String"), StringValue: aws.String("b")}}
	})
	if got, want := *out.MD5OfMessageAttributes, hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
	// A published vector: {"ordinal": Number "1", "category": String "test"}.
	out = send(t, c, u, "x", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{
			"ordinal":  {DataType: aws.String("Number"), StringValue: aws.String("1")},
			"category": {DataType: aws.String("String"), StringValue: aws.String("test")},
		}
	})
	if got := *out.MD5OfMessageAttributes; got != "d21ae90c49061e927f57df5f5d72be1f" {
		t.Fatalf("digest %s", got)
	}
	// Binary uses transport type 2 and the raw bytes.
	bin := map[string]awstest.Attribute{"img": {DataType: "Binary.png", BinaryValue: []byte{0xff, 0}}}
	out = send(t, c, u, "x", func(in *sqs.SendMessageInput) {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{"img": {DataType: aws.String("Binary.png"), BinaryValue: []byte{0xff, 0}}}
	})
	if got := *out.MD5OfMessageAttributes; got != referenceAttrMD5(bin) {
		t.Fatalf("binary digest %s", got)
	}
}

func TestSQS_SendValidation(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	big := strings.Repeat("x", 262145)
	tests := []struct {
		name string
		in   sqs.SendMessageInput
		code string
	}{
		{"body too large", sqs.SendMessageInput{MessageBody: &big}, "InvalidParameterValue"},
		{"invalid characters", sqs.SendMessageInput{MessageBody: aws.String("a\x00b")}, "InvalidMessageContents"},
		{"delay too long", sqs.SendMessageInput{MessageBody: aws.String("x"), DelaySeconds: 901}, "InvalidParameterValue"},
		{"dedup id on standard queue", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")}, "InvalidParameterValue"},
		{"reserved attribute name", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"AWS.x": {DataType: aws.String("String"), StringValue: aws.String("v")}}}, "InvalidParameterValue"},
		{"bad data type", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"a": {DataType: aws.String("Text"), StringValue: aws.String("v")}}}, "InvalidParameterValue"},
		{"number that is not", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"a": {DataType: aws.String("Number"), StringValue: aws.String("ten")}}}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.QueueUrl = &u
			_, err := c.SendMessage(t.Context(), &in)
			if got := apiCode(t, err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, err)
			}
			if httpStatus(t, err) != 400 {
				t.Fatalf("status %d", httpStatus(t, err))
			}
		})
	}
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{}) {
		t.Fatalf("rejected messages were enqueued: %+v", got)
	}
}

func TestSQS_ErrorsComeOutTyped(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	ctx := t.Context()
	missing := s.SQS().QueueURL("nope")
	tests := []struct {
		name  string
		call  func() error
		check func(t *testing.T, err error)
	}{
		{"GetQueueUrl of a missing queue", func() error {
			_, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
			return err
		}, isA[*sqstypes.QueueDoesNotExist]("AWS.SimpleQueueService.NonExistentQueue")},
		{"ReceiveMessage on a missing queue", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &missing})
			return err
		}, isA[*sqstypes.QueueDoesNotExist]("AWS.SimpleQueueService.NonExistentQueue")},
		{"malformed queue URL", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("http://x/only-one"), MessageBody: aws.String("x")})
			return err
		}, isA[*sqstypes.InvalidAddress]("InvalidAddress")},
		{"MaxNumberOfMessages 11", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &u, MaxNumberOfMessages: 11})
			return err
		}, hasCode("InvalidParameterValue")},
		{"WaitTimeSeconds 21", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &u, WaitTimeSeconds: 21})
			return err
		}, hasCode("InvalidParameterValue")},
		{"receipt handle never issued", func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: aws.String("garbage")})
			return err
		}, isA[*sqstypes.ReceiptHandleIsInvalid]("ReceiptHandleIsInvalid")},
		{"unknown queue attribute", func() error {
			_, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &u, AttributeNames: []sqstypes.QueueAttributeName{"Colour"}})
			return err
		}, isA[*sqstypes.InvalidAttributeName]("InvalidAttributeName")},
		{"attribute value out of range", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("r"), Attributes: map[string]string{"VisibilityTimeout": "43201"}})
			return err
		}, isA[*sqstypes.InvalidAttributeValue]("InvalidAttributeValue")},
		{"FIFO attribute on a standard queue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("r"), Attributes: map[string]string{"ContentBasedDeduplication": "true"}})
			return err
		}, isA[*sqstypes.InvalidAttributeName]("InvalidAttributeName")},
		{"redrive to a missing queue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("r"), Attributes: map[string]string{
				"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:none","maxReceiveCount":"3"}`}})
			return err
		}, hasCode("InvalidParameterValue")},
		{"bad queue name", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("has space")})
			return err
		}, hasCode("InvalidParameterValue")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, tt.call()) })
	}
}

// isA checks that err is a T whose ErrorCode() is code.
func isA[T interface {
	error
	ErrorCode() string
}](code string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var target T
		if !errors.As(err, &target) {
			t.Fatalf("got %T %v, want %T", err, err, target)
		}
		if target.ErrorCode() != code {
			t.Fatalf("ErrorCode %q, want %q", target.ErrorCode(), code)
		}
	}
}

func hasCode(code string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if got := apiCode(t, err); got != code {
			t.Fatalf("code %q, want %q (%v)", got, code, err)
		}
	}
}

func TestSQS_LongPollWakesWhenAMessageArrives(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	got := make(chan []sqstypes.Message, 1)
	go func() {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &u, WaitTimeSeconds: 20, MaxNumberOfMessages: 10})
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	waitFor(t, "the poll to block", func() bool { return s.SQS().Waiting("q") == 1 })
	send(t, c, u, "wake up")
	msgs := <-got // the clock never moved: the send woke the poll
	if len(msgs) != 1 || *msgs[0].Body != "wake up" {
		t.Fatalf("got %+v", msgs)
	}
}

func TestSQS_LongPollEndsAtTheWaitTime(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", map[string]string{"ReceiveMessageWaitTimeSeconds": "20"})
	c := s.SQSClient()
	got := make(chan []sqstypes.Message, 1)
	go func() {
		// WaitTimeSeconds unset: the queue's ReceiveMessageWaitTimeSeconds applies.
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &u})
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	waitFor(t, "the poll to block", func() bool { return s.SQS().Waiting("q") == 1 })
	clk.Advance(19 * time.Second)
	select {
	case m := <-got:
		t.Fatalf("returned at 19s: %v", m)
	default:
	}
	waitFor(t, "the poll to re-arm", func() bool { return clk.Timers() == 1 })
	clk.Advance(time.Second)
	if msgs := <-got; len(msgs) != 0 {
		t.Fatalf("got %v", msgs)
	}
}

func TestSQS_LongPollWakesWhenADelayedMessageComesDue(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	send(t, c, u, "later", func(in *sqs.SendMessageInput) { in.DelaySeconds = 5 })
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{Delayed: 1}) {
		t.Fatalf("counts %+v", got)
	}
	got := make(chan []sqstypes.Message, 1)
	go func() {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &u, WaitTimeSeconds: 20})
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	waitFor(t, "the poll to block", func() bool { return s.SQS().Waiting("q") == 1 && clk.Timers() == 1 })
	clk.Advance(5 * time.Second)
	if msgs := <-got; len(msgs) != 1 {
		t.Fatalf("got %v", msgs)
	}
}

func TestSQS_LongPollEndsWhenTheCallerGivesUp(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.SQSClient().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &u, WaitTimeSeconds: 20})
		done <- err
	}()
	waitFor(t, "the poll to block", func() bool { return s.SQS().Waiting("q") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	waitFor(t, "the server to notice", func() bool { return s.SQS().Waiting("q") == 0 })
	// Nothing was taken on the abandoned poll.
	send(t, s.SQSClient(), u, "x")
	if got := counts(t, s, "q"); got.Visible != 1 {
		t.Fatalf("counts %+v", got)
	}
}

func TestSQS_VisibilityTimeoutExpiryRedelivers(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", map[string]string{"VisibilityTimeout": "30"})
	c := s.SQSClient()
	send(t, c, u, "m")
	first := receive(t, c, u, 1)[0]
	if n := len(receive(t, c, u, 1)); n != 0 {
		t.Fatalf("in-flight message received again (%d)", n)
	}
	clk.Advance(29 * time.Second)
	if n := len(receive(t, c, u, 1)); n != 0 {
		t.Fatal("visible before its timeout")
	}
	clk.Advance(time.Second)
	second := receive(t, c, u, 1)
	if len(second) != 1 {
		t.Fatal("not redelivered after its timeout")
	}
	if second[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("receive count %s", second[0].Attributes["ApproximateReceiveCount"])
	}
	if *second[0].ReceiptHandle == *first.ReceiptHandle {
		t.Fatal("receipt handle did not change")
	}
	if second[0].Attributes["ApproximateFirstReceiveTimestamp"] != first.Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Fatal("first-receive time moved")
	}
	// The stale handle: deleting succeeds but deletes nothing; changing
	// visibility says the handle has expired.
	if _, err := c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: first.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "q"); got.InFlight != 1 {
		t.Fatalf("stale handle deleted the message: %+v", got)
	}
	_, err := c.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 10})
	hasCode("InvalidParameterValue")(t, err)
	if _, err := c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: second[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{}) {
		t.Fatalf("counts %+v", got)
	}
}

func TestSQS_ChangeMessageVisibility(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	ctx := t.Context()
	send(t, c, u, "m")
	m := receive(t, c, u, 1, func(in *sqs.ReceiveMessageInput) { in.VisibilityTimeout = 10 })[0]
	// Extend: stays invisible past the original timeout.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if n := len(receive(t, c, u, 1)); n != 0 {
		t.Fatal("extended message became visible")
	}
	// 0 makes it visible now.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "q"); got.Visible != 1 {
		t.Fatalf("counts %+v", got)
	}
	// Not in flight any more.
	_, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 5})
	isA[*sqstypes.MessageNotInflight]("AWS.SimpleQueueService.MessageNotInflight")(t, err)
	// Beyond 12 hours from the receive.
	m = receive(t, c, u, 1)[0]
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43201})
	hasCode("InvalidParameterValue")(t, err)
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 7200}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &u, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43200})
	hasCode("InvalidParameterValue")(t, err)

	// Batch: one good entry, one stale.
	out, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &u, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("ok"), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0},
		{Id: aws.String("bad"), ReceiptHandle: aws.String("nonsense"), VisibilityTimeout: 0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 1 || *out.Successful[0].Id != "ok" || len(out.Failed) != 1 ||
		*out.Failed[0].Code != "ReceiptHandleIsInvalid" || !out.Failed[0].SenderFault {
		t.Fatalf("batch %+v", out)
	}
}

func TestSQS_RedriveMovesToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	createQueue(t, s, "dlq", nil)
	u := createQueue(t, s, "q", map[string]string{
		"VisibilityTimeout": "10",
		"RedrivePolicy":     `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"2"}`,
	})
	c := s.SQSClient()
	sent := send(t, c, u, "poison")
	for i := 1; i <= 2; i++ {
		msgs := receive(t, c, u, 1)
		if len(msgs) != 1 || msgs[0].Attributes["ApproximateReceiveCount"] != strconv.Itoa(i) {
			t.Fatalf("receive %d: %+v", i, msgs)
		}
		clk.Advance(10 * time.Second)
	}
	// The third receive would exceed maxReceiveCount: the message moves.
	if msgs := receive(t, c, u, 1); len(msgs) != 0 {
		t.Fatalf("received past maxReceiveCount: %+v", msgs)
	}
	dead, err := s.SQS().DeadLetters("q")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != *sent.MessageId || dead[0].ReceiveCount != 2 || dead[0].DeadLetterSourceARN != s.SQS().QueueARN("q") {
		t.Fatalf("dead letters %+v", dead)
	}
	msgs := receive(t, c, s.SQS().QueueURL("dlq"), 1)
	if len(msgs) != 1 || msgs[0].Attributes["DeadLetterQueueSourceArn"] != s.SQS().QueueARN("q") || msgs[0].Attributes["ApproximateReceiveCount"] != "3" {
		t.Fatalf("from the DLQ: %+v", msgs)
	}
	attrs, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: &u, AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy"}})
	if err != nil || attrs.Attributes["RedrivePolicy"] != `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":2}` {
		t.Fatalf("RedrivePolicy %v %v", attrs, err)
	}
}

func TestSQS_FIFOOrderGroupLockingAndDedup(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "jobs.fifo", map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30"})
	c := s.SQSClient()
	ctx := t.Context()
	var seqs []string
	for i, g := range []string{"a", "b", "a", "b", "a"} {
		out := send(t, c, u, fmt.Sprintf("%s%d", g, i), func(in *sqs.SendMessageInput) {
			in.MessageGroupId = aws.String(g)
			in.MessageDeduplicationId = aws.String(strconv.Itoa(i))
		})
		seqs = append(seqs, *out.SequenceNumber)
	}
	for i := 1; i < len(seqs); i++ {
		a, _ := new(big.Int).SetString(seqs[i-1], 10)
		b, _ := new(big.Int).SetString(seqs[i], 10)
		if a.Cmp(b) >= 0 {
			t.Fatalf("sequence numbers not increasing: %v", seqs)
		}
	}
	// Duplicate within 5 minutes: accepted, same id, not enqueued again.
	dup := send(t, c, u, "a0-again", func(in *sqs.SendMessageInput) {
		in.MessageGroupId = aws.String("a")
		in.MessageDeduplicationId = aws.String("0")
	})
	if *dup.SequenceNumber != seqs[0] {
		t.Fatalf("duplicate got sequence %s", *dup.SequenceNumber)
	}
	// Two from group a, in order, before anything from b.
	msgs := receive(t, c, u, 2)
	if len(msgs) != 2 || *msgs[0].Body != "a0" || *msgs[1].Body != "a2" || msgs[0].Attributes["MessageGroupId"] != "a" ||
		msgs[0].Attributes["SequenceNumber"] != seqs[0] || msgs[0].Attributes["MessageDeduplicationId"] != "0" {
		t.Fatalf("first receive %v", bodies(msgs))
	}
	// Group a is locked while a0/a2 are in flight: a4 is held back.
	msgs2 := receive(t, c, u, 10)
	if fmt.Sprint(bodies(msgs2)) != "[b1 b3]" {
		t.Fatalf("second receive %v", bodies(msgs2))
	}
	if n := len(receive(t, c, u, 10)); n != 0 {
		t.Fatalf("got %d with every group locked", n)
	}
	// Deleting one of a's in-flight messages is not enough...
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &u, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if n := len(receive(t, c, u, 10)); n != 0 {
		t.Fatalf("group a unlocked with a2 still in flight (%d)", n)
	}
	// ...and when a2's visibility expires, a2 comes again before a4.
	clk.Advance(30 * time.Second)
	msgs3 := receive(t, c, u, 10)
	byGroup := map[string][]string{}
	for _, m := range msgs3 {
		byGroup[m.Attributes["MessageGroupId"]] = append(byGroup[m.Attributes["MessageGroupId"]], *m.Body)
	}
	if fmt.Sprint(byGroup["a"]) != "[a2 a4]" || fmt.Sprint(byGroup["b"]) != "[b1 b3]" || len(msgs3) != 4 {
		t.Fatalf("after expiry %v", bodies(msgs3))
	}
	// After the dedup window the same id enqueues again.
	clk.Advance(5 * time.Minute)
	again := send(t, c, u, "a0-later", func(in *sqs.SendMessageInput) {
		in.MessageGroupId = aws.String("c")
		in.MessageDeduplicationId = aws.String("0")
	})
	if *again.MessageId == *dup.MessageId {
		t.Fatal("deduplicated after the window")
	}
}

func bodies(ms []sqstypes.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, *m.Body)
	}
	return out
}

func TestSQS_FIFOValidationAndContentDedup(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	c := s.SQSClient()
	ctx := t.Context()
	_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("nofifo"), Attributes: map[string]string{"FifoQueue": "true"}})
	hasCode("InvalidParameterValue")(t, err)
	u := createQueue(t, s, "q.fifo", map[string]string{"FifoQueue": "true"})
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")})
	hasCode("MissingParameter")(t, err)
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x"), MessageGroupId: aws.String("g")})
	hasCode("InvalidParameterValue")(t, err) // no dedup id and no content-based dedup
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d"), DelaySeconds: 3})
	hasCode("InvalidParameterValue")(t, err) // per-message delay on FIFO

	cb := createQueue(t, s, "cb.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	one := send(t, c, cb, "same", func(in *sqs.SendMessageInput) { in.MessageGroupId = aws.String("g") })
	two := send(t, c, cb, "same", func(in *sqs.SendMessageInput) { in.MessageGroupId = aws.String("g") })
	if *one.MessageId != *two.MessageId {
		t.Fatal("content-based dedup did not apply")
	}
	if got := counts(t, s, "cb.fifo"); got.Visible != 1 {
		t.Fatalf("counts %+v", got)
	}
}

func TestSQS_BatchLimits(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	entries := func(n int, body string) []sqstypes.SendMessageBatchRequestEntry {
		var es []sqstypes.SendMessageBatchRequestEntry
		for i := range n {
			es = append(es, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), MessageBody: aws.String(body)})
		}
		return es
	}
	big := strings.Repeat("x", 30000)
	tests := []struct {
		name    string
		entries []sqstypes.SendMessageBatchRequestEntry
		check   func(*testing.T, error)
	}{
		{"empty", []sqstypes.SendMessageBatchRequestEntry{}, isA[*sqstypes.EmptyBatchRequest]("AWS.SimpleQueueService.EmptyBatchRequest")},
		{"eleven", entries(11, "x"), isA[*sqstypes.TooManyEntriesInBatchRequest]("AWS.SimpleQueueService.TooManyEntriesInBatchRequest")},
		{"ids not distinct", append(entries(2, "x"), sqstypes.SendMessageBatchRequestEntry{Id: aws.String("e0"), MessageBody: aws.String("y")}),
			isA[*sqstypes.BatchEntryIdsNotDistinct]("AWS.SimpleQueueService.BatchEntryIdsNotDistinct")},
		{"bad id", []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("no spaces"), MessageBody: aws.String("x")}},
			isA[*sqstypes.InvalidBatchEntryId]("AWS.SimpleQueueService.InvalidBatchEntryId")},
		{"over 256 KiB in total", entries(9, big), isA[*sqstypes.BatchRequestTooLong]("AWS.SimpleQueueService.BatchRequestTooLong")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: &u, Entries: tt.entries})
			tt.check(t, err)
		})
	}
	_, err := c.DeleteMessageBatch(t.Context(), &sqs.DeleteMessageBatchInput{QueueUrl: &u, Entries: []sqstypes.DeleteMessageBatchRequestEntry{}})
	isA[*sqstypes.EmptyBatchRequest]("AWS.SimpleQueueService.EmptyBatchRequest")(t, err)
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{}) {
		t.Fatalf("rejected batches enqueued: %+v", got)
	}
}

func TestSQS_BatchEntriesFailIndividually(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	out, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: &u, Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("ok"), MessageBody: aws.String("fine")},
		{Id: aws.String("bad"), MessageBody: aws.String("fine"), DelaySeconds: 1000},
		{Id: aws.String("chars"), MessageBody: aws.String("\x01")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 1 || *out.Successful[0].Id != "ok" || *out.Successful[0].MD5OfMessageBody != md5hex("fine") {
		t.Fatalf("successful %+v", out.Successful)
	}
	failed := map[string]string{}
	for _, f := range out.Failed {
		if !f.SenderFault {
			t.Errorf("%s: SenderFault false", *f.Id)
		}
		failed[*f.Id] = *f.Code
	}
	if failed["bad"] != "InvalidParameterValue" || failed["chars"] != "InvalidMessageContents" {
		t.Fatalf("failed %v", failed)
	}

	// Scripted partial failure of a delete batch.
	for range 3 {
		send(t, c, u, "m")
	}
	msgs := receive(t, c, u, 10)
	if len(msgs) != 4 {
		t.Fatalf("got %d", len(msgs))
	}
	s.FailNext("sqs:DeleteMessageBatch", 1, awstest.Fault{Code: "InternalError", Message: "try again", Status: 500, BatchEntries: []string{"m1"}})
	var es []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		es = append(es, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), ReceiptHandle: m.ReceiptHandle})
	}
	del, err := c.DeleteMessageBatch(t.Context(), &sqs.DeleteMessageBatchInput{QueueUrl: &u, Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Successful) != 3 || len(del.Failed) != 1 || *del.Failed[0].Id != "m1" || del.Failed[0].SenderFault || *del.Failed[0].Code != "InternalError" {
		t.Fatalf("delete batch %+v", del)
	}
	if got := counts(t, s, "q"); got.InFlight != 1 {
		t.Fatalf("counts %+v", got)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSQS_PurgeQueue(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	send(t, c, u, "a")
	send(t, c, u, "b", func(in *sqs.SendMessageInput) { in.DelaySeconds = 10 })
	if _, err := c.PurgeQueue(t.Context(), &sqs.PurgeQueueInput{QueueUrl: &u}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "q"); got != (awstest.QueueCounts{}) {
		t.Fatalf("counts %+v", got)
	}
	_, err := c.PurgeQueue(t.Context(), &sqs.PurgeQueueInput{QueueUrl: &u})
	isA[*sqstypes.PurgeQueueInProgress]("AWS.SimpleQueueService.PurgeQueueInProgress")(t, err)
	if httpStatus(t, err) != 403 {
		t.Fatalf("status %d", httpStatus(t, err))
	}
	clk.Advance(time.Minute)
	if _, err := c.PurgeQueue(t.Context(), &sqs.PurgeQueueInput{QueueUrl: &u}); err != nil {
		t.Fatal(err)
	}
}

func TestSQS_QueueCountAttributes(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	c := s.SQSClient()
	for range 3 {
		send(t, c, u, "v")
	}
	send(t, c, u, "d", func(in *sqs.SendMessageInput) { in.DelaySeconds = 60 })
	receive(t, c, u, 1)
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: &u, AttributeNames: []sqstypes.QueueAttributeName{
		"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "1", "ApproximateNumberOfMessagesDelayed": "1"}
	if fmt.Sprint(out.Attributes) != fmt.Sprint(want) {
		t.Fatalf("attributes %v", out.Attributes)
	}
	peek, err := s.SQS().Messages("q")
	if err != nil || len(peek) != 4 || peek[0].State != awstest.MessageInFlight || peek[3].State != awstest.MessageDelayed {
		t.Fatalf("peek %+v %v", peek, err)
	}
}

func TestSQS_RetentionPeriodDropsOldMessages(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	u := createQueue(t, s, "q", map[string]string{"MessageRetentionPeriod": "60"})
	c := s.SQSClient()
	send(t, c, u, "old")
	clk.Advance(30 * time.Second)
	send(t, c, u, "new")
	clk.Advance(30 * time.Second)
	msgs := receive(t, c, u, 10)
	if fmt.Sprint(bodies(msgs)) != "[new]" {
		t.Fatalf("got %v", bodies(msgs))
	}
}

func TestSQS_RawBodyFaultStillCarriesItsCode(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	u := createQueue(t, s, "q", nil)
	s.FailNext("sqs:SendMessage", 1, awstest.Fault{Status: 400, Code: "QueueDoesNotExist", Body: []byte(`{}`)})
	_, err := s.SQSClient().SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x")})
	var q *sqstypes.QueueDoesNotExist
	if !errors.As(err, &q) {
		t.Fatalf("got %v", err)
	}
}

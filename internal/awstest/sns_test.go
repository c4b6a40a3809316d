package awstest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func createTopic(t *testing.T, s *awstest.Server, topic awstest.SNSTopic) string {
	t.Helper()
	arn, err := s.SNS().CreateTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// withHeader sets a request header on one call, as a build-step middleware.
func withHeader(k, v string) func(*sns.Options) {
	return func(o *sns.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Build.Add(middleware.BuildMiddlewareFunc("testHeader", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				in.Request.(*smithyhttp.Request).Header.Set(k, v)
				return next.HandleBuild(ctx, in)
			}), middleware.After)
		})
	}
}

func TestSNS_Publish(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	arn := createTopic(t, s, awstest.SNSTopic{Name: "orders"})
	if arn != "arn:aws:sns:us-east-1:123456789012:orders" {
		t.Fatalf("arn %s", arn)
	}
	c := s.SNSClient()
	trace := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	out, err := c.Publish(t.Context(), &sns.PublishInput{
		TopicArn: aws.String(arn), Message: aws.String(`{"id":1} & <more>`), Subject: aws.String("New order"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"kind":  {DataType: aws.String("String"), StringValue: aws.String("order & co")},
			"qty":   {DataType: aws.String("Number"), StringValue: aws.String("3")},
			"blob":  {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
			"tags":  {DataType: aws.String("String.Array"), StringValue: aws.String(`["a","b"]`)},
			"label": {DataType: aws.String("Number.int"), StringValue: aws.String("7")},
		},
	}, withHeader("X-Amzn-Trace-Id", trace))
	if err != nil {
		t.Fatal(err)
	}
	if len(aws.ToString(out.MessageId)) != 36 || out.SequenceNumber != nil {
		t.Errorf("answer: id %q, sequence %v", aws.ToString(out.MessageId), out.SequenceNumber)
	}
	msgs := s.SNS().Messages("orders")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.MessageID != aws.ToString(out.MessageId) || m.Message != `{"id":1} & <more>` || m.Subject != "New order" || m.TraceHeader != trace || !m.Published.Equal(clk.Now()) {
		t.Errorf("message %+v", m)
	}
	want := map[string]awstest.SNSAttribute{
		"kind": {DataType: "String", StringValue: "order & co"}, "qty": {DataType: "Number", StringValue: "3"},
		"blob": {DataType: "Binary", BinaryValue: []byte{0, 1, 2}}, "tags": {DataType: "String.Array", StringValue: `["a","b"]`},
		"label": {DataType: "Number.int", StringValue: "7"},
	}
	if fmt.Sprint(m.Attributes) != fmt.Sprint(want) {
		t.Errorf("attributes %v, want %v", m.Attributes, want)
	}
	if s.Calls("sns:Publish") != 1 {
		t.Errorf("calls %d", s.Calls("sns:Publish"))
	}
}

// A FIFO topic drops a message whose deduplication id it saw in the last 5
// minutes, answering with the first one's id and sequence number.
func TestSNS_FIFODeduplication(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	arn := createTopic(t, s, awstest.SNSTopic{Name: "orders.fifo"})
	c := s.SNSClient()
	pub := func(dedup, body string) *sns.PublishOutput {
		t.Helper()
		out, err := c.Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(body),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(dedup)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := pub("d-1", "one")
	if aws.ToString(first.SequenceNumber) == "" {
		t.Error("no sequence number from a FIFO topic")
	}
	clk.Advance(4*time.Minute + 59*time.Second)
	again := pub("d-1", "one, sent again")
	if aws.ToString(again.MessageId) != aws.ToString(first.MessageId) || aws.ToString(again.SequenceNumber) != aws.ToString(first.SequenceNumber) {
		t.Errorf("a duplicate got %v/%v, want the first's %v/%v", aws.ToString(again.MessageId), aws.ToString(again.SequenceNumber),
			aws.ToString(first.MessageId), aws.ToString(first.SequenceNumber))
	}
	other := pub("d-2", "two")
	clk.Advance(time.Second) // 5 minutes after the first
	late := pub("d-1", "one, 5 minutes later")
	if aws.ToString(late.MessageId) == aws.ToString(first.MessageId) {
		t.Error("the deduplication id was remembered for 5 minutes or more")
	}
	msgs := s.SNS().Messages("orders.fifo")
	if len(msgs) != 3 || msgs[0].Message != "one" || msgs[1].Message != "two" || msgs[2].Message != "one, 5 minutes later" ||
		msgs[0].GroupID != "g" || msgs[0].DedupID != "d-1" {
		t.Errorf("messages %+v", msgs)
	}
	if aws.ToString(other.SequenceNumber) <= aws.ToString(first.SequenceNumber) || aws.ToString(late.SequenceNumber) <= aws.ToString(other.SequenceNumber) {
		t.Errorf("sequence numbers do not increase: %s %s %s", aws.ToString(first.SequenceNumber), aws.ToString(other.SequenceNumber), aws.ToString(late.SequenceNumber))
	}

	// Content-based deduplication takes the body's hash.
	cbd := createTopic(t, s, awstest.SNSTopic{Name: "cbd.fifo", ContentBasedDeduplication: true})
	for range 2 {
		if _, err := c.Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(cbd), Message: aws.String("same"), MessageGroupId: aws.String("g")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.SNS().Messages("cbd.fifo")); n != 1 {
		t.Errorf("content-based deduplication kept %d messages", n)
	}
}

func TestSNS_Errors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	std := createTopic(t, s, awstest.SNSTopic{Name: "std"})
	fifo := createTopic(t, s, awstest.SNSTopic{Name: "f.fifo"})
	small := createTopic(t, s, awstest.SNSTopic{Name: "small", MaximumMessageSize: 1024})
	c := s.SNSClient()
	str := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	many := map[string]snstypes.MessageAttributeValue{}
	for i := range 11 {
		many[fmt.Sprintf("a%d", i)] = str("v")
	}
	var (
		invalid  *snstypes.InvalidParameterException
		badValue *snstypes.InvalidParameterValueException
		notFound *snstypes.NotFoundException
	)
	for _, tc := range []struct {
		name   string
		in     sns.PublishInput
		as     any
		code   string
		status int
		msg    string
	}{
		{"no topic", sns.PublishInput{TopicArn: aws.String(std + "-gone"), Message: aws.String("x")}, &notFound, "NotFound", 404, "Topic does not exist"},
		{"another account", sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:999999999999:std"), Message: aws.String("x")}, &notFound, "NotFound", 404, ""},
		{"not an ARN", sns.PublishInput{TopicArn: aws.String("std"), Message: aws.String("x")}, &invalid, "InvalidParameter", 400, "TopicArn"},
		{"empty message", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("")}, &invalid, "InvalidParameter", 400, "Empty message"},
		{"too long", sns.PublishInput{TopicArn: aws.String(small), Message: aws.String(strings.Repeat("x", 1020)), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": str("v")}},
			&invalid, "InvalidParameter", 400, "Message too long"},
		{"subject of 100", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), Subject: aws.String(strings.Repeat("s", 100))}, &invalid, "InvalidParameter", 400, "Subject"},
		{"subject with a line break", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), Subject: aws.String("a\nb")}, &invalid, "InvalidParameter", 400, "Subject"},
		{"FIFO without a group", sns.PublishInput{TopicArn: aws.String(fifo), Message: aws.String("x"), MessageDeduplicationId: aws.String("d")}, &invalid, "InvalidParameter", 400, "MessageGroupId"},
		{"FIFO without a dedup id", sns.PublishInput{TopicArn: aws.String(fifo), Message: aws.String("x"), MessageGroupId: aws.String("g")}, &invalid, "InvalidParameter", 400, "ContentBasedDeduplication"},
		{"dedup id on a standard topic", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageDeduplicationId: aws.String("d")}, &invalid, "InvalidParameter", 400, "MessageDeduplicationId"},
		{"group id of 129", sns.PublishInput{TopicArn: aws.String(fifo), Message: aws.String("x"), MessageGroupId: aws.String(strings.Repeat("g", 129)), MessageDeduplicationId: aws.String("d")}, &invalid, "InvalidParameter", 400, "MessageGroupId"},
		{"attribute type", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": {DataType: aws.String("Text"), StringValue: aws.String("v")}}},
			&badValue, "ParameterValueInvalid", 400, "invalid message attribute type"},
		{"empty attribute", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": str("")}},
			&badValue, "ParameterValueInvalid", 400, "non-empty"},
		{"not a number", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"k": {DataType: aws.String("Number"), StringValue: aws.String("ten")}}},
			&badValue, "ParameterValueInvalid", 400, "number"},
		{"reserved name", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageAttributes: map[string]snstypes.MessageAttributeValue{"AWS.x": str("v")}},
			&badValue, "ParameterValueInvalid", 400, "reserved"},
		{"11 attributes", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageAttributes: many}, &badValue, "ParameterValueInvalid", 400, "exceeds the allowed maximum [10]"},
		{"json structure without default", sns.PublishInput{TopicArn: aws.String(std), Message: aws.String(`{"sqs":"x"}`), MessageStructure: aws.String("json")}, &invalid, "InvalidParameter", 400, "No default entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Publish(t.Context(), &tc.in)
			if err == nil {
				t.Fatal("published")
			}
			if !errors.As(err, tc.as) {
				t.Errorf("%v (%T): not the SDK's typed error", err, err)
			}
			if code, status := apiCode(t, err), httpStatus(t, err); code != tc.code || status != tc.status || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s %d %v, want %s %d %q", code, status, err, tc.code, tc.status, tc.msg)
			}
		})
	}
	if n := len(s.SNS().Messages("std")) + len(s.SNS().Messages("f.fifo")) + len(s.SNS().Messages("small")); n != 0 {
		t.Errorf("%d messages published by failed calls", n)
	}
	// A group id on a standard topic is forwarded (SQS fair queues).
	if _, err := c.Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(std), Message: aws.String("x"), MessageGroupId: aws.String("tenant-1")}); err != nil {
		t.Errorf("group id on a standard topic: %v", err)
	}
}

// Injected faults reach the SDK as SNS's typed errors.
func TestSNS_Faults(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	arn := createTopic(t, s, awstest.SNSTopic{Name: "t"})
	c := s.SNSClient()
	in := &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("x")}

	s.InjectFault(awstest.FaultRule{Op: "sns:Publish", Resource: "t", Times: 1, Fault: awstest.Fault{Code: "Throttled", Message: "Rate exceeded"}})
	_, err := c.Publish(t.Context(), in)
	var throttled *snstypes.ThrottledException
	if !errors.As(err, &throttled) || httpStatus(t, err) != http.StatusTooManyRequests {
		t.Errorf("throttled: %v", err)
	}
	s.FailNext("sns:Publish", 1, awstest.InternalError("InternalError"))
	_, err = c.Publish(t.Context(), in)
	var internal *snstypes.InternalErrorException
	if !errors.As(err, &internal) || httpStatus(t, err) != http.StatusInternalServerError {
		t.Errorf("internal: %v", err)
	}
	s.FailNext("sns:Publish", 1, awstest.Fault{Code: "KMSThrottling"})
	_, err = c.Publish(t.Context(), in)
	var kms *snstypes.KMSThrottlingException
	if !errors.As(err, &kms) || httpStatus(t, err) != http.StatusBadRequest {
		t.Errorf("KMS throttling: %v", err)
	}
	s.FailNext("sns:Publish", 1, awstest.Fault{Code: "AuthorizationError", Message: "User is not authorized to perform: SNS:Publish"})
	_, err = c.Publish(t.Context(), in)
	var denied *snstypes.AuthorizationErrorException
	if !errors.As(err, &denied) || httpStatus(t, err) != http.StatusForbidden {
		t.Errorf("denied: %v", err)
	}
	s.FailNext("sns:Publish", 1, awstest.Unavailable())
	if _, err = c.Publish(t.Context(), in); err == nil {
		t.Error("a bare 503 succeeded")
	}
	if n := len(s.SNS().Messages("t")); n != 0 {
		t.Errorf("%d messages published by faulted calls", n)
	}
	if _, err := c.Publish(t.Context(), in); err != nil || s.Calls("sns:Publish") != 6 {
		t.Errorf("after the faults: %v, %d calls", err, s.Calls("sns:Publish"))
	}

	anon := s.AWSConfig()
	anon.Credentials = aws.AnonymousCredentials{}
	_, err = sns.NewFromConfig(anon).Publish(t.Context(), in)
	if code := apiCode(t, err); code != "MissingAuthenticationToken" || httpStatus(t, err) != http.StatusForbidden {
		t.Errorf("unsigned: %v", err)
	}
}

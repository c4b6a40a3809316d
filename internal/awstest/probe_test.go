package awstest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func TestProbe_MeasuresReceiveToInvokeByMessageID(t *testing.T) {
	t.Parallel()
	s := awstest.NewTestServer(t, awstest.Options{ProbeLatency: true, Lambda: awstest.LambdaOptions{AutoCreate: true}})
	url, err := s.SQS().CreateQueue("jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.SQS().Send("jobs", awstest.Message{Body: "{}"}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.SQSClient().ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 3 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	ids := []string{aws.ToString(out.Messages[0].MessageId), aws.ToString(out.Messages[1].MessageId), aws.ToString(out.Messages[2].MessageId)}
	single, _ := json.Marshal(map[string]any{"id": ids[0], "detail": map[string]any{}})
	batch, _ := json.Marshal(map[string]any{"Records": []map[string]string{{"messageId": ids[1]}, {"messageId": ids[2]}}})
	lc := s.LambdaClient()
	for _, p := range [][]byte{single, batch, []byte(`{"id":"unknown"}`)} {
		if _, err := lc.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.ReceiveToInvoke()
	if got.Count != 3 || got.Unattributed != 1 || got.P50 <= 0 || got.Max < got.P99 || got.P99 < got.P50 {
		t.Fatalf("summary %+v; want 3 samples, 1 unattributed, ordered percentiles", got)
	}
	resp, err := http.Get(s.URL() + awstest.LatencyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served awstest.LatencySummary
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil || served.Count != 3 {
		t.Fatalf("GET %s: %+v, %v", awstest.LatencyPath, served, err)
	}
	s.ResetStats()
	if got := s.ReceiveToInvoke(); got.Count != 0 || got.Unattributed != 0 {
		t.Fatalf("after ResetStats: %+v", got)
	}
}

func TestFaultsPath_ScriptsFaultsOverHTTP(t *testing.T) {
	t.Parallel()
	s := awstest.NewTestServer(t, awstest.Options{Lambda: awstest.LambdaOptions{AutoCreate: true}})
	rule, _ := json.Marshal(awstest.FaultRule{Op: "lambda:Invoke", Fault: awstest.InternalError("ServiceException")})
	resp, err := http.Post(s.URL()+awstest.FaultsPath, "application/json", bytes.NewReader(rule))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %v %v", awstest.FaultsPath, resp, err)
	}
	resp.Body.Close()
	invoke := func() error {
		_, err := s.LambdaClient().Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{}`)})
		return err
	}
	var apiErr smithy.APIError
	if err := invoke(); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ServiceException" {
		t.Fatalf("invoke during the fault: %v; want ServiceException", err)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.URL()+awstest.FaultsPath, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE %s: %v %v", awstest.FaultsPath, resp, err)
	}
	resp.Body.Close()
	if err := invoke(); err != nil {
		t.Fatalf("invoke after DELETE: %v", err)
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRun_ServesQueuesFunctionsAndStats(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-queue", "dlq", "-queue",
			`jobs?VisibilityTimeout=5&RedrivePolicy={"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"3"}`,
			"-queue", "ordered.fifo", "-task-definition", "transcode=app"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`listening on (http://\S+) `)
	var base string
	deadline := time.Now().Add(5 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("not listening; stderr %q", stderr.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: &base, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(awstest.AccessKeyID, awstest.SecretAccessKey, "")}

	u := base + "/123456789012/jobs"
	if _, err := sqs.NewFromConfig(cfg).SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &u, MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewFromConfig(cfg).Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("any-function")})
	if err != nil || string(out.Payload) != "{}" {
		t.Fatalf("invoke: %v %v", out, err)
	}
	resp, err := hc.Get(base + awstest.StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	var st awstest.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Calls["sqs:SendMessage"] != 1 || st.Calls["lambda:Invoke"] != 1 || st.Queues["jobs"].Visible != 1 || len(st.Queues) != 3 {
		t.Fatalf("stats %+v %v", st, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr %q", code, stderr.String())
	}
}

func TestRun_RejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nope"},
		{"-addr", "0.0.0.0:0"},
		{"-addr", "127.0.0.1:0", "-queue", "bad name"},
	} {
		var stdout, stderr syncbuf.Buffer
		if code := run(t.Context(), args, &stdout, &stderr); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}

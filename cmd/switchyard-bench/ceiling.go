package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/bodycopy"
)

// ceilingConfig is what the ceiling program does: the work of a scenario
// and nothing else.
type ceilingConfig struct {
	endpoint, queueURL string
	functions          []string // invoked for every message (fan-out when several)
	batch              bool     // one invocation per receive, SQS event-source shape
	cluster, taskDef   string   // RunTask instead of Invoke when set
	pollers            int
	maxInFlight        int // messages being worked on
	concurrency        int // calls in flight per function (or for RunTask)
	wait               time.Duration
}

// cmdCeiling is the ceiling program: the physically necessary work of
// routing SQS to Lambda (or ECS) with the SDK clients switchyard uses, and
// the same concurrency: receive up to 10, invoke for each, delete the batch.
// No routing, policy, retries or bookkeeping; a failed call is reported and
// its message is left to reappear. It prints "ready" before its first
// receive and runs until ctx ends.
func cmdCeiling(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c ceilingConfig
	var functions string
	fs.StringVar(&c.endpoint, "endpoint", "", "AWS endpoint URL (awstestd)")
	fs.StringVar(&c.queueURL, "queue-url", "", "queue to drain")
	fs.StringVar(&functions, "functions", "", "functions to invoke for each message, comma-separated")
	fs.BoolVar(&c.batch, "batch", false, "invoke once per receive with the messages as SQS records")
	fs.StringVar(&c.cluster, "cluster", "", "ECS cluster: RunTask for each message instead of Invoke")
	fs.StringVar(&c.taskDef, "task-definition", "", "task definition for RunTask")
	fs.IntVar(&c.pollers, "pollers", 2, "receive loops")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 1000, "messages being worked on at most")
	fs.IntVar(&c.concurrency, "concurrency", 64, "calls in flight per function")
	fs.DurationVar(&c.wait, "wait", 20*time.Second, "long-poll wait")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile from ready to exit to `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if functions != "" {
		c.functions = strings.Split(functions, ",")
	}
	if c.endpoint == "" || c.queueURL == "" || (len(c.functions) == 0) == (c.cluster == "") {
		fmt.Fprintln(stderr, "ceiling: -endpoint, -queue-url and one of -functions or -cluster are required")
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "ceiling:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "ceiling:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := runCeiling(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "ceiling:", err)
		return 1
	}
	return 0
}

func runCeiling(ctx context.Context, c ceilingConfig, stdout, stderr io.Writer) error {
	// The AWS config is made as switchyard makes it: the default chain, an
	// HTTP client keeping as many idle connections per endpoint as messages
	// may be in flight, and the body copies its delivery clients need.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 0
		t.MaxIdleConnsPerHost = max(c.maxInFlight, awshttp.DefaultHTTPTransportMaxIdleConnsPerHost)
	})))
	if err != nil {
		return err
	}
	cfg.HTTPClient = bodycopy.Client(cfg.HTTPClient)
	sqsc := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(c.endpoint) })
	lambdac := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(c.endpoint)
		o.Retryer = aws.NopRetryer{}
	})
	ecsc := ecs.NewFromConfig(cfg, func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(c.endpoint)
		o.Retryer = aws.NopRetryer{}
	})
	queueARN := "arn:aws:sqs:" + cfg.Region + ":000000000000:bench"

	// call is one delivery: an invocation of fn with payload, or a RunTask.
	call := func(ctx context.Context, fn string, payload []byte, token string) error {
		if c.cluster != "" {
			_, err := ecsc.RunTask(ctx, &ecs.RunTaskInput{
				Cluster: aws.String(c.cluster), TaskDefinition: aws.String(c.taskDef), Count: aws.Int32(1),
				LaunchType: ecstypes.LaunchTypeFargate, ClientToken: aws.String(token), StartedBy: aws.String("ceiling"),
				NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
			})
			return err
		}
		_, err := lambdac.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
		return err
	}
	targets := c.functions
	if c.cluster != "" {
		targets = []string{c.cluster}
	}
	slots := make(map[string]chan struct{}, len(targets))
	for _, t := range targets {
		slots[t] = make(chan struct{}, c.concurrency)
	}
	inflight := make(chan struct{}, c.maxInFlight)
	var failures sync.Map
	fail := func(what string, err error) {
		if _, seen := failures.LoadOrStore(what, true); !seen {
			fmt.Fprintf(stderr, "ceiling: %s: %v\n", what, err)
		}
	}

	var wg sync.WaitGroup
	fmt.Fprintln(stdout, "ready")
	for range c.pollers {
		wg.Go(func() {
			for ctx.Err() == nil {
				// Ask only for what there is room for, as switchyard does.
				n := 0
				select {
				case inflight <- struct{}{}:
					n = 1
				case <-ctx.Done():
					return
				}
				for n < 10 {
					select {
					case inflight <- struct{}{}:
						n++
						continue
					default:
					}
					break
				}
				out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(c.queueURL), MaxNumberOfMessages: int32(n), WaitTimeSeconds: int32(c.wait / time.Second),
				})
				got := 0
				if err == nil {
					got = len(out.Messages)
				} else if ctx.Err() == nil {
					fail("receive", err)
				}
				for range n - got {
					<-inflight
				}
				if got == 0 {
					continue
				}
				wg.Go(func() {
					handleBatch(ctx, c, out.Messages, targets, slots, call, queueARN, cfg.Region, sqsc, fail)
					release(inflight, got)
				})
			}
		})
	}
	wg.Wait()
	return nil
}

func release(ch chan struct{}, n int) {
	for range n {
		<-ch
	}
}

// handleBatch makes the calls for one receive's messages and deletes them.
func handleBatch(ctx context.Context, c ceilingConfig, msgs []sqstypes.Message, targets []string, slots map[string]chan struct{},
	call func(context.Context, string, []byte, string) error, queueARN, region string, sqsc *sqs.Client, fail func(string, error)) {
	ok := make([]bool, len(msgs))
	var wg sync.WaitGroup
	if c.batch {
		payload := batchPayload(msgs, queueARN, region)
		for _, t := range targets {
			wg.Go(func() {
				slots[t] <- struct{}{}
				defer func() { <-slots[t] }()
				if err := call(ctx, t, payload, ""); err != nil {
					fail("invoke", err)
					return
				}
				for i := range ok {
					ok[i] = true
				}
			})
		}
	} else {
		var mu sync.Mutex
		for i, m := range msgs {
			payload := withID(aws.ToString(m.Body), aws.ToString(m.MessageId))
			left := len(targets)
			for _, t := range targets {
				wg.Go(func() {
					slots[t] <- struct{}{}
					err := call(ctx, t, payload, aws.ToString(m.MessageId))
					<-slots[t]
					if err != nil {
						fail("call", err)
						return
					}
					mu.Lock()
					left--
					ok[i] = left == 0
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, len(msgs))
	for i, m := range msgs {
		if ok[i] {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(entries) == 0 {
		return
	}
	if _, err := sqsc.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.queueURL), Entries: entries}); err != nil {
		fail("delete", err)
	}
}

// withID gives the event in body the message id as its "id", as switchyard
// does for an event without one, so the function can tell events apart.
func withID(body, id string) []byte {
	if !strings.HasPrefix(body, "{") {
		b, _ := json.Marshal(map[string]string{"id": id, "detail": body})
		return b
	}
	out := make([]byte, 0, len(body)+len(id)+8)
	out = append(out, `{"id":`...)
	out = strconv.AppendQuote(out, id)
	if body != "{}" {
		out = append(out, ',')
	}
	return append(out, body[1:]...)
}

// batchPayload is the event Lambda's SQS event-source mapping sends.
func batchPayload(msgs []sqstypes.Message, queueARN, region string) []byte {
	type record struct {
		MessageID     string `json:"messageId"`
		ReceiptHandle string `json:"receiptHandle"`
		Body          string `json:"body"`
		MD5OfBody     string `json:"md5OfBody"`
		EventSource   string `json:"eventSource"`
		SourceARN     string `json:"eventSourceARN"`
		Region        string `json:"awsRegion"`
	}
	recs := make([]record, len(msgs))
	for i, m := range msgs {
		recs[i] = record{aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body), aws.ToString(m.MD5OfBody), "aws:sqs", queueARN, region}
	}
	b, _ := json.Marshal(struct {
		Records []record `json:"Records"`
	}{recs})
	return b
}

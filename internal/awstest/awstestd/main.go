// Command awstestd serves the awstest SQS, Lambda and ECS endpoints on a
// loopback address, for load tests of switchyard against something that
// speaks AWS's protocols without being AWS.
//
//	awstestd -addr 127.0.0.1:4747 -queue jobs -queue 'work?VisibilityTimeout=60' \
//	    -latency 20ms -cluster jobs -task-definition transcode=app,sidecar
//
// Every invoked function exists (created on first use, answering {} after
// -latency); launched ECS tasks start RUNNING. Counters and queue depths are
// served as JSON at /_awstest/stats; with -probe-latency, receive-to-invoke
// latency at /_awstest/latency. POST a fault rule (JSON) to /_awstest/faults
// to inject failures, DELETE it to clear them. SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// run serves until ctx ends: 0 then, 2 for bad flags, 1 when setup fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("awstestd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4747", "loopback `address` to listen on")
	latency := fs.Duration("latency", 0, "latency of every Lambda invocation")
	concurrency := fs.Int("concurrency", 0, "reserved concurrency of every function; 0 is unlimited")
	allowUnsigned := fs.Bool("allow-unsigned", false, "serve requests without an Authorization header")
	probe := fs.Bool("probe-latency", false, "measure the time from an SQS message's receive to each Lambda invocation carrying its id")
	var queues, clusters, taskDefs listFlag
	fs.Var(&queues, "queue", "queue to create, `name[?Attribute=value&...]`; repeatable, in order (dead-letter queues first); a name ending .fifo is a FIFO queue")
	fs.Var(&clusters, "cluster", "ECS cluster to create besides default; repeatable")
	fs.Var(&taskDefs, "task-definition", "task definition to register, `family=container[,container...]`; repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "awstestd: unexpected arguments %q\n", fs.Args())
		return 2
	}

	s := awstest.New(awstest.Options{
		AllowUnsigned: *allowUnsigned,
		ProbeLatency:  *probe,
		Lambda:        awstest.LambdaOptions{AutoCreate: true, DefaultLatency: *latency, DefaultConcurrency: *concurrency, MaxRecords: 1000},
		ECS:           awstest.ECSOptions{StartRunning: true},
	})
	defer s.Close()
	if err := s.StartOn(*addr); err != nil {
		fmt.Fprintf(stderr, "awstestd: %v\n", err)
		return 1
	}
	for _, q := range queues {
		name, query, _ := strings.Cut(q, "?")
		vals, err := url.ParseQuery(query)
		if err != nil {
			fmt.Fprintf(stderr, "awstestd: -queue %s: %v\n", q, err)
			return 1
		}
		attrs := map[string]string{}
		for k := range vals {
			attrs[k] = vals.Get(k)
		}
		if strings.HasSuffix(name, ".fifo") {
			attrs["FifoQueue"] = "true"
			if _, ok := attrs["ContentBasedDeduplication"]; !ok {
				attrs["ContentBasedDeduplication"] = "true"
			}
		}
		if _, err := s.SQS().CreateQueue(name, attrs); err != nil {
			fmt.Fprintf(stderr, "awstestd: -queue %s: %v\n", q, err)
			return 1
		}
	}
	for _, c := range clusters {
		s.ECS().CreateCluster(c)
	}
	for _, td := range taskDefs {
		family, containers, _ := strings.Cut(td, "=")
		def := awstest.TaskDefinition{Family: family, RequiresCompatibilities: []string{"FARGATE"}}
		for _, c := range strings.Split(containers, ",") {
			if c != "" {
				def.Containers = append(def.Containers, awstest.ContainerDefinition{Name: c})
			}
		}
		if _, err := s.ECS().RegisterTaskDefinition(def); err != nil {
			fmt.Fprintf(stderr, "awstestd: -task-definition %s: %v\n", td, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "awstestd: listening on %s (stats at %s%s)\n", s.URL(), s.URL(), awstest.StatsPath)
	<-ctx.Done()
	return 0
}

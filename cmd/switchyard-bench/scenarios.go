package main

import (
	"fmt"
	"strings"
	"time"
)

// load is how messages reach the queue.
type load int

const (
	preload load = iota // N messages queued before the process starts; measured until drained
	paced               // sent at a fixed rate while the process runs
	outage              // paced, with Lambda failing for a period in the middle
	idle                // no messages: readiness and resident memory at rest
)

// world is what a scenario's config refers to.
type world struct {
	awsURL, queueURL, admin string
	pprof                   bool // serve profiles on the admin endpoint
}

// scenario is one row of BENCHMARKS.md.
type scenario struct {
	name, what string
	load       load
	// config is switchyard's config.
	config func(w world) string
	// ceiling is the ceiling program's arguments; nil when the scenario has
	// no ceiling run.
	ceiling func(w world) []string
	// calls is how many calls the targets get per message (for a check
	// that everything arrived).
	calls int
}

const configHead = `version: 1
admin: {listen: "%s", pprof: %t}
aws: {region: us-east-1, endpoints: {sqs: "%s", lambda: "%s", ecs: "%s"}}
max_in_flight: 1000
sources:
  - {name: jobs, type: sqs, queue_url: "%s", pollers: 2, wait_time: 20s}
`

func head(w world) string {
	return fmt.Sprintf(configHead, w.admin, w.pprof, w.awsURL, w.awsURL, w.awsURL, w.queueURL)
}

// oneLambda is the config of one rule matching every event, to one
// Lambda target.
func oneLambda(w world) string {
	return head(w) + `targets:
  - {name: fn, type: lambda, function: bench-fn}
rules:
  - {name: orders, pattern: {source: [bench.shop]}, targets: [fn]}
`
}

// ceilingArgs are the ceiling program's arguments for w: switchyard's
// pollers and in-flight budget, the default concurrency, and then args.
func ceilingArgs(w world, args ...string) []string {
	return append([]string{"-endpoint", w.awsURL, "-queue-url", w.queueURL, "-pollers", "2", "-concurrency", "64", "-max-in-flight", "1000"}, args...)
}

func lambdaCeiling(fns ...string) func(w world) []string {
	return func(w world) []string { return ceilingArgs(w, "-functions", strings.Join(fns, ",")) }
}

var scenarios = []scenario{
	{
		name: "lambda", what: "SQS → Lambda (request_response), one rule", load: preload, calls: 1,
		config:  oneLambda,
		ceiling: lambdaCeiling("bench-fn"),
	},
	{
		name: "lambda-batch", what: "SQS → Lambda batch mode (10 records an invocation)", load: preload, calls: 1,
		config: func(w world) string {
			return head(w) + `targets:
  - {name: fn, type: lambda, function: bench-fn, batch: {size: 10}}
rules:
  - {name: orders, pattern: {source: [bench.shop]}, targets: [fn]}
`
		},
		ceiling: func(w world) []string { return append(lambdaCeiling("bench-fn")(w), "-batch") },
	},
	{
		name: "ecs", what: "SQS → ECS RunTask (FARGATE)", load: preload, calls: 1,
		config: func(w world) string {
			return head(w) + `targets:
  - name: task
    type: ecs_task
    cluster: bench
    task_definition: work
    launch_type: FARGATE
    network: {subnets: [subnet-1]}
rules:
  - {name: orders, pattern: {source: [bench.shop]}, targets: [task]}
`
		},
		ceiling: func(w world) []string {
			return ceilingArgs(w, "-cluster", "bench", "-task-definition", "work")
		},
	},
	{
		name: "fanout", what: "one event to three Lambda targets", load: preload, calls: 3,
		config: func(w world) string {
			return head(w) + `targets:
  - {name: a, type: lambda, function: bench-a}
  - {name: b, type: lambda, function: bench-b}
  - {name: c, type: lambda, function: bench-c}
rules:
  - {name: orders, pattern: {source: [bench.shop]}, targets: [a, b, c]}
`
		},
		ceiling: lambdaCeiling("bench-a", "bench-b", "bench-c"),
	},
	{
		name: "rules1000", what: "1,000 rules, each event matches one", load: preload, calls: 1,
		config: func(w world) string {
			var b strings.Builder
			b.WriteString(head(w))
			b.WriteString("targets:\n  - {name: fn, type: lambda, function: bench-fn}\nrules:\n")
			for i := range 1000 {
				var p string
				switch {
				case i < 3: // the rules that match: events carry kind k0, k1 or k2
					p = fmt.Sprintf(`{source: [bench.shop], detail: {kind: [k%d]}}`, i)
				case i%4 == 0:
					p = fmt.Sprintf(`{source: [bench.shop], detail: {kind: [k%d]}}`, i)
				case i%4 == 1:
					p = fmt.Sprintf(`{detail: {customer: [{prefix: "zz%d-"}]}}`, i)
				case i%4 == 2:
					p = fmt.Sprintf(`{detail: {total: [{numeric: [">=", %d, "<", %d]}]}}`, 100000+i, 100001+i)
				default:
					p = fmt.Sprintf(`{detail-type: ["Order %d"], detail: {currency: [{anything-but: [EUR]}]}}`, i)
				}
				fmt.Fprintf(&b, "  - {name: r%d, pattern: %s, targets: [fn]}\n", i, p)
			}
			return b.String()
		},
		ceiling: lambdaCeiling("bench-fn"),
	},
	{
		name: "paced", what: "SQS → Lambda at a fixed rate (-rate)", load: paced, calls: 1,
		config:  oneLambda,
		ceiling: lambdaCeiling("bench-fn"),
	},
	{
		name: "outage", what: "SQS → Lambda at -rate/2, Lambda failing (503) for the middle third", load: outage, calls: 1,
		config: func(w world) string {
			return head(w) + `targets:
  - {name: fn, type: lambda, function: bench-fn, policy: bench}
policies:
  bench:
    concurrency: 64
    retry: {attempts: 100, initial: 100ms, max: 1s, max_age: 10m}
    breaker: {failures: 5, open: 500ms, half_open: 1}
rules:
  - {name: orders, pattern: {source: [bench.shop]}, targets: [fn]}
`
		},
	},
	{
		name: "idle", what: "no messages: time to ready, memory and CPU at rest", load: idle,
		config: oneLambda,
	},
}

// body is message i: an EventBridge-shaped event of about 1 KB without an
// "id", so that switchyard (and the ceiling) give it the SQS message id,
// which the latency probe needs to pair receives with invocations.
func body(i int) string {
	var items strings.Builder
	for j := range 6 {
		if j > 0 {
			items.WriteByte(',')
		}
		fmt.Fprintf(&items, `{"sku":"SKU-%05d-%d","name":"Widget model %d","qty":%d,"price":%d.99}`, (i*7+j)%100000, j, j, 1+j%3, 5+j*3)
	}
	return fmt.Sprintf(`{"version":"0","source":"bench.shop","detail-type":"Order Placed","account":"123456789012",`+
		`"time":"%s","region":"us-east-1","resources":["arn:aws:dynamodb:us-east-1:123456789012:table/orders"],`+
		`"detail":{"n":%d,"kind":"k%d","order_id":"ord-%08d","customer":"cust-%06d","total":%d.50,"currency":"EUR",`+
		`"items":[%s],"shipping":{"method":"express","address":{"street":"1 Long Street","city":"Springfield","postcode":"12345","country":"DE"}},`+
		`"metadata":{"channel":"web","campaign":"spring-sale","trace":"%016x"}}}`,
		time.Date(2026, 1, 1, 0, 0, i%3600, 0, time.UTC).Format(time.RFC3339), i, i%3, i, i%100000, 10+i%500, items.String(), uint64(i)*0x9e3779b97f4a7c15)
}

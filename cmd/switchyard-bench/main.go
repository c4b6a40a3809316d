// Command switchyard-bench is switchyard's load harness. For each scenario it
// starts awstestd (the wire-level AWS endpoints, in their own process so
// their CPU is not counted), loads an SQS queue, runs `switchyard run` on
// the scenario's config as a subprocess, and measures until the queue is
// drained: events/s, receive-to-invoke latency, CPU seconds per 1,000
// events, resident memory and time to ready. It alternates each switchyard
// run with a run of the ceiling program (`switchyard-bench ceiling`), which
// does only the physically necessary work with the same SDK clients and
// concurrency, and reports medians and the ratio between the two.
//
//	go run ./cmd/switchyard-bench -scenarios lambda,paced -n 20000 -runs 3
//
// `switchyard-bench bodies` measures resident memory while large bodies are
// posted to the http source, and after.
//
// BENCHMARKS.md describes what each figure measures.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "ceiling" {
		return cmdCeiling(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bodies" {
		return cmdBodies(ctx, args[1:], stdout, stderr)
	}
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return 2
	}
	if _, err := bench(ctx, opts, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "switchyard-bench:", err)
		return 1
	}
	return 0
}

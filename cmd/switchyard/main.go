// Command switchyard is an event-routing daemon: it consumes SQS,
// EventBridge, ECS task-state and NATS events, routes them with
// EventBridge's event-pattern language, and delivers them to Lambda, ECS
// tasks, HTTP, NATS and SQS with backpressure, retries and circuit breakers.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the daemon drains; a second one exits at
		// once (the signals' default action).
		<-ctx.Done()
		stop()
	}()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, memoryLimit: memlimit.FromCgroup}
	code := e.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

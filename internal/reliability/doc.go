// Package reliability holds the reliability suite: the built daemon, as a
// process, against the wire-level AWS endpoints, through crashes, outages,
// throttling, poison messages, slow targets, partial fan-out failures and
// SIGTERM under load, with the counts that show nothing was lost. Run it
// with go test -v ./internal/reliability to see the counts.
package reliability

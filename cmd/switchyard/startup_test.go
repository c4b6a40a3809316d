package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// A configured endpoint that DNS cannot resolve yet, or that does not
// answer in time, may come; one that refuses the connection is a wrong
// address. The errors are the dialer's own, wrapped as checkEndpoints
// wraps them.
func TestUnreachableForNow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	refused := checkEndpoints(t.Context(), config.Endpoints{SQS: "http://" + closed})

	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server here")
	}}
	_, err = (&net.Dialer{Resolver: noDNS}).DialContext(t.Context(), "tcp", "sqs.vpce.example:443")
	dns := fmt.Errorf("aws.endpoints.sqs: https://sqs.vpce.example is unreachable: %w", err)

	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = (&net.Dialer{}).DialContext(ctx, "tcp", closed)
	timeout := fmt.Errorf("aws.endpoints.lambda: http://%s is unreachable: %w", closed, err)

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", refused, false},
		{"DNS", errors.Join(dns), true},
		{"timeout", errors.Join(timeout), true},
		{"DNS and timeout", errors.Join(dns, timeout), true},
		{"DNS and refused", errors.Join(dns, refused), false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := unreachableForNow(tc.err); got != tc.want {
			t.Errorf("%s: unreachableForNow(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

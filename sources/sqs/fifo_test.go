package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/router"
)

// orderSink records each delivery's (group, n) and whether it succeeded;
// fail decides, under the sink's lock, whether a delivery fails.
type orderSink struct {
	mu       sync.Mutex
	attempts map[string][]attempt // by group, in call order
	fail     func(group string, n int) bool
}

type attempt struct {
	n  int
	ok bool
}

func (s *orderSink) Name() string { return "t" }

func (s *orderSink) Deliver(_ context.Context, d *router.Delivery) error {
	var ev struct {
		Detail struct {
			Group string `json:"group"`
			N     int    `json:"n"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(d.Message.Body, &ev); err != nil {
		return router.PermanentError(err)
	}
	g, n := ev.Detail.Group, ev.Detail.N
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := !s.fail(g, n)
	s.attempts[g] = append(s.attempts[g], attempt{n, ok})
	if !ok {
		return router.RetryableError(errors.New("503"), 0)
	}
	return nil
}

// delivered is the group's successful deliveries, in order; s.mu is held.
func (s *orderSink) delivered(g string) []int {
	var ns []int
	for _, a := range s.attempts[g] {
		if a.ok {
			ns = append(ns, a.n)
		}
	}
	return ns
}

// A FIFO queue through the dispatcher, with failures: each group's
// messages are delivered in order, a failed message is redelivered (and
// the rest of its group with it) before any later one of its group is
// tried, and a group held back by a failing message does not hold back the
// others.
func TestSQSSource_FIFOOrderWithFailuresAndRedeliveries(t *testing.T) {
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, err := srv.SQS().CreateQueue("jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second, Envelope: router.EnvelopeAuto}
	cfg.SetDefaults()
	src := New("jobs", cfg, srv.SQSClient(), quiet)
	if err := src.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	const perGroup = 12
	groups := []string{"a", "b", "c", "d", "e", "f"}
	failures := map[string]int{}
	sink := &orderSink{attempts: map[string][]attempt{}}
	sink.fail = func(g string, n int) bool {
		switch {
		case g == "a" && n == 3:
			// a3 fails until group b is done: a stays held back meanwhile.
			return len(sink.delivered("b")) < perGroup
		case g != "a" && (n == 0 || n == 5 || n == perGroup-1):
			failures[fmt.Sprint(g, n)]++
			return failures[fmt.Sprint(g, n)] <= 2 // twice, then it succeeds
		}
		return false
	}
	pattern, err := router.ParsePattern([]byte(`{"detail":{"group":[{"exists":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	table, err := router.NewTable([]router.Rule{{Name: "all", Pattern: pattern, Targets: []string{"t"}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := router.NewDispatcher(router.DispatcherConfig{
		Table: table, Sinks: map[string]router.Sink{"t": sink}, Sources: []router.Source{src},
		MaxInFlight: 50, Logger: quiet, RetryLater: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := range perGroup {
		for _, g := range groups {
			body := fmt.Sprintf(`{"source":"app","detail-type":"step","detail":{"group":%q,"n":%d}}`, g, n)
			if _, err := srv.SQS().Send("jobs.fifo", awstest.Message{Body: body, GroupID: g}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, 5*time.Second) }()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := srv.SQS().Counts("jobs.fifo")
		if err != nil {
			t.Fatal(err)
		}
		if c.Visible+c.InFlight+c.Delayed == 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the queue did not drain within a minute: %+v", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, g := range groups {
		// No message is tried before the one before it in its group was
		// delivered, and each is delivered once, in order.
		next := 0
		for _, a := range sink.attempts[g] {
			if a.n != next {
				t.Errorf("group %s: message %d tried while %d was not delivered yet (attempts %v)", g, a.n, next, sink.attempts[g])
				break
			}
			if a.ok {
				next++
			}
		}
		if next != perGroup {
			t.Errorf("group %s: %d of %d delivered (attempts %v)", g, next, perGroup, sink.attempts[g])
		}
	}
	tried := 0
	for _, a := range sink.attempts["a"] {
		if a.n == 3 {
			tried++
		}
	}
	if tried < 2 {
		t.Errorf("a3 was tried %d times: the test did not hold group a back", tried)
	}
	t.Logf("%d messages in each of %d groups, %d attempts in all; a3 tried %d times while b went through",
		perGroup, len(groups), len(sink.attempts["a"])+len(sink.attempts["b"])+len(sink.attempts["c"])+len(sink.attempts["d"])+len(sink.attempts["e"])+len(sink.attempts["f"]), tried)
}

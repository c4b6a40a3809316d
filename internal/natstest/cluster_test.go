package natstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A stream with three replicas keeps taking publishes and serving reads
// while the node leading it is stopped; the node rejoins after Restart and
// catches up: with the third node stopped, the stream's quorum needs it,
// and every message is still there.
func TestCluster_StreamSurvivesANodeAndItRejoins(t *testing.T) {
	start := time.Now()
	c := RunCluster(t, 3)
	t.Logf("cluster of 3 ready in %v", time.Since(start).Round(time.Millisecond))
	if urls := strings.Split(c.URLs(), ","); len(urls) != 3 {
		t.Fatalf("URLs() = %q", c.URLs())
	}
	js := c.JetStream()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			publishRetrying(t, ctx, js, fmt.Sprintf("orders.%d", i))
		}
	}
	publish(0, 10)

	leader := waitFor(t, "a stream leader", func() int { return c.StreamLeader("ORDERS") })
	c.Stop(leader)
	stopped := time.Now()
	publish(10, 20)
	t.Logf("node %d (the stream leader) stopped: publishes accepted again after %v", leader, time.Since(stopped).Round(time.Millisecond))
	readAll(t, ctx, js, 20)

	c.Restart(leader)
	other := waitFor(t, "a stream leader", func() int { return c.StreamLeader("ORDERS") })
	third := 3 - leader - other // the node that was never stopped nor leads now
	if other == leader {
		third = (leader + 1) % 3
	}
	waitFor(t, "the restarted node to catch up", func() int {
		if c.Node(leader).srv.JetStreamIsStreamCurrent(account, "ORDERS") {
			return leader
		}
		return -1
	})
	c.Stop(third)
	publish(20, 25)
	readAll(t, ctx, js, 25)
	c.Restart(third)
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

// Stop and Restart are idempotent about a node already stopped, and the
// cluster's URLs stay the same across a restart.
func TestCluster_RestartKeepsURLs(t *testing.T) {
	c := RunCluster(t, 3)
	before := c.URLs()
	c.Stop(1)
	c.Stop(1)
	c.Restart(1)
	if after := c.URLs(); after != before {
		t.Fatalf("URLs changed across a restart: %q, then %q", before, after)
	}
	if c.MetaLeader() < 0 {
		t.Fatal("no meta leader after Restart returned")
	}
}

// publishRetrying publishes one message, retrying while the stream has no
// leader, until ctx ends. A publish that timed out may have been stored:
// its message id makes the retry a duplicate the stream drops.
func publishRetrying(t *testing.T, ctx context.Context, js jetstream.JetStream, subject string) {
	t.Helper()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(pctx, subject, []byte(subject), jetstream.WithMsgID(subject))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			// No responders while the stream elects its leader: pace it.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// readAll reads messages 1 to n by sequence and checks each one's subject.
func readAll(t *testing.T, ctx context.Context, js jetstream.JetStream, n int) {
	t.Helper()
	var st jetstream.Stream
	for seq := 1; seq <= n; seq++ {
		for {
			var m *jetstream.RawStreamMsg
			var err error
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			if st == nil {
				st, err = js.Stream(rctx, "ORDERS")
			}
			if err == nil {
				m, err = st.GetMsg(rctx, uint64(seq))
			}
			cancel()
			if err == nil {
				if want := fmt.Sprintf("orders.%d", seq-1); m.Subject != want {
					t.Fatalf("message %d is on %s, want %s", seq, m.Subject, want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("read message %d: %v", seq, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitFor polls f until it returns a node's index, for up to 30 seconds.
func waitFor(t *testing.T, what string, f func() int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if i := f(); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

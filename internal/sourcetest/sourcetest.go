// Package sourcetest is the conformance suite every router.Source passes:
// what ack, nack, extend, Receive and Close promise, checked against the
// source's real backend (an SQS endpoint, a NATS server).
package sourcetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Harness connects the suite to one kind of source.
type Harness struct {
	// New returns a fresh source on an empty backend queue.
	New func(t *testing.T) router.Source
	// Send publishes messages with these bodies.
	Send func(t *testing.T, bodies ...string)
	// Stored reports how many messages the backend still holds (visible or
	// not): what has been received and not acked.
	Stored func(t *testing.T) int
	// Pass lets d go by for the backend (advancing its clock, or sleeping).
	Pass func(t *testing.T, d time.Duration)
	// Visibility is how long a received message stays invisible.
	Visibility time.Duration
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("ReceiveHonoursMax", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "a", "b", "c", "d", "e")
		got := receiveN(t, src, 2, 2)
		if len(got) > 2 {
			t.Fatalf("Receive(2) returned %d messages", len(got))
		}
	})
	t.Run("AckDeletes", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "x", "y")
		ms := receiveN(t, src, 10, 2)
		ack(t, ms[0])
		if n := h.Stored(t); n != 1 {
			t.Fatalf("after one ack the backend holds %d messages, want 1", n)
		}
		ack(t, ms[1])
		if n := h.Stored(t); n != 0 {
			t.Fatalf("after both acks the backend holds %d messages, want 0", n)
		}
		// A second ack is a no-op.
		ack(t, ms[0])
	})
	t.Run("NackRedeliversAfterDelay", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "again")
		m := receiveN(t, src, 1, 1)[0]
		if err := m.Handle.Nack(context.Background(), h.Visibility*2); err != nil {
			t.Fatal(err)
		}
		// Not back before its delay, even after the visibility timeout...
		h.Pass(t, h.Visibility+time.Second)
		if ms := receiveFor(t, src, 1, 300*time.Millisecond); len(ms) != 0 {
			t.Fatalf("nacked message came back before its delay")
		}
		// ...and back after it.
		h.Pass(t, h.Visibility)
		again := receiveN(t, src, 1, 1)[0]
		if string(again.Body) != "again" || again.ID != m.ID {
			t.Fatalf("redelivered %q (%s), want %q (%s)", again.Body, again.ID, "again", m.ID)
		}
		// First settlement wins: acking the old handle now does not delete.
		ack(t, m)
		if n := h.Stored(t); n != 1 {
			t.Fatalf("acking a nacked handle deleted the message")
		}
		ack(t, again)
	})
	t.Run("NackZeroRedeliversNow", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "now")
		m := receiveN(t, src, 1, 1)[0]
		if err := m.Handle.Nack(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if again := receiveN(t, src, 1, 1); again[0].ID != m.ID {
			t.Fatalf("got %s, want %s", again[0].ID, m.ID)
		}
	})
	t.Run("ExtendKeepsInvisible", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "slow")
		m := receiveN(t, src, 1, 1)[0]
		for range 3 {
			h.Pass(t, h.Visibility/2)
			if err := m.Handle.Extend(context.Background(), h.Visibility); err != nil {
				t.Fatal(err)
			}
		}
		if ms := receiveFor(t, src, 1, 300*time.Millisecond); len(ms) != 0 {
			t.Fatalf("an extended message was redelivered")
		}
		ack(t, m)
	})
	t.Run("UnackedComesBack", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "lost")
		m := receiveN(t, src, 1, 1)[0]
		h.Pass(t, h.Visibility+time.Second)
		again := receiveN(t, src, 1, 1)[0]
		if again.ID != m.ID {
			t.Fatalf("got %s, want %s back", again.ID, m.ID)
		}
		ack(t, again)
	})
	t.Run("ReceiveHonoursContext", func(t *testing.T) {
		src := h.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := src.Receive(ctx, 1)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Receive did not return after its context was cancelled")
		}
	})
	t.Run("CloseIsIdempotent", func(t *testing.T) {
		src := h.New(t)
		h.Send(t, "m")
		receiveN(t, src, 1, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := src.Close(ctx); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func ack(t *testing.T, m *router.Message) {
	t.Helper()
	if err := m.Handle.Ack(context.Background()); err != nil {
		t.Fatalf("ack %s: %v", m.ID, err)
	}
}

// receiveN receives until it has want messages (asking max at a time), or
// fails after 10s.
func receiveN(t *testing.T, src router.Source, max, want int) []*router.Message {
	t.Helper()
	var got []*router.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", len(got), want)
		}
		ms := receiveFor(t, src, max, time.Second)
		if len(ms) > max {
			t.Fatalf("Receive(%d) returned %d", max, len(ms))
		}
		got = append(got, ms...)
	}
	return got
}

// receiveFor makes one Receive bounded by d.
func receiveFor(t *testing.T, src router.Source, max int, d time.Duration) []*router.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ms, err := src.Receive(ctx, max)
	if err != nil && ctx.Err() == nil {
		t.Fatalf("Receive: %v", err)
	}
	return ms
}

// Bodies returns the bodies of messages, sorted.
func Bodies(ms []*router.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Body))
	}
	slices.Sort(out)
	return out
}

// Names returns n distinct message bodies.
func Names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

package router

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestEntry_RoundTrip(t *testing.T) {
	first := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	for _, tc := range []struct {
		name string
		d    *Delivery
	}{
		{"whole event", &Delivery{ID: "d1", Rule: "r", Target: "t", Payload: []byte(`{"id":"e1","detail":{"k":"v"}}`), Whole: true,
			Message: &Message{Source: "jobs", ID: "m1", Body: []byte(`{"id":"e1","detail":{"k":"v"}}`), Received: first,
				Event: &Event{ID: "e1"}, Attributes: map[string]string{"a": "1"}, System: map[string]string{"QueueArn": "arn"},
				TypedAttributes: map[string]Attribute{"a": {DataType: "Number", StringValue: "1"}, "b": {DataType: "Binary.png", BinaryValue: []byte{0, 1}}},
				Trace:           TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", TraceState: "k=v"}}}},
		{"text payload, other body", &Delivery{ID: "d2", Rule: "r", Target: "t", Payload: []byte("order <o-1> placed"), Text: true,
			Attempt: 3, Failures: 2, FirstAttempt: first, Generation: 2, FirstErr: errors.New("first"), LastErr: errors.New("last"),
			Message: &Message{Source: "ingest", ID: "m2", Body: []byte(`{"Type":"Notification","Message":"..."}`), Received: first, Event: &Event{ID: "e2"},
				Trace: TraceContext{XRay: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}}},
		{"bytes that are not text", &Delivery{ID: "d3", Target: "dlq", Payload: []byte{0xff, 0x00, 'x', 0xfe},
			DeadLetter: &DeadLetter{Source: "bus", MessageID: "m3", Rule: "r", Target: "t", Attempts: 5, LastError: "503",
				FirstAttempt: first, LastAttempt: first.Add(time.Minute)},
			Message: &Message{Source: "bus", ID: "m3", Body: []byte{0xff, 0x00, 'x', 0xfe}, Received: first, Event: &Event{}}}},
		{"a JSON string payload is not text", &Delivery{ID: "d4", Target: "t", Payload: []byte(`"just a string"`),
			Message: &Message{Source: "s", ID: "m4", Body: []byte(`x`), Received: first, Event: &Event{ID: "e4"}}}},
		{"JSON that encoding/json would rewrite", &Delivery{ID: "d5", Target: "t", Payload: []byte("{\"a\": \"<b>&\"}\n"),
			Message: &Message{Source: "s", ID: "m5", Body: []byte(" [1, 2]"), Received: first, Event: &Event{ID: "e5"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := EncodeEntry(tc.d)
			got, err := DecodeEntry(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			want := tc.d
			m, gm := want.Message, got.Message
			if !got.Drained || !gm.Redelivered {
				t.Error("a decoded entry must be marked Drained, its message Redelivered")
			}
			for _, c := range []struct {
				what      string
				got, want any
			}{
				{"id", got.ID, want.ID}, {"rule", got.Rule, want.Rule}, {"target", got.Target, want.Target},
				{"payload", string(got.Payload), string(want.Payload)}, {"text", got.Text, want.Text}, {"whole", got.Whole, want.Whole},
				{"attempt", got.Attempt, want.Attempt}, {"failures", got.Failures, want.Failures}, {"generation", got.Generation, want.Generation},
				{"first attempt", got.FirstAttempt.UTC(), want.FirstAttempt.UTC()}, {"dead letter", got.DeadLetter, want.DeadLetter},
				{"errors", errString(got.FirstErr) + "|" + errString(got.LastErr), errString(want.FirstErr) + "|" + errString(want.LastErr)},
				{"source", gm.Source, m.Source}, {"message id", gm.ID, m.ID}, {"event id", gm.Event.ID, m.Event.ID},
				{"body", string(gm.Body), string(m.Body)}, {"attributes", gm.Attributes, m.Attributes}, {"system", gm.System, m.System},
				{"typed attributes", gm.TypedAttributes, m.TypedAttributes},
				{"received", gm.Received.UTC(), m.Received.UTC()}, {"trace", gm.Trace, m.Trace},
			} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestEntry_Refused(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"newer version", `{"v":2,"id":"d","target":"t"}`, "unknown version"},
		{"no version", `{"id":"d","target":"t"}`, "unknown version"},
		{"not JSON", `garbage`, "backlog entry"},
		{"no id", `{"v":1,"target":"t"}`, "no delivery id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeEntry([]byte(tc.entry)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeEntry(%s) = %v, want %q", tc.entry, err, tc.want)
			}
		})
	}
}

// memBacklog is a Backlog in memory: pushed entries queue in a memSource.
type memBacklog struct {
	*memSource
	mu      sync.Mutex
	handles []*memHandle
	fail    atomic.Bool
}

func newMemBacklog() *memBacklog { return &memBacklog{memSource: newMemSource("backlog")} }

func (b *memBacklog) String() string { return "memory" }

func (b *memBacklog) Push(_ context.Context, d *Delivery) error {
	if b.fail.Load() {
		return errStoreDown
	}
	b.add(EncodeEntry(d), false)
	return nil
}

// add queues an entry, as handed out before when redelivered.
func (b *memBacklog) add(entry []byte, redelivered bool) *memHandle {
	h := &memHandle{}
	b.mu.Lock()
	b.handles = append(b.handles, h)
	b.mu.Unlock()
	b.put(&Message{Source: "backlog", ID: "entry", Body: entry, Handle: h, Redelivered: redelivered})
	return h
}

// roomSink is a sink whose room is set by the test.
type roomSink struct {
	funcSink
	room atomic.Int64
}

func (s *roomSink) Room() int { return int(s.room.Load()) }

// A backlog drains into its own target only while the target has room:
// entries that resolve are acked, those that do not come back later, and
// one that cannot be read stays where it is.
func TestDispatcher_DrainsABacklogIntoItsTargetWhenItHasRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBacklog()
		var got []*Delivery
		var mu sync.Mutex
		target := &roomSink{funcSink: funcSink{"t", func(_ context.Context, d *Delivery) error {
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
			if string(d.Payload) == `{"fail":true}` {
				return errors.New("still down")
			}
			return nil
		}}}
		other := &funcSink{"other", func(context.Context, *Delivery) error { t.Error("a backlog drained into another target"); return nil }}
		d, err := NewDispatcher(DispatcherConfig{
			Table: table(t, Rule{Name: "r", Targets: []string{"t", "other"}}),
			Sinks: map[string]Sink{"t": target, "other": other}, Logger: quiet,
			Backlogs: map[string]Backlog{"t": b}, RetryLater: 7 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		first := time.Now().Add(-time.Minute)
		msg := &Message{Source: "jobs", ID: "m1", Event: &Event{ID: "e1"}}
		b.Push(t.Context(), &Delivery{ID: "d1", Rule: "r", Target: "t", Payload: []byte(`{"ok":true}`), Attempt: 2, Failures: 1, FirstAttempt: first, Message: msg})
		b.Push(t.Context(), &Delivery{ID: "d2", Rule: "r", Target: "t", Payload: []byte(`{"fail":true}`), Message: msg})
		corrupt := b.add([]byte(`{"v":1}`), false)
		stop := run(t, d, time.Second)
		defer stop()

		time.Sleep(time.Second)
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("%d deliveries drained into a target with no room", len(got))
		}
		target.room.Store(10)
		time.Sleep(drainPoll)
		synctest.Wait()
		if len(got) != 2 {
			t.Fatalf("drained %d deliveries, want 2", len(got))
		}
		for _, del := range got {
			if del.ID == "d1" && (del.Attempt != 2 || del.Failures != 1 || !del.FirstAttempt.Equal(first) || !del.Drained || del.Message.Event.ID != "e1") {
				t.Errorf("d1 drained as attempt %d, failures %d, first %v, drained %v; want where it was pushed", del.Attempt, del.Failures, del.FirstAttempt, del.Drained)
			}
		}
		states := map[string]string{}
		for i, h := range b.handles {
			s, after := h.state()
			states[[]string{"d1", "d2", "corrupt"}[i]] = s + " " + after.String()
		}
		if states["d1"] != "ack 0s" || states["d2"] != "nack 7s" || states["corrupt"] != "nack 1h0m0s" {
			t.Errorf("entries settled as %v; want d1 acked, d2 back after RetryLater, the corrupt one kept an hour", states)
		}
		if s, _ := corrupt.state(); s != "nack" {
			t.Error("the corrupt entry was not kept")
		}
		st := d.BacklogStats("t")
		if st.Drained.Load() != 1 || st.Returned.Load() != 1 || st.Corrupt.Load() != 1 {
			t.Errorf("backlog stats: drained %d returned %d corrupt %d; want 1 each", st.Drained.Load(), st.Returned.Load(), st.Corrupt.Load())
		}
		if d.Stats().Acked.Load() != 0 {
			t.Error("backlog entries counted as source messages")
		}
	})
}

// A drained entry whose ledger record says it was delivered (its ack was
// lost) is acked without a call.
func TestDispatcher_DrainSkipsWhatTheLedgerSaysIsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBacklog()
		l := newMemLedger()
		l.recs["d1"] = Record{State: Delivered}
		var calls atomic.Int64
		target := &roomSink{funcSink: funcSink{"t", func(context.Context, *Delivery) error { calls.Add(1); return nil }}}
		target.room.Store(5)
		d, _ := NewDispatcher(DispatcherConfig{
			Table: table(t, Rule{Name: "r", Targets: []string{"t"}}), Sinks: map[string]Sink{"t": target}, Logger: quiet,
			Backlogs: map[string]Backlog{"t": b}, Ledger: NewLedgerGuard(l, quiet),
		})
		b.add(EncodeEntry(&Delivery{ID: "d1", Target: "t", Payload: []byte(`{}`), Message: &Message{Source: "s", ID: "m"}}), true)
		stop := run(t, d, time.Second)
		defer stop()
		synctest.Wait()
		if s, _ := b.handles[0].state(); s != "ack" || calls.Load() != 0 {
			t.Errorf("entry %q after %d calls; want ack after none", s, calls.Load())
		}
	})
}

// FuzzDecodeEntry: whatever a backlog hands back, DecodeEntry answers
// without panicking, and an entry it reads encodes back to one that reads
// the same.
func FuzzDecodeEntry(f *testing.F) {
	first := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, d := range []*Delivery{
		{ID: "d1", Rule: "r", Target: "t", Payload: []byte(`{"a":1}`), Whole: true, Attempt: 2, Failures: 1, FirstAttempt: first,
			Message: &Message{Source: "s", ID: "m", Body: []byte(`{"a":1}`), Event: &Event{ID: "e"}, Attributes: map[string]string{"k": "v"}}},
		{ID: "d2", Target: "t", Payload: []byte{0xff, 1}, Text: true, DeadLetter: &DeadLetter{Source: "s", Attempts: 3},
			Message: &Message{Source: "s", ID: "m", Body: []byte("plain"), TypedAttributes: map[string]Attribute{"b": {DataType: "Binary", BinaryValue: []byte{1}}}}},
	} {
		f.Add(EncodeEntry(d))
	}
	f.Add([]byte(`{"v":1,"id":"x","target":"t","payload":{"text":"hi"},"message":{"body":{"base64":"AAE="}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeEntry(b)
		if err != nil {
			return
		}
		again, err := DecodeEntry(EncodeEntry(d))
		if err != nil {
			t.Fatalf("a decoded entry does not decode after encoding: %v", err)
		}
		if again.ID != d.ID || again.Target != d.Target || string(again.Payload) != string(d.Payload) || string(again.Message.Body) != string(d.Message.Body) ||
			again.Attempt != d.Attempt || again.Failures != d.Failures || again.Generation != d.Generation || !again.FirstAttempt.Equal(d.FirstAttempt) {
			t.Fatalf("round trip changed the entry:\n%+v\n%+v", d, again)
		}
	})
}

// FuzzEntryKeepsBytes: a delivery's payload and body come out of a backlog
// byte for byte as they went in, whatever they are.
func FuzzEntryKeepsBytes(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "{\"a\": \"<b>&\"}\n", "plain", "\xff\x00", `"s"`, " [1]", "\u2028", ""} {
		f.Add([]byte(s), []byte(s+" body"))
	}
	f.Fuzz(func(t *testing.T, payload, body []byte) {
		d, err := DecodeEntry(EncodeEntry(&Delivery{ID: "d", Target: "t", Payload: payload, Message: &Message{Source: "s", ID: "m", Body: body}}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Payload, payload) || !bytes.Equal(d.Message.Body, body) {
			t.Fatalf("payload %q body %q came back as %q and %q", payload, body, d.Payload, d.Message.Body)
		}
	})
}

package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"))
}

func config() Config {
	var c Config
	c.SetDefaults()
	return c
}

func open(t *testing.T, js jetstream.JetStream, c Config) *Ledger {
	t.Helper()
	l, err := Open(t.Context(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLedger_RecordsSurviveAServerRestart(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	l := open(t, js, config())
	first := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	want := router.Record{State: router.Pending, Attempts: 3, Failures: 2, FirstAttempt: first, LastError: "503", Generation: 1}
	if err := l.Put(t.Context(), "d1", want); err != nil {
		t.Fatal(err)
	}
	if _, found, err := l.Get(t.Context(), "other"); found || err != nil {
		t.Errorf("Get(absent) = found %v, %v; want not found, no error", found, err)
	}
	srv.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !js.Conn().IsConnected() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	got, found, err := l.Get(ctx, "d1")
	if err != nil || !found || got != want {
		t.Errorf("after a restart: %+v, found %v, %v; want %+v", got, found, err, want)
	}
}

// Writes merge: a resolved record is never reverted by a later pending
// one, and concurrent writers of one record lose nothing.
func TestLedger_PutMergesByCompareAndSet(t *testing.T) {
	srv := natstest.Run(t)
	l := open(t, srv.JetStream(), config())
	ctx := t.Context()
	if err := l.Put(ctx, "d", router.Record{State: router.Delivered, Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "d", router.Record{State: router.Pending, Attempts: 1, LastError: "late"}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := l.Get(ctx, "d"); got.State != router.Delivered || got.Attempts != 2 || got.LastError != "late" {
		t.Errorf("after a late pending write: %+v, want delivered with 2 attempts", got)
	}

	// Twenty writers, each with its own generation, at once.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			if err := l.Put(ctx, "race", router.Record{Attempts: i + 1, Generation: i}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	if got, _, _ := l.Get(ctx, "race"); got.Attempts != 20 || got.Generation != 19 {
		t.Errorf("after 20 concurrent writes: %+v, want attempts 20, generation 19 (the most of each)", got)
	}
}

// A value that is not a record is an error wrapping router.ErrCorruptRecord
// on Get, and is replaced by the next Put.
func TestLedger_CorruptValue(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	l := open(t, js, config())
	kv, err := js.KeyValue(t.Context(), DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("garbage"), {version, '{', 'x'}, append([]byte{version}, `{"s":"flying"}`...), {9, '{', '}'}} {
		kv.Put(t.Context(), "bad", bad)
		if _, found, err := l.Get(t.Context(), "bad"); found || !errors.Is(err, router.ErrCorruptRecord) {
			t.Errorf("Get(%q) = found %v, %v; want ErrCorruptRecord", bad, found, err)
		}
	}
	if err := l.Put(t.Context(), "bad", router.Record{State: router.Delivered}); err != nil {
		t.Fatalf("Put over a corrupt value: %v", err)
	}
	if got, found, err := l.Get(t.Context(), "bad"); !found || err != nil || got.State != router.Delivered {
		t.Errorf("after Put: %+v, %v, %v", got, found, err)
	}
}

// A field a newer switchyard adds does not stop this one reading a record.
func TestLedger_UnknownFieldsAreRead(t *testing.T) {
	r, err := decode(append([]byte{version}, `{"s":"delivered","a":2,"z":"new"}`...))
	if err != nil || r.State != router.Delivered || r.Attempts != 2 {
		t.Errorf("decode = %+v, %v", r, err)
	}
}

// A bucket made with other settings is a startup error naming each
// setting and both values; it is not changed.
func TestOpen_BucketWithOtherSettings(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: DefaultBucket, TTL: time.Hour, History: 5, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), js, config())
	if err == nil {
		t.Fatal("opened a bucket with other settings")
	}
	for _, want := range []string{"has ttl 1h0m0s, the config asks for 336h0m0s", "has history 5, the config asks for 1", "has storage Memory, the config asks for File"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	kv, _ := js.KeyValue(t.Context(), DefaultBucket)
	if st, _ := kv.Status(t.Context()); st.TTL() != time.Hour {
		t.Error("the bucket was changed")
	}
}

// A second instance opens the bucket the first made.
func TestOpen_Shared(t *testing.T) {
	srv := natstest.Run(t)
	open(t, srv.JetStream(), config())
	nc2 := srv.Connect()
	js2, _ := jetstream.New(nc2)
	l2 := open(t, js2, config())
	if err := l2.Put(t.Context(), "d", router.Record{State: router.Delivered}); err != nil {
		t.Fatal(err)
	}
}

// While the connection is down, calls fail at once instead of waiting out
// their bound.
func TestLedger_DisconnectedFailsFast(t *testing.T) {
	srv := natstest.Run(t)
	l := open(t, srv.JetStream(), config())
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for l.nc.IsConnected() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if _, _, err := l.Get(ctx, "d"); err == nil {
		t.Error("Get succeeded with the server down")
	}
	if err := l.Put(ctx, "d", router.Record{}); err == nil {
		t.Error("Put succeeded with the server down")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("calls took %v with the connection down", took)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"defaults", config(), ""},
		{"ttl too short", Config{TTL: time.Second, Replicas: 1}, "ttl: 1s is too short"},
		{"replicas", Config{TTL: time.Hour, Replicas: 7}, "replicas: must be 1 to 5, got 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode: whatever a bucket holds, decode answers without panicking,
// and a record it reads encodes back to the same record.
func FuzzDecode(f *testing.F) {
	f.Add(encode(router.Record{State: router.Delivered, Attempts: 2, Failures: 1, FirstAttempt: time.UnixMilli(1_700_000_000_000), LastError: "503", Generation: 1}))
	f.Add(encode(router.Record{}))
	f.Add([]byte{version, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(encode(r))
		if err != nil || again != r {
			t.Fatalf("round trip: %+v became %+v (%v)", r, again, err)
		}
	})
}

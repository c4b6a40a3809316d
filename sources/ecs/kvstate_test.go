package ecs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
)

func openKV(t *testing.T, srv *natstest.Server, bucket string) *KVState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := OpenKVState(ctx, srv.JetStream(), bucket, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Keys with the characters of task ARNs and container names round-trip.
func TestKVState_SaveLoadDelete(t *testing.T) {
	srv := natstest.Run(t)
	st := openKV(t, srv, BucketFor("tasks"))
	ctx := t.Context()
	arn := "arn:aws:ecs:us-east-1:123456789012:task/jobs/5e9d0c1a2b3c4d5e6f708192a3b4c5d6"
	entries := map[string]Seen{
		arn:                      {Status: "RUNNING", Version: 2},
		arn + "/app server (v2)": {Status: "RUNNING", Health: "HEALTHY", Version: 1},
	}
	for k, v := range entries {
		if err := st.Save(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Save(ctx, arn, Seen{Status: "STOPPED", Version: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := openKV(t, srv, BucketFor("tasks")).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[arn] != (Seen{Status: "STOPPED", Version: 3}) || got[arn+"/app server (v2)"].Health != "HEALTHY" {
		t.Fatalf("loaded %v", got)
	}
	if err := st.Delete(ctx, arn); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "never saved"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	got, _ = st.Load(ctx)
	if len(got) != 1 {
		t.Fatalf("after delete: %v", got)
	}
	if b := BucketFor("my.tasks"); b != "switchyard_ecs_my_0tasks" {
		t.Errorf("BucketFor: %s", b)
	}
}

// With its state in NATS KV, a source that restarts (a new process: a new
// KVState on the same server) does not emit again what it emitted before,
// even when NATS itself restarted in between.
func TestKVState_RestartDoesNotReemit(t *testing.T) {
	nsrv := natstest.Run(t)
	f := newFixture(t)
	arns := f.run(t, "transcode", "", 2)
	s1 := f.source(t, sourceOpts{state: openKV(t, nsrv, BucketFor("tasks"))})
	ack(t, receive(t, s1, 2)...)
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	nsrv.Restart()

	s2 := f.source(t, sourceOpts{state: openKV(t, nsrv, BucketFor("tasks"))})
	f.nothing(t, s2)
	if err := f.srv.ECS().SetTaskStatus(arns[1], awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	m := f.next(t, s2, 1)[0]
	if m.System["TaskArn"] != arns[1] || m.System["LastStatus"] != "RUNNING" {
		t.Fatalf("got %v", m.System)
	}
}

// Deleting keys does not leave the bucket growing: delete markers are
// cleared as they pile up.
func TestKVState_DeletesDoNotAccumulate(t *testing.T) {
	srv := natstest.Run(t)
	st := openKV(t, srv, BucketFor("tasks"))
	ctx := t.Context()
	for i := range 2000 {
		key := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/jobs/%032d", i)
		if err := st.Save(ctx, key, Seen{Status: "STOPPED"}); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	js := srv.JetStream()
	stream, err := js.Stream(ctx, "KV_"+BucketFor("tasks"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs > purgeEvery {
		t.Fatalf("after 2000 saves and deletes the bucket holds %d messages", info.State.Msgs)
	}
}

// On a NATS cluster the bucket is kept on as many nodes as asked, so the
// emitted states outlive a node; instances opening it at once all get it.
func TestKVState_ReplicatedAndOpenedAtOnce(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := OpenKVState(ctx, cluster.JetStream(), BucketFor("tasks"), time.Hour, 3)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	kv, err := cluster.JetStream().KeyValue(ctx, BucketFor("tasks"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; got != 3 {
		t.Fatalf("the state bucket has %d replicas, want 3", got)
	}
}

package kvbucket

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Instances starting together on a three-node cluster all open the
// buckets they race to create, with three replicas, within seconds (a
// just-made bucket drops requests until its stream has a leader).
func TestOpen_InstancesRacingOnACluster(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	const instances, buckets = 6, 4
	jss := make([]jetstream.JetStream, instances)
	for i := range jss {
		jss[i] = cluster.JetStream()
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for b := range buckets {
		want := jetstream.KeyValueConfig{Bucket: fmt.Sprintf("race_%d", b), TTL: 3 * time.Second, History: 1, Storage: jetstream.FileStorage, Replicas: 3}
		errs := make(chan error, instances)
		start := time.Now()
		for _, js := range jss {
			go func() {
				kv, err := Open(ctx, js, want)
				if err == nil {
					_, err = kv.Put(ctx, "k", []byte("v"))
				}
				errs <- err
			}()
		}
		for range instances {
			if err := <-errs; err != nil {
				t.Errorf("bucket %s: %v", want.Bucket, err)
			}
		}
		took := time.Since(start)
		t.Logf("bucket %s: %d instances opened it in %v", want.Bucket, instances, took.Round(time.Millisecond))
		// A request the new bucket dropped is asked again after a try's
		// 2s, not waited on until ctx ends.
		if took > 10*time.Second {
			t.Errorf("bucket %s: opened in %v, want within 10s", want.Bucket, took)
		}
		st, err := jss[0].KeyValue(ctx, want.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := st.Status(ctx)
		if r := s.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s: %d replicas, want 3", want.Bucket, r)
		}
	}
}

// A bucket that cannot be opened before ctx ends is an error, not a wait
// for ever: here JetStream is not enabled.
func TestOpen_GivesUpWithCtx(t *testing.T) {
	srv := natstest.Run(t)
	js := srv.JetStream()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := Open(ctx, js, jetstream.KeyValueConfig{Bucket: "ok"}); err != nil {
		t.Fatalf("an embedded server's bucket: %v", err)
	}
	if _, err := Open(ctx, js, jetstream.KeyValueConfig{Bucket: "bad name"}); err == nil {
		t.Fatal("a bucket named with a space opened")
	}
}

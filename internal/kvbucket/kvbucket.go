// Package kvbucket opens the JetStream key-value buckets that hold
// switchyard's state (the ledger, the fleet's leases, roster and rate
// tokens, an ecs source's emitted states), creating them when missing.
package kvbucket

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// attempt bounds one try at opening a bucket. A just-made bucket on a
// cluster may not answer until its stream has elected a leader: a request
// it drops meanwhile would otherwise wait out the whole startup.
const attempt = 2 * time.Second

// Open opens the bucket want.Bucket, creating it with want when it is
// missing; an existing bucket is returned as it is, for the caller to
// check. Instances that start together on a NATS cluster race to create
// it, and a cluster placing a new bucket's replicas may answer late or not
// at all: a try that times out, or finds no one to answer, is made again
// until ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		kv, err := open(actx, js, want)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return kv, err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

func open(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, want)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			kv, err = js.KeyValue(ctx, want.Bucket) // another instance made it meanwhile
		}
	}
	if err != nil {
		return nil, err
	}
	// It answers: its stream has a leader.
	if _, err := kv.Status(ctx); err != nil {
		return nil, err
	}
	return kv, nil
}

// transient reports an error that a later try may not meet.
func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

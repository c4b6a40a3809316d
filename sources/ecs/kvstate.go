package ecs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/kvbucket"
	"github.com/switchyard-dev/switchyard/internal/names"
)

// KVState is a State in a NATS JetStream key-value bucket: it survives a
// restart of switchyard (and, on a NATS cluster, moves with the source to
// another instance).
type KVState struct {
	kv      jetstream.KeyValue
	deletes atomic.Int64
}

// purgeEvery is how many deletes leave their markers before they are
// cleared: a marker is a message the bucket would otherwise keep for good.
const purgeEvery = 256

var _ State = (*KVState)(nil)

// BucketFor is the bucket of the source named name.
func BucketFor(name string) string { return "switchyard_ecs_" + names.Token(name) }

// OpenKVState opens the bucket, creating it (file-backed, with replicas
// copies on a NATS cluster) if it is missing. Entries older than ttl are
// dropped; 0 keeps them until deleted.
func OpenKVState(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (*KVState, error) {
	kv, err := kvbucket.Open(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "switchyard ECS source: the task and container states it has emitted",
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		History:     1,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("state bucket %s: %w", bucket, err)
	}
	return &KVState{kv: kv}, nil
}

// NATS KV keys allow letters, digits and -/_=.; task ARNs have ":" and
// container names may have other characters: keys are stored in base64url.
func encodeKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeKey(k string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(k)
	return string(b), err
}

// Load returns every entry.
func (s *KVState) Load(ctx context.Context) (map[string]Seen, error) {
	out := map[string]Seen{}
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("state: list keys: %w", err)
	}
	defer keys.Stop()
	for k := range keys.Keys() {
		key, err := decodeKey(k)
		if err != nil {
			continue // not ours
		}
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("state: get %s: %w", key, err)
		}
		var seen Seen
		if err := json.Unmarshal(e.Value(), &seen); err != nil {
			return nil, fmt.Errorf("state: %s: %w", key, err)
		}
		out[key] = seen
	}
	return out, nil
}

// Save records seen for key.
func (s *KVState) Save(ctx context.Context, key string, seen Seen) error {
	b, _ := json.Marshal(seen)
	if _, err := s.kv.Put(ctx, encodeKey(key), b); err != nil {
		return fmt.Errorf("state: save %s: %w", key, err)
	}
	return nil
}

// Delete removes key.
func (s *KVState) Delete(ctx context.Context, key string) error {
	if err := s.kv.Purge(ctx, encodeKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("state: delete %s: %w", key, err)
	}
	if s.deletes.Add(1)%purgeEvery == 0 {
		// Nothing watches the bucket: its markers can go at once.
		if err := s.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1)); err != nil {
			return fmt.Errorf("state: clearing delete markers: %w", err)
		}
	}
	return nil
}

package ecs

import (
	"context"
	"maps"
	"sync"
)

// Seen is what the source emitted, and had acked, for one task or container.
type Seen struct {
	// Status is the task's lastStatus, or the container's KnownStatus.
	Status string `json:"status"`
	// Health is the container's health status; empty for tasks and for
	// containers without a health check.
	Health string `json:"health,omitempty"`
	// Version is the task's version (detail.version of the event), or the
	// container's restart count.
	Version int64 `json:"version"`
}

// State keeps what the source has emitted and had acked, so that a
// restarted source does not emit it again. Keys are task ARNs in cluster
// mode, and "<task ARN>/<container name>" with task: self.
//
// Implementations must be safe for concurrent use. Errors are returned as
// they are; the source retries what failed (see Source).
type State interface {
	// Load returns every entry. The source calls it once, before its first
	// poll; the map is the caller's.
	Load(ctx context.Context) (map[string]Seen, error)
	// Save records seen for key, replacing what was there.
	Save(ctx context.Context, key string, seen Seen) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// MemoryState is a State held in memory: it survives a source, not a
// process. Its zero value is ready to use, and it is safe for concurrent
// use.
type MemoryState struct {
	mu sync.Mutex
	m  map[string]Seen
}

var _ State = (*MemoryState)(nil)

// Load returns a copy of the entries.
func (m *MemoryState) Load(context.Context) (map[string]Seen, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Seen, len(m.m))
	maps.Copy(out, m.m)
	return out, nil
}

// Save records seen for key.
func (m *MemoryState) Save(_ context.Context, key string, seen Seen) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]Seen{}
	}
	m.m[key] = seen
	return nil
}

// Delete removes key.
func (m *MemoryState) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

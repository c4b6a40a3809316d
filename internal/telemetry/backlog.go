package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Backlog is a target's backlog as telemetry sees it: what it is, the
// dispatcher's counters of its drain, and its depth, asked of the store at
// most every depthEvery (a scrape and a `status --watch` share one call).
type Backlog struct {
	// Kind names it: "jetstream stream X", "sqs queue URL".
	Kind  string
	Stats *router.BacklogStats

	depth router.BacklogDepth
	mu    sync.Mutex
	at    time.Time // of the last answer
	n     int64
	since time.Time
	err   error
}

// depthEvery is how long a backlog's depth is reused; depthTimeout bounds
// asking for it.
const (
	depthEvery   = 2 * time.Second
	depthTimeout = 2 * time.Second
)

// NewBacklog describes a backlog; depth may be nil when it cannot say.
func NewBacklog(kind string, stats *router.BacklogStats, depth router.BacklogDepth) *Backlog {
	return &Backlog{Kind: kind, Stats: stats, depth: depth}
}

// Depth returns how many deliveries the backlog holds and how long the
// oldest has waited (0 when empty). A failure to ask keeps the last answer
// and returns the error.
func (b *Backlog) Depth() (n int64, age time.Duration, err error) {
	if b == nil || b.depth == nil {
		return 0, 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.at) >= depthEvery {
		ctx, cancel := context.WithTimeout(context.Background(), depthTimeout)
		n, oldest, err := b.depth.Depth(ctx)
		cancel()
		b.err = err
		if err == nil {
			b.n, b.since, b.at = n, oldest, now
		}
	}
	if !b.since.IsZero() && b.n > 0 {
		age = max(0, now.Sub(b.since))
	}
	return b.n, age, b.err
}

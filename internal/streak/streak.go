// Package streak handles a run of failures of a polling loop: the first
// failure is logged, later ones only counted, each is followed by a
// backoff, and the recovery is logged with how long it took.
package streak

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Streak is one loop's (or several loops') run of failures. It is safe for
// concurrent use.
type Streak struct {
	log  *slog.Logger
	what string
	args []any
	now  func() time.Time

	mu    sync.Mutex
	n     int
	first time.Time
}

// New returns a streak logged as "<what> failed" and "<what> recovered",
// with args added to each record.
func New(log *slog.Logger, what string, args ...any) *Streak {
	return &Streak{log: log, what: what, args: args, now: time.Now}
}

// Failed records err, logging it if it starts a streak, and waits the
// backoff: 200ms doubling to 20s, with jitter, cut short by ctx or stop.
func (s *Streak) Failed(ctx context.Context, stop <-chan struct{}, err error) {
	s.mu.Lock()
	s.n++
	n := s.n
	if n == 1 {
		s.first = s.now()
	}
	s.mu.Unlock()
	if n == 1 {
		s.log.Error(s.what+" failed; retrying with backoff (logged once until it recovers)", append(s.args, "error", err)...)
	}
	backoff := min(20*time.Second, 200*time.Millisecond<<min(n-1, 10))
	backoff = backoff/2 + rand.N(backoff/2+1)
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-stop:
	}
}

// Recovered ends the streak, if there is one, and logs it.
func (s *Streak) Recovered() {
	s.mu.Lock()
	n, since := s.n, s.first
	s.n = 0
	s.mu.Unlock()
	if n > 0 {
		s.log.Info(s.what+" recovered", append(s.args, "failures", n, "after", s.now().Sub(since).Round(time.Millisecond))...)
	}
}

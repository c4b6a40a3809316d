package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
)

// startupBackoff is how long startup waits before it tries a source again
// after a transient failure: initial, doubling to max, with jitter. Tests
// shorten it.
var startupBackoff = struct{ initial, max time.Duration }{time.Second, 30 * time.Second}

// openSource builds and opens source s. A transient failure (a throttle, a
// 5xx, no answer or DNS: awserr.Transient; or the open's own timeout) is
// tried again with backoff until ctx ends, and /readyz and /healthz say
// why meanwhile: an outage of a dependency at startup delays the daemon
// instead of stopping it. Anything else (no such queue, access denied) is
// returned at once, with the source if one was made, to be closed.
func (eng *engine) openSource(ctx context.Context, s config.Source) (router.Source, error) {
	defer eng.startupState.Store(nil)
	for attempt := 1; ; attempt++ {
		src, err := sourceKinds[s.Type](ctx, s, eng.c, eng.log)
		if err == nil || ctx.Err() != nil || !transientAtStartup(err) {
			return src, err
		}
		if src != nil {
			closeAll([]any{src}, eng.log)
		}
		wait := startupWait(attempt)
		why := fmt.Sprintf("source %s: attempt %d failed, next in %s: %v", s.Name, attempt, wait.Round(time.Millisecond), err)
		eng.startupState.Store(&why)
		eng.log.Warn("startup: a source could not be opened; trying again", "source", s.Name, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("source %s: %w (after %d attempts, the last: %v)", s.Name, ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}

// transientAtStartup reports whether a failure to open a source may pass
// by itself. The open's own deadline counts as a timeout; the caller's
// context ending is checked before.
func transientAtStartup(err error) bool {
	return awserr.Transient(err) || errors.Is(err, context.DeadlineExceeded)
}

// startupWait is the wait before attempt+1: startupBackoff.initial
// doubling to its max, each between half and all of it.
func startupWait(attempt int) time.Duration {
	d := min(startupBackoff.max, startupBackoff.initial<<min(attempt-1, 20))
	return d/2 + rand.N(d/2+1)
}

// notStarted says why the daemon has not started, or nothing once it has
// (its sources opened and the dispatcher about to receive): what /healthz
// answers. Once started it stays started, whatever its dependencies do.
func (eng *engine) notStarted() []string {
	if eng.started.Load() {
		return nil
	}
	if why := eng.notReady(); len(why) > 0 {
		return why
	}
	return []string{"starting"}
}

// startingWhy is why readiness says starting: what startup is waiting
// for, when it is waiting.
func (eng *engine) startingWhy() string {
	if p := eng.startupState.Load(); p != nil {
		return "starting: " + *p
	}
	return "starting"
}

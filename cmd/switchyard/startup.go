package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
)

// startupBackoff is how long startup waits before it tries a source again
// after a transient failure: initial, doubling to max, with jitter. Tests
// shorten it.
var startupBackoff = struct{ initial, max time.Duration }{time.Second, 30 * time.Second}

// openSource builds and opens source s, trying again while it fails
// transiently (see retryStartup). A source that failed to open is closed.
func (eng *engine) openSource(ctx context.Context, s config.Source) (router.Source, error) {
	var src router.Source
	err := eng.retryStartup(ctx, "source "+s.Name, transientAtStartup, func() error {
		var err error
		src, err = sourceKinds[s.Type](ctx, s, eng.c, eng.log)
		if err != nil && src != nil {
			closeAll([]any{src}, eng.log)
			src = nil
		}
		return err
	})
	return src, err
}

// retryStartup calls try until it succeeds, fails in a way transient does
// not forgive, or ctx ends. Between attempts it waits startupBackoff, and
// /readyz and /healthz say what it waits for: an outage of a dependency
// at startup (a throttle, a 5xx, no answer, DNS) delays the daemon instead
// of stopping it, while what will not pass by itself (no such queue,
// access denied) is returned at once.
func (eng *engine) retryStartup(ctx context.Context, what string, transient func(error) bool, try func() error) error {
	defer eng.startupState.Store(nil)
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		wait := startupWait(attempt)
		why := fmt.Sprintf("%s: attempt %d failed, next in %s: %v", what, attempt, wait.Round(time.Millisecond), err)
		eng.startupState.Store(&why)
		eng.log.Warn("startup: trying again after a failure that may pass", "of", what, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (after %d attempts, the last: %v)", what, ctx.Err(), attempt, err)
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

// unreachableForNow reports whether every failure to connect to a
// configured endpoint (checkEndpoints) may pass by itself: a DNS failure or
// a timeout. A refused connection says the address is wrong.
func unreachableForNow(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !unreachableForNow(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	var dns *net.DNSError
	var ne net.Error
	return errors.As(err, &dns) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
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

package policy

import (
	"context"
	"sync"
)

// limiter bounds a target's calls in flight. Its limit adapts to throttles
// as TCP's window does: a throttle cuts it to 70% (at most once per
// "window" of calls, so a burst of throttles counts once), and each
// success adds 1/limit, so it grows by about one per limit successes, back
// up to the configured concurrency.
type limiter struct {
	mu        sync.Mutex
	max       int
	limit     float64
	inUse     int
	sinceCut  int // calls completed since the last cut
	waiters   []chan struct{}
	limitSeen func(int) // reports the effective limit
}

func newLimiter(max int, seen func(int)) *limiter {
	l := &limiter{max: max, limit: float64(max), limitSeen: seen}
	seen(max)
	return l
}

// setMax changes the configured limit; the effective one follows it (down
// at once, up as calls succeed, as after a throttle).
func (l *limiter) setMax(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	atMax := l.limit >= float64(l.max) // not lowered by throttles
	l.max = max(1, n)
	if atMax || l.limit > float64(l.max) {
		l.limit = float64(l.max)
	}
	l.limitSeen(int(l.limit))
	l.wakeLocked()
}

// current is the effective limit.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// tryAcquire takes a slot if one is free now, without waiting.
func (l *limiter) tryAcquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiters) == 0 && l.inUse < int(l.limit) {
		l.inUse++
		return true
	}
	return false
}

// acquire waits for a slot.
func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if len(l.waiters) == 0 && l.inUse < int(l.limit) {
		l.inUse++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Granted meanwhile: hand the slot on.
		l.inUse--
		l.wakeLocked()
		return ctx.Err()
	}
}

// release returns a slot; throttled says whether the call was throttled.
func (l *limiter) release(throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.sinceCut++
	switch {
	case throttled && float64(l.sinceCut) >= l.limit/2:
		l.limit = max(1, l.limit*0.7)
		l.sinceCut = 0
		l.limitSeen(int(l.limit))
	case !throttled && l.limit < float64(l.max):
		before := int(l.limit)
		l.limit = min(float64(l.max), l.limit+1/l.limit)
		if int(l.limit) != before {
			l.limitSeen(int(l.limit))
		}
	}
	l.wakeLocked()
}

// giveBack returns a slot that was not used for a call.
func (l *limiter) giveBack() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.wakeLocked()
}

// wakeLocked grants waiting callers the slots now free, in order.
func (l *limiter) wakeLocked() {
	for len(l.waiters) > 0 && l.inUse < int(l.limit) {
		l.inUse++
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
	}
}

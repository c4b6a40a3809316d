package eventbridge

import (
	"context"
	"runtime"
	"time"
)

// run gathers the entries Deliver hands it into calls: a call goes when it
// is full (MaxEntries, or the next entry would take it over MaxSize), or
// as soon as nothing else is waiting and no call is out; while one is,
// entries gather into fuller calls (as TCP's Nagle algorithm gathers
// bytes). Close sends what is waiting.
func (s *Sink) run() {
	defer close(s.closed)
	var batch []*pending
	size := 0
	flush := func() {
		// An entry whose attempt has ended is not sent: its delivery was
		// told so, and sending it now could put the event twice.
		live := batch[:0]
		for _, p := range batch {
			if err := p.ctx.Err(); err != nil {
				p.done <- err
				continue
			}
			live = append(live, p)
		}
		out := live
		batch, size = nil, 0
		if len(out) == 0 {
			return
		}
		s.out.Add(1)
		s.flights.Go(func() {
			ctx, cancel := batchContext(out)
			for i, err := range s.put(ctx, out) {
				out[i].done <- err
			}
			cancel()
			s.out.Add(-1)
			select {
			case s.landed <- struct{}{}:
			default:
			}
		})
	}
	add := func(p *pending) {
		if size+p.size > MaxSize {
			flush()
		}
		batch = append(batch, p)
		size += p.size
		if len(batch) == MaxEntries {
			flush()
		}
	}
	yielded := false
	for {
		if len(batch) > 0 {
			// Take what is waiting now, then go. Deliveries of one receive
			// arrive each from its own goroutine, a moment apart: yielding
			// once before the call goes lets those already running reach
			// it, instead of a call per entry.
			select {
			case p := <-s.in:
				add(p)
				continue
			default:
			}
			if !yielded {
				yielded = true
				runtime.Gosched()
				continue
			}
			yielded = false
			if s.out.Load() == 0 {
				flush()
			}
		}
		select {
		case p := <-s.in:
			add(p)
		case <-s.landed:
			// Back to the top: a waiting batch may go now.
		case <-s.closing:
			if len(batch) > 0 {
				flush()
			}
			s.flights.Wait()
			return
		}
	}
}

// batchContext lasts as long as the longest of the entries' attempts.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, p := range batch {
		if d, ok := p.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	base := context.WithoutCancel(batch[0].ctx)
	if deadline.IsZero() {
		return context.WithCancel(base)
	}
	return context.WithDeadline(base, deadline)
}

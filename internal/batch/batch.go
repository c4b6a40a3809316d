// Package batch gathers deliveries into calls, for the sinks whose API
// takes several at once: Lambda's batch mode, Kinesis PutRecords,
// EventBridge PutEvents. Each delivery waits for its own result.
package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds the calls.
type Config struct {
	// MaxItems is the most items in a call.
	MaxItems int
	// MaxBytes is the most bytes in a call (the items' sizes added up); 0
	// bounds none. An item larger alone goes alone.
	MaxBytes int
	// Window is how long the first item of a call waits for others. With
	// 0 a call goes at once while no call is out, and while one is, items
	// gather into fuller calls (as TCP's Nagle algorithm gathers bytes).
	Window time.Duration
	// DropEnded answers items whose context ended while they waited with
	// its error instead of sending them: their deliveries were told so,
	// and sending them now could deliver them twice.
	DropEnded bool
}

// ErrClosed is Do's answer after Close.
var ErrClosed = errors.New("closed")

// Batcher gathers items of type T into calls of send. Its methods are
// safe for concurrent use.
type Batcher[T any] struct {
	cfg  Config
	send func(ctx context.Context, items []T) []error

	in        chan *item[T]
	landed    chan struct{} // a call returned (a wake-up, buffered 1)
	closing   chan struct{}
	closed    chan struct{}
	start     sync.Once
	startMu   sync.Mutex
	started   bool
	closeOnce sync.Once
	flights   sync.WaitGroup
	out       atomic.Int32 // calls under way
	waiting   atomic.Int32 // items gathered into the next call
}

type item[T any] struct {
	ctx  context.Context
	v    T
	size int
	key  string
	done chan error
}

// New returns a batcher making calls of send, which answers one error (or
// nil) per item, in order. It starts with the first Do.
func New[T any](cfg Config, send func(ctx context.Context, items []T) []error) *Batcher[T] {
	return &Batcher[T]{cfg: cfg, send: send, in: make(chan *item[T]), landed: make(chan struct{}, 1),
		closing: make(chan struct{}), closed: make(chan struct{})}
}

// Do puts v (of size bytes) in a call and returns its result: send's error
// for it, or ctx's error when ctx ends first (the call may still go), or
// ErrClosed after Close. Items with the same non-empty key never share a
// call.
func (b *Batcher[T]) Do(ctx context.Context, v T, size int, key string) error {
	b.start.Do(func() {
		b.startMu.Lock()
		defer b.startMu.Unlock()
		select {
		case <-b.closing:
			return // closed before it started: nothing to run
		default:
		}
		b.started = true
		go b.run()
	})
	it := &item[T]{ctx: ctx, v: v, size: size, key: key, done: make(chan error, 1)}
	select {
	case b.in <- it:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closing:
		return ErrClosed
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Waiting is the number of items gathered into the next call.
func (b *Batcher[T]) Waiting() int { return int(b.waiting.Load()) }

// Close sends what is waiting and waits for the calls in flight, within
// ctx. Do after Close answers ErrClosed. It is idempotent.
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { close(b.closing) })
	b.startMu.Lock()
	started := b.started
	b.startMu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-b.closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batcher[T]) run() {
	defer close(b.closed)
	var batch []*item[T]
	var timer *time.Timer
	var timeout <-chan time.Time
	size := 0
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer, timeout = nil, nil
		}
		out := batch
		batch, size = nil, 0
		b.waiting.Store(0)
		if b.cfg.DropEnded {
			live := out[:0]
			for _, it := range out {
				if err := it.ctx.Err(); err != nil {
					it.done <- err
					continue
				}
				live = append(live, it)
			}
			out = live
		}
		if len(out) == 0 {
			return
		}
		b.out.Add(1)
		b.flights.Go(func() {
			b.call(out)
			b.out.Add(-1)
			select {
			case b.landed <- struct{}{}:
			default:
			}
		})
	}
	add := func(it *item[T]) {
		if it.key != "" {
			for _, q := range batch {
				if q.key == it.key {
					flush()
					break
				}
			}
		}
		if b.cfg.MaxBytes > 0 && size+it.size > b.cfg.MaxBytes {
			flush()
		}
		batch = append(batch, it)
		size += it.size
		b.waiting.Store(int32(len(batch)))
		if len(batch) >= b.cfg.MaxItems {
			flush()
			return
		}
		if len(batch) == 1 && b.cfg.Window > 0 {
			timer = time.NewTimer(b.cfg.Window)
			timeout = timer.C
		}
	}
	yielded := false
	for {
		if len(batch) > 0 && b.cfg.Window == 0 {
			// No window: take what is waiting now, then go. Deliveries of
			// one receive arrive each from its own goroutine, a moment
			// apart: yielding once before the call goes lets those already
			// running reach it, instead of a call per item.
			select {
			case it := <-b.in:
				add(it)
				continue
			default:
			}
			if !yielded {
				yielded = true
				runtime.Gosched()
				continue
			}
			yielded = false
			if b.out.Load() == 0 {
				flush()
			}
		}
		select {
		case it := <-b.in:
			add(it)
		case <-b.landed:
			// Back to the top: with no window, a waiting batch may go now.
		case <-timeout:
			timer, timeout = nil, nil
			flush()
		case <-b.closing:
			if len(batch) > 0 {
				flush()
			}
			b.flights.Wait()
			return
		}
	}
}

// call makes one call and answers each item. It lasts as long as the
// longest of the items' attempts, whichever of them gives up first.
func (b *Batcher[T]) call(items []*item[T]) {
	var deadline time.Time
	for _, it := range items {
		if d, ok := it.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	base := context.WithoutCancel(items[0].ctx)
	ctx, cancel := context.WithCancel(base)
	if !deadline.IsZero() {
		ctx, cancel = context.WithDeadline(base, deadline)
	}
	defer cancel()
	vs := make([]T, len(items))
	for i, it := range items {
		vs[i] = it.v
	}
	errs := b.send(ctx, vs)
	for i, it := range items {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errors.New("batch: the call answered fewer results than it was sent items")
		}
		it.done <- err
	}
}

package router

import (
	"context"
	"sync"
)

// ByteBudget bounds the bytes of the messages being worked on
// (max_in_flight_bytes), as max_in_flight bounds their number: a message
// holds its body in memory from when it is received until it is settled.
// It is safe for concurrent use.
//
// Bytes are taken two ways. A receive loop cannot know how large the
// messages it asks for will be: it waits for room (Wait), then charges what
// it got (Charge), going over by at most one receive. A source that reads
// a body before handing it over (an HTTP listener) reserves its bytes
// first (Reserve), and hands them over with the message (Message.Reserved).
type ByteBudget struct {
	max int64

	mu      sync.Mutex
	used    int64
	waiting int // calls of take waiting for freed
	// freed is closed, and replaced, when bytes are released while a take
	// waits.
	freed chan struct{}
}

// NewByteBudget returns a budget of max bytes; max <= 0 means no bound.
func NewByteBudget(max int64) *ByteBudget {
	return &ByteBudget{max: max, freed: make(chan struct{})}
}

// Max is the budget; 0 means no bound.
func (b *ByteBudget) Max() int64 {
	if b.max <= 0 {
		return 0
	}
	return b.max
}

// Used is the bytes taken and not yet released.
func (b *ByteBudget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// full reports whether the budget has no room left.
func (b *ByteBudget) full() bool {
	if b.max <= 0 {
		return false
	}
	return b.Used() >= b.max
}

// Wait blocks until some of the budget is free, or ctx ends (its error).
func (b *ByteBudget) Wait(ctx context.Context) error {
	return b.take(ctx, 0)
}

// Reserve takes n bytes, waiting while they do not fit, or until ctx ends
// (its error; nothing is taken). More than the whole budget is taken when
// nothing else is, so that one large body still goes through, alone.
func (b *ByteBudget) Reserve(ctx context.Context, n int64) error {
	return b.take(ctx, n)
}

// take waits until n bytes fit (n == 0: until some room is left), and
// takes them.
func (b *ByteBudget) take(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.max <= 0 || b.used == 0 || b.used+n <= b.max && b.used < b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.waiting++
		b.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-ctx.Done():
			err = ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Charge takes n bytes at once, over the budget if need be: they are in
// memory already.
func (b *ByteBudget) Charge(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// Release gives back n bytes taken by Reserve or Charge.
func (b *ByteBudget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.waiting > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// BytesUser is implemented by sources that read what is sent to them
// before the dispatcher asks for it (an HTTP listener): the dispatcher
// gives them its byte budget before it receives, so that they reserve a
// body's bytes before reading it.
type BytesUser interface {
	// UseBytes gives the source the dispatcher's budget. It reports
	// whether every message the source hands out comes with its bytes
	// reserved (Message.Reserved), so that receiving from it must not wait
	// for room: the bytes it would wait for are those of its own messages.
	UseBytes(b *ByteBudget) (reserves bool)
}

package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a send that records its calls and answers each item with
// answer(item) (nil: success).
type recorder struct {
	mu     sync.Mutex
	calls  [][]int
	answer func(int) error
	block  chan struct{} // when set, calls wait for it
}

func (r *recorder) send(ctx context.Context, items []int) []error {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(items))
	r.mu.Unlock()
	errs := make([]error, len(items))
	for i, v := range items {
		if r.answer != nil {
			errs[i] = r.answer(v)
		}
	}
	return errs
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, c := range r.calls {
		out = append(out, len(c))
	}
	return out
}

// doAll runs Do for items 0..n-1 at once and returns their results.
func doAll(b *Batcher[int], n int, size func(int) int, key func(int) string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = b.Do(context.Background(), i, size(i), key(i)) })
	}
	wg.Wait()
	return errs
}

func one(int) int      { return 1 }
func noKey(int) string { return "" }

// Each item gets its own answer; calls hold at most MaxItems.
func TestBatcher_AnswersEachAndBoundsItems(t *testing.T) {
	r := &recorder{answer: func(v int) error {
		if v%3 == 0 {
			return fmt.Errorf("item %d failed", v)
		}
		return nil
	}}
	b := New(Config{MaxItems: 4, Window: 50 * time.Millisecond}, r.send)
	defer b.Close(context.Background())
	errs := doAll(b, 10, one, noKey)
	for i, err := range errs {
		if (i%3 == 0) != (err != nil) || err != nil && err.Error() != fmt.Sprintf("item %d failed", i) {
			t.Errorf("item %d: %v", i, err)
		}
	}
	total := 0
	for _, n := range r.sizes() {
		if n > 4 {
			t.Errorf("a call of %d items, MaxItems 4", n)
		}
		total += n
	}
	if total != 10 || len(r.sizes()) > 4 {
		t.Errorf("calls %v for 10 items", r.sizes())
	}
}

// Items over MaxBytes together go in separate calls; one larger alone
// goes alone.
func TestBatcher_BoundsBytes(t *testing.T) {
	r := &recorder{}
	b := New(Config{MaxItems: 100, MaxBytes: 10, Window: 50 * time.Millisecond}, r.send)
	defer b.Close(context.Background())
	doAll(b, 6, func(i int) int { return []int{4, 4, 4, 4, 30, 1}[i] }, noKey)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		sum := 0
		for _, v := range c {
			sum += []int{4, 4, 4, 4, 30, 1}[v]
		}
		if sum > 10 && len(c) > 1 {
			t.Errorf("call %v holds %d bytes, MaxBytes 10", c, sum)
		}
	}
}

// Items with one key never share a call.
func TestBatcher_KeysApart(t *testing.T) {
	r := &recorder{}
	b := New(Config{MaxItems: 100, Window: 50 * time.Millisecond}, r.send)
	defer b.Close(context.Background())
	doAll(b, 8, one, func(i int) string { return fmt.Sprint(i % 2) })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		seen := map[int]bool{}
		for _, v := range c {
			if seen[v%2] {
				t.Errorf("call %v holds two items of key %d", c, v%2)
			}
			seen[v%2] = true
		}
	}
}

// With a window the first item waits for others; with none a call goes at
// once, and items arriving while it is out gather into the next.
func TestBatcher_Window(t *testing.T) {
	r := &recorder{}
	b := New(Config{MaxItems: 100, Window: 300 * time.Millisecond}, r.send)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- b.Do(context.Background(), 1, 1, "") }()
	time.Sleep(50 * time.Millisecond)
	if err := b.Do(context.Background(), 2, 1, ""); err != nil {
		t.Fatal(err)
	}
	<-errc
	if took := time.Since(start); took < 250*time.Millisecond || !slices.Equal(r.sizes(), []int{2}) {
		t.Errorf("calls %v after %v; want one of 2 after the window", r.sizes(), took)
	}
	b.Close(context.Background())

	r2 := &recorder{block: make(chan struct{})}
	b2 := New(Config{MaxItems: 100}, r2.send)
	defer b2.Close(context.Background())
	first := make(chan error, 1)
	go func() { first <- b2.Do(context.Background(), 0, 1, "") }()
	time.Sleep(50 * time.Millisecond) // the first call is out, blocked
	rest := make(chan []error, 1)
	go func() {
		errs := make([]error, 5)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() { errs[i] = b2.Do(context.Background(), i+1, 1, "") })
		}
		wg.Wait()
		rest <- errs
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b2.Waiting() != 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(r2.block)
	<-first
	<-rest
	if !slices.Equal(r2.sizes(), []int{1, 5}) {
		t.Errorf("calls %v; want 1, then the 5 that came while it was out", r2.sizes())
	}
}

// DropEnded answers an item whose context ended while it waited, and does
// not send it.
func TestBatcher_DropEnded(t *testing.T) {
	r := &recorder{}
	b := New(Config{MaxItems: 100, Window: 200 * time.Millisecond, DropEnded: true}, r.send)
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- b.Do(ctx, 1, 1, "") }()
	if err := b.Do(context.Background(), 2, 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the ended item: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) != 1 || !slices.Equal(r.calls[0], []int{2}) {
		t.Errorf("calls %v; want only item 2 sent", r.calls)
	}
}

// Close sends what waits, and Do after it answers ErrClosed.
func TestBatcher_Close(t *testing.T) {
	r := &recorder{}
	b := New(Config{MaxItems: 100, Window: time.Hour}, r.send)
	errc := make(chan error, 1)
	go func() { errc <- b.Do(context.Background(), 1, 1, "") }()
	for b.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil || !slices.Equal(r.sizes(), []int{1}) {
		t.Errorf("the waiting item: %v, calls %v", err, r.sizes())
	}
	if err := b.Do(context.Background(), 2, 1, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v", err)
	}
	if err := New(Config{MaxItems: 1}, r.send).Close(context.Background()); err != nil {
		t.Errorf("Close of a batcher never used: %v", err)
	}
}

// A send that answers fewer results than items fails the rest, rather
// than leaving them waiting.
func TestBatcher_ShortAnswer(t *testing.T) {
	b := New(Config{MaxItems: 3, Window: 50 * time.Millisecond}, func(_ context.Context, items []int) []error { return nil })
	defer b.Close(context.Background())
	for i, err := range doAll(b, 3, one, noKey) {
		if err == nil {
			t.Errorf("item %d: no error", i)
		}
	}
}

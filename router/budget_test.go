package router

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestByteBudget_ReserveWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewByteBudget(100)
		if err := b.Reserve(t.Context(), 60); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- b.Reserve(t.Context(), 60) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("Reserve(60) with 40 free = %v, want it to wait", err)
		default:
		}
		b.Release(60)
		synctest.Wait()
		if err := <-got; err != nil || b.Used() != 60 {
			t.Fatalf("after a release: %v, %d used", err, b.Used())
		}
		// A wait bounded by its context takes nothing.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := b.Reserve(ctx, 50); !errors.Is(err, context.DeadlineExceeded) || b.Used() != 60 {
			t.Errorf("Reserve past its deadline = %v, %d used", err, b.Used())
		}
	})
}

// More than the whole budget goes through alone, so that one large body
// is never refused for good; meanwhile nothing else does.
func TestByteBudget_LargerThanTheBudgetGoesAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewByteBudget(100)
		b.Charge(10)
		got := make(chan error, 1)
		go func() { got <- b.Reserve(t.Context(), 150) }()
		synctest.Wait()
		if len(got) != 0 {
			t.Fatal("150 of 100 taken while 10 were in use")
		}
		b.Release(10)
		synctest.Wait()
		if err := <-got; err != nil || b.Used() != 150 {
			t.Fatalf("alone: %v, %d used", err, b.Used())
		}
		waited := make(chan error, 1)
		go func() { waited <- b.Wait(t.Context()) }()
		synctest.Wait()
		if len(waited) != 0 {
			t.Fatal("Wait returned with the budget full")
		}
		b.Release(150)
		synctest.Wait()
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	})
}

func TestByteBudget_Unbounded(t *testing.T) {
	b := NewByteBudget(0)
	b.Charge(1 << 40)
	if err := b.Reserve(t.Context(), 1<<40); err != nil || b.full() || b.Max() != 0 {
		t.Errorf("an unbounded budget refused or filled: %v", err)
	}
}

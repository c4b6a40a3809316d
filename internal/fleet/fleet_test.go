package fleet

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// member joins the fleet on its own connection.
func member(t *testing.T, srv *natstest.Server, lease time.Duration) (*Fleet, jetstream.JetStream) {
	t.Helper()
	js := srv.JetStream()
	f, err := Open(t.Context(), js, Config{Lease: lease}, "test", quiet, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f, js
}

func await(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leading(l *Lease) bool { ok, _ := l.Leading(); return ok }

// One of three instances leads; when it leaves, another takes over at
// once; when one is cut off from the cluster, it steps down before its
// lease can expire, and another takes over within about a lease and a
// third.
func TestLease_OneLeadsAndAnotherTakesOver(t *testing.T) {
	srv := natstest.Run(t)
	const lease = 900 * time.Millisecond
	var fs []*Fleet
	var ls []*Lease
	for range 3 {
		f, _ := member(t, srv, lease)
		fs = append(fs, f)
		ls = append(ls, f.Lease("ecs:jobs"))
	}
	count := func() (n, who int) {
		for i, l := range ls {
			if leading(l) {
				n, who = n+1, i
			}
		}
		return n, who
	}
	await(t, "a leader", 2*lease, func() bool { n, _ := count(); return n == 1 })
	_, first := count()
	if h := ls[(first+1)%3].Holder(); h != fs[first].ID() {
		t.Errorf("a follower sees %q as the holder, want %q", h, fs[first].ID())
	}

	// A leader that leaves gives the lease up: another takes it within a
	// third of a lease (their next try).
	left := time.Now()
	fs[first].Close(context.Background())
	await(t, "a new leader after the first left", lease, func() bool {
		for i, l := range ls {
			if i != first && leading(l) {
				return true
			}
		}
		return false
	})
	t.Logf("after the leader left: a new one in %v", time.Since(left).Round(time.Millisecond))

	// Never two at once, checked while they run on.
	for range 50 {
		if n, _ := count(); n > 1 {
			t.Fatalf("%d leaders at once", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A leader whose server goes away steps down; another instance on a
// server that stays takes over within about a lease and a third of it.
func TestLease_CutOffLeaderStepsDown(t *testing.T) {
	srv := natstest.Run(t)
	const lease = 900 * time.Millisecond
	f1, js1 := member(t, srv, lease)
	l1 := f1.Lease("ecs:jobs")
	await(t, "the first to lead", 2*lease, func() bool { return leading(l1) })
	f2, _ := member(t, srv, lease)
	l2 := f2.Lease("ecs:jobs")
	time.Sleep(lease / 2)
	if leading(l2) {
		t.Fatal("a second leader while the first renews")
	}
	cut := time.Now()
	js1.Conn().Close() // f1 can no longer reach the cluster
	await(t, "the cut-off leader to step down", lease, func() bool { return !leading(l1) })
	stepped := time.Since(cut)
	await(t, "the other to take over", 2*lease, func() bool { return leading(l2) })
	took := time.Since(cut)
	t.Logf("leader cut off: stepped down after %v, taken over after %v (lease %v)", stepped.Round(time.Millisecond), took.Round(time.Millisecond), lease)
	if stepped >= took {
		t.Errorf("stepped down after %v, taken over after %v: two led at once", stepped, took)
	}
	if took > lease*4/3+lease/2 {
		t.Errorf("taken over after %v, want within about a lease and a third (%v)", took, lease*4/3)
	}
}

// The roster lists the live instances, with their leases; one that leaves
// is gone from it.
func TestRoster(t *testing.T) {
	srv := natstest.Run(t)
	f1, _ := member(t, srv, 900*time.Millisecond)
	f2, _ := member(t, srv, 900*time.Millisecond)
	l := f1.Lease("ecs:jobs")
	await(t, "a leader", 2*time.Second, func() bool { return leading(l) })
	await(t, "the roster to show both, and the lease", 2*time.Second, func() bool {
		ms := f2.Members(t.Context())
		return len(ms) == 2 && (len(ms[0].Leases) == 1 || len(ms[1].Leases) == 1)
	})
	f1.Close(context.Background())
	await(t, "the roster to drop the one that left", 2*time.Second, func() bool { return len(f2.Members(t.Context())) == 1 })
}

// The members show who holds a lease as the leases bucket has it, not as
// their roster entries (written every third of a lease) last said: right
// after a takeover, the new holder.
func TestRoster_ShowsTheHolderNow(t *testing.T) {
	srv := natstest.Run(t)
	f1, _ := member(t, srv, 9*time.Second)
	f2, _ := member(t, srv, 9*time.Second)
	l1 := f1.Lease("ecs:jobs")
	await(t, "a leader", 5*time.Second, func() bool { return leading(l1) })
	l2 := f2.Lease("ecs:jobs")
	f1.Close(context.Background())
	await(t, "the other to take over", 5*time.Second, func() bool { return leading(l2) })
	for _, m := range f2.Members(t.Context()) {
		if holds := slices.Contains(m.Leases, "ecs:jobs"); holds != (m.ID == f2.ID()) {
			t.Errorf("member %s holds ecs:jobs: %v; want only %s, which took it", m.ID, holds, f2.ID())
		}
	}
}

// Three instances taking tokens of a fleet-wide 50/s as fast as they can
// make 50 calls a second between them, not 150.
func TestRate_FleetWide(t *testing.T) {
	srv := natstest.Run(t)
	var rs []*Rate
	for range 3 {
		f, _ := member(t, srv, 3*time.Second)
		rs = append(rs, f.Rate("app", 50))
	}
	const run = 3 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), run)
	defer cancel()
	var taken atomic.Int64
	each := make([]atomic.Int64, len(rs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, r := range rs {
		for range 4 {
			wg.Go(func() {
				for r.Wait(ctx) == nil {
					taken.Add(1)
					each[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	got := float64(taken.Load()) / elapsed
	shares := make([]float64, len(rs))
	for i := range each {
		shares[i] = float64(each[i].Load()) / elapsed
	}
	t.Logf("three instances at a fleet-wide 50/s: %.1f/s between them (%.1f each)", got, shares)
	if got < 45 || got > 55 {
		t.Errorf("%.1f tokens/s fleet-wide, want 50 within 10%%", got)
	}
	// Every instance wants more than the rate: none is starved by the
	// others' winning the race to the bucket.
	for i, s := range shares {
		if s < 50.0/3/2 {
			t.Errorf("instance %d took %.1f/s of the fleet's 50/s while all wanted more, want at least half its third", i, s)
		}
	}
}

// Cut off from the cluster, an instance keeps to its share of the rate
// (the rate divided by the instances it last saw), not the whole of it.
func TestRate_FallsBackToItsShare(t *testing.T) {
	srv := natstest.Run(t)
	f1, js1 := member(t, srv, 900*time.Millisecond)
	member(t, srv, 900*time.Millisecond)
	await(t, "both in the roster", 2*time.Second, func() bool { return f1.size() == 2 })
	r := f1.Rate("app", 40)
	js1.Conn().Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	n := 0
	start := time.Now()
	for r.Wait(ctx) == nil {
		n++
	}
	got := float64(n) / time.Since(start).Seconds()
	t.Logf("cut off, with 2 instances last seen, at a fleet-wide 40/s: %.1f/s", got)
	if got > 24 || got < 14 {
		t.Errorf("%.1f/s cut off; want its share, 20/s", got)
	}
	if _, fallback := r.taken(); !fallback {
		t.Error("the share does not say it fell back")
	}
}

// Fleet-wide concurrency is divided among the live instances.
func TestConcurrency_Shared(t *testing.T) {
	srv := natstest.Run(t)
	f1, _ := member(t, srv, 900*time.Millisecond)
	var got atomic.Int64
	f1.Concurrency("app", 10, func(n int) { got.Store(int64(n)) })
	if got.Load() != 10 {
		t.Errorf("alone: %d, want 10", got.Load())
	}
	member(t, srv, 900*time.Millisecond)
	member(t, srv, 900*time.Millisecond)
	await(t, "a third of 10", 3*time.Second, func() bool { return got.Load() == 3 })
}

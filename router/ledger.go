package router

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// State is what has become of a delivery, as the ledger records it.
type State uint8

const (
	// Pending deliveries have not resolved: they may have been tried.
	Pending State = iota
	// Backlogged deliveries are durably in their target's backlog, which
	// delivers them: the message they came from need not.
	Backlogged
	// Delivered deliveries reached their target.
	Delivered
	// DeadLettered deliveries failed for good and their dead letter was
	// taken.
	DeadLettered
)

func (s State) String() string {
	switch s {
	case Backlogged:
		return "backlogged"
	case Delivered:
		return "delivered"
	case DeadLettered:
		return "dead_lettered"
	}
	return "pending"
}

// Resolved reports whether the delivery is over: delivered or
// dead-lettered.
func (s State) Resolved() bool { return s >= Delivered }

// Record is one delivery's entry in the ledger.
type Record struct {
	// State is what has become of the delivery.
	State State
	// Attempts counts the calls made to the target; Failures those of them
	// that count against retry.attempts (throttles do not).
	Attempts, Failures int
	// FirstAttempt is when the delivery was first tried (retry.max_age
	// runs from it).
	FirstAttempt time.Time
	// LastError is the latest failure, if any.
	LastError string
	// Generation is the delivery's launch generation (see
	// Delivery.Generation).
	Generation int
	// Digest identifies the message the delivery came from (a hash of its
	// body; 0 when unknown): a record is taken for a delivery only when
	// they agree, so that an event id a producer used again for another
	// event is not skipped.
	Digest uint64
}

// digest is the Digest of the message a delivery came from.
func digest(d *Delivery) uint64 {
	if d.Message == nil || len(d.Message.Body) == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write(d.Message.Body)
	return h.Sum64()
}

// Matches reports whether the record may be the delivery's: recorded for
// the same message (Digest, a hash of its body), or for one whose body was
// not known. A record of another message under the same delivery id (a
// producer that used an event id again) is not the delivery's.
func (r Record) Matches(d *Delivery) bool {
	return r.Digest == 0 || r.Digest == digest(d)
}

// Merge combines two records of one delivery written by different
// callers: the further state, the most attempts and failures, the
// earliest first attempt and the highest generation. A record never goes
// back: a resolved delivery stays resolved whatever is written after it.
// Delivered is final: a dead letter that switchyard redrive delivered is
// on record as delivered, over the dead_lettered written when it failed.
func (r Record) Merge(o Record) Record {
	out := Record{
		State: mergeState(r.State, o.State), Attempts: max(r.Attempts, o.Attempts), Failures: max(r.Failures, o.Failures),
		Generation: max(r.Generation, o.Generation), FirstAttempt: r.FirstAttempt, LastError: r.LastError,
	}
	if out.FirstAttempt.IsZero() || !o.FirstAttempt.IsZero() && o.FirstAttempt.Before(out.FirstAttempt) {
		out.FirstAttempt = o.FirstAttempt
	}
	if o.LastError != "" {
		out.LastError = o.LastError
	}
	out.Digest = r.Digest
	if o.Digest != 0 {
		out.Digest = o.Digest
	}
	return out
}

// mergeState is the further of two states, Delivered above all.
func mergeState(a, b State) State {
	if a == Delivered || b == Delivered {
		return Delivered
	}
	return max(a, b)
}

// Ledger keeps deliveries' records where they outlive the process (a
// JetStream key-value bucket), so that a message that comes back skips the
// deliveries that resolved, and the others carry on with their attempts,
// their retry.max_age and their launch generation. Implementations are safe
// for concurrent use; every call ends when ctx does.
type Ledger interface {
	// Get returns the record of a delivery id; found is false when there
	// is none (never written, or expired).
	Get(ctx context.Context, id string) (rec Record, found bool, err error)
	// Put writes rec merged (Record.Merge) with what is already recorded,
	// by compare-and-set: a concurrent write is merged, never lost.
	Put(ctx context.Context, id string, rec Record) error
}

// LedgerStats are the ledger's counters, safe to read at any time.
type LedgerStats struct {
	// Lookups and Writes count calls that answered; Hits the deliveries
	// skipped because the ledger said they were resolved or backlogged.
	Lookups, Writes, Hits atomic.Int64
	// Errors counts calls that failed; Skipped the calls not made because
	// the ledger had just failed (deliveries went on without it).
	Errors, Skipped atomic.Int64
	// LastError is the latest failure, or nil.
	LastError atomic.Pointer[LastError]

	byTarget sync.Map // target → *atomic.Int64: its share of Hits
}

// hit counts a delivery to target skipped because of its record.
func (s *LedgerStats) hit(target string) {
	s.Hits.Add(1)
	n, ok := s.byTarget.Load(target)
	if !ok {
		n, _ = s.byTarget.LoadOrStore(target, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
}

// HitsOf returns how many of target's deliveries were skipped because the
// ledger had them resolved or backlogged.
func (s *LedgerStats) HitsOf(target string) int64 {
	if n, ok := s.byTarget.Load(target); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// LedgerGuard bounds a Ledger's calls and keeps delivering when it fails:
// a failed call is counted and logged, and after failedCalls failures in a
// row the ledger is left alone for a pause before it is tried again, so
// that a store that is down costs deliveries nothing but their
// at-most-once protection. A nil *LedgerGuard is a ledger that is off.
type LedgerGuard struct {
	l       Ledger
	timeout time.Duration
	log     *slog.Logger
	stats   *LedgerStats

	mu        sync.Mutex
	failures  int       // in a row
	downUntil time.Time // calls are skipped until then
}

const (
	// ledgerTimeout bounds one ledger call.
	ledgerTimeout = 2 * time.Second
	// ledgerFailures in a row pause the ledger for ledgerPause.
	ledgerFailures = 3
	ledgerPause    = 5 * time.Second
)

// NewLedgerGuard guards l; nil l gives a nil guard (the ledger is off).
func NewLedgerGuard(l Ledger, log *slog.Logger) *LedgerGuard {
	if l == nil {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	return &LedgerGuard{l: l, timeout: ledgerTimeout, log: log, stats: new(LedgerStats)}
}

// Stats returns the ledger's counters (nil for a nil guard).
func (g *LedgerGuard) Stats() *LedgerStats {
	if g == nil {
		return nil
	}
	return g.stats
}

// up reports whether a call may be made now.
func (g *LedgerGuard) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Now().Before(g.downUntil) {
		g.stats.Skipped.Add(1)
		return false
	}
	return true
}

func (g *LedgerGuard) done(op string, err error, attrs ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failures = 0
		return
	}
	g.stats.Errors.Add(1)
	g.stats.LastError.Store(&LastError{At: time.Now(), Error: op + ": " + err.Error()})
	if errors.Is(err, ErrCorruptRecord) {
		g.log.Error("ledger record cannot be read: the delivery goes on as if it had none", append(attrs, "error", err)...)
		return
	}
	g.failures++
	if g.failures >= ledgerFailures {
		g.downUntil = time.Now().Add(ledgerPause)
		g.failures = 0
	}
	g.log.Warn("ledger "+op+" failed: deliveries go on without it (at-least-once)", append(attrs, "error", err)...)
}

// Get looks a delivery up; a failure counts as not found.
func (g *LedgerGuard) Get(ctx context.Context, id string) (Record, bool) {
	if g == nil || !g.up() {
		return Record{}, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	rec, found, err := g.l.Get(ctx, id)
	g.done("lookup", err, "delivery_id", id)
	if err != nil {
		return Record{}, false
	}
	g.stats.Lookups.Add(1)
	return rec, found
}

// Put writes a record, bounded; it reports whether the record was written.
// A write outlives the cancellation of ctx (a shutdown): it is what lets
// the next receiver carry on.
func (g *LedgerGuard) Put(ctx context.Context, id string, rec Record) bool {
	if g == nil || !g.up() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	err := g.l.Put(ctx, id, rec)
	g.done("write", err, "delivery_id", id, "state", rec.State.String())
	if err == nil {
		g.stats.Writes.Add(1)
	}
	return err == nil
}

// ErrCorruptRecord is wrapped by a Ledger's errors for a value that is not
// a record it reads: the delivery goes on without it, and the store is
// not taken for down.
var ErrCorruptRecord = errors.New("corrupt ledger record")

// ErrNoLedger is returned by Delivery.Record when the ledger is off or
// was not reached.
var ErrNoLedger = errors.New("ledger: not recorded")

// Record writes the delivery's state to the ledger: its attempts, first
// attempt, last error and generation, with state. Policies call it after a
// failed attempt and before a call under a new generation. It does
// nothing (ErrNoLedger) when the delivery has no ledger.
func (d *Delivery) Record(ctx context.Context, state State) error {
	if d.Ledger == nil {
		return ErrNoLedger
	}
	rec := Record{State: state, Attempts: d.Attempt, Failures: d.Failures, FirstAttempt: d.FirstAttempt, Generation: d.Generation, Digest: digest(d)}
	if d.LastErr != nil {
		rec.LastError = d.LastErr.Error()
	}
	if !d.Ledger.Put(ctx, d.ID, rec) {
		return ErrNoLedger
	}
	d.recordedGen = d.Generation
	return nil
}

// RecordGeneration writes the delivery's record if its generation changed
// since it was last recorded: a call under a new generation (a new ECS
// clientToken) must be known before it is made, or a crash right after it
// would retry under the old one and launch a second task.
func (d *Delivery) RecordGeneration(ctx context.Context) {
	if d.Ledger != nil && d.Generation != d.recordedGen {
		d.Record(ctx, Pending)
	}
}

// restore carries a recorded delivery on where it was.
func (d *Delivery) restore(rec Record) {
	d.Attempt, d.Failures, d.Generation, d.recordedGen = rec.Attempts, rec.Failures, rec.Generation, rec.Generation
	d.FirstAttempt = rec.FirstAttempt
	if rec.LastError != "" {
		d.LastErr = errors.New(rec.LastError)
	}
}

// Package redrive sends dead letters back to the targets that failed them:
// each dead letter's delivery is made again as `switchyard run` made it
// (the same id, the payload rendered by the same rule), through the
// target's policy, and the dead letter is deleted only once the delivery
// succeeded, or once a new dead letter with its attempts counted took its
// place. `switchyard redrive` wires it.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/router"
)

// Letter is one dead letter taken from its place.
type Letter struct {
	// Ref names it in its place: an SQS message id, a stream sequence.
	Ref string
	// Record is why the delivery failed, as the dead letter says; nil
	// when it could not be read, and Unreadable then says why.
	Record     *router.DeadLetter
	Unreadable error
	// Body is the original message's body; Attributes its attributes, with
	// their types where the place keeps them (SQS), else as Strings.
	Body       []byte
	Attributes map[string]router.Attribute

	mu     sync.Mutex
	handle any // the place's: a receipt handle, a JetStream message
}

// Handle returns the place's handle of the letter (the latest, when it
// was received again).
func (l *Letter) Handle() any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handle
}

// SetHandle sets the place's handle of the letter.
func (l *Letter) SetHandle(h any) {
	l.mu.Lock()
	l.handle = h
	l.mu.Unlock()
}

// Place is where dead letters are: an SQS queue, a JetStream stream. Its
// methods are safe for concurrent use; each ends when ctx does.
type Place interface {
	// String names the place for people.
	String() string
	// Receive takes up to max letters (1 to 10), each invisible to other
	// readers for hold. It waits a little (about a second) for some, and
	// returns none when none are visible. An error of class
	// router.Permanent (the place is not there) ends the run; others are
	// tried again, a few times.
	Receive(ctx context.Context, max int, hold time.Duration) ([]*Letter, error)
	// Extend keeps letters invisible for hold more.
	Extend(ctx context.Context, ls []*Letter, hold time.Duration) error
	// Delete removes a letter for good.
	Delete(ctx context.Context, l *Letter) error
	// Release makes letters visible again at once, for another run.
	Release(ctx context.Context, ls []*Letter) error
}

// Config is what a Redriver works with.
type Config struct {
	// Place is where the dead letters are.
	Place Place
	// DeadLetters writes a delivery that fails again back to Place: it
	// must be every target's dead-letter sink (see DeadLetters).
	DeadLetters *DeadLetters
	// Targets are the config's targets by name, each in its policy, as
	// `switchyard run` builds them.
	Targets map[string]router.Sink
	// Rates are the targets' own rates per second (0: none), which bound
	// their redrives when Rate is 0.
	Rates map[string]float64
	// Rebuild makes a dead letter's delivery again.
	Rebuild *Rebuilder
	// Ledger is consulted before a delivery and written after one; nil is
	// a ledger that is off.
	Ledger *router.LedgerGuard
	// To sends every dead letter to this target instead of its own.
	To string
	// Pattern selects the dead letters to redrive (see Document); nil
	// takes all.
	Pattern *router.Pattern
	// Rate bounds the redrives per second, over all targets; 0 leaves each
	// target's to its own rate, or DefaultRate.
	Rate float64
	// Max stops after this many dead letters were taken (sent, or found
	// delivered already); 0 means no limit.
	Max int
	// DryRun lists what would be done to Listing, and changes nothing.
	DryRun  bool
	Listing io.Writer
	// Hold is how long letters stay invisible in their place while they
	// are worked on; they are extended every Hold/2.
	Hold time.Duration
	// InFlight bounds the letters worked on at once. Default 32.
	InFlight int
	// Grace is how long deliveries in flight may take to finish once the
	// run is interrupted. Default 25s.
	Grace time.Duration
	// Log receives what happens to letters that are not redriven.
	Log *slog.Logger
}

// DefaultRate is the rate of redrives to a target that has none of its
// own, when no rate is given.
const DefaultRate = 10.0

// Stats are a run's counts, safe to read while it runs.
type Stats struct {
	// Received counts the letters taken from the place.
	Received atomic.Int64
	// Redriven were delivered (or would be, in a dry run), and deleted.
	Redriven atomic.Int64
	// AlreadyDelivered were delivered before, as the ledger (or this run)
	// says, and deleted.
	AlreadyDelivered atomic.Int64
	// FailedAgain were written back as new dead letters, then deleted.
	FailedAgain atomic.Int64
	// Duplicates were other dead letters of a delivery that failed again
	// in this run, deleted (its new dead letter stands for them).
	Duplicates atomic.Int64
	// SkippedByPattern did not match the pattern: left in place.
	SkippedByPattern atomic.Int64
	// Skipped could not be redriven (Reasons says why): left in place.
	Skipped atomic.Int64
	// Left were not finished (interrupted, or beyond --max): left in place.
	Left atomic.Int64
	// NotDeleted were delivered but deleting them failed: left in place,
	// where the next run finds them delivered (with the ledger on).
	NotDeleted atomic.Int64
	// Own were the new dead letters this run wrote, taken again: left
	// alone (they are not in Received's other counts).
	Own atomic.Int64
	// InFlight is the letters being worked on now.
	InFlight atomic.Int64

	mu      sync.Mutex
	reasons map[string]int
}

func (s *Stats) skip(reason string) {
	s.Skipped.Add(1)
	s.mu.Lock()
	if s.reasons == nil {
		s.reasons = map[string]int{}
	}
	s.reasons[reason]++
	s.mu.Unlock()
}

// Reasons returns why letters were skipped, with how many for each, by
// reason.
func (s *Stats) Reasons() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.reasons)
}

// Failed reports whether the run leaves work for someone: letters that
// failed again, were skipped for another reason than the pattern, or were
// delivered and not deleted.
func (s *Stats) Failed() bool {
	return s.FailedAgain.Load()+s.Skipped.Load()+s.NotDeleted.Load() > 0
}

// Redriver redrives the dead letters of one place.
type Redriver struct {
	cfg   Config
	log   *slog.Logger
	stats Stats

	limit    *rate.Limiter            // with cfg.Rate
	limiters map[string]*rate.Limiter // by target, without

	taken atomic.Int64 // toward cfg.Max

	listMu sync.Mutex // one line of the listing at a time

	mu     sync.Mutex
	held   map[string]*Letter // by ref: every letter taken and not deleted
	claims map[string]*claim  // by delivery id: what this run did with it
}

// claim is one delivery id's fate in this run.
type claim struct {
	done chan struct{} // closed once the first letter of the delivery is through
	// outcome, once done: delivered (or found delivered), or failed again
	// with wrote its new dead letter's record.
	delivered bool
	wrote     *router.DeadLetter
}

// New returns a Redriver for cfg, defaults applied. It starts nothing.
func New(cfg Config) *Redriver {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 32
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 25 * time.Second
	}
	if cfg.Hold <= 0 {
		cfg.Hold = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Listing == nil {
		cfg.Listing = io.Discard
	}
	r := &Redriver{cfg: cfg, log: cfg.Log, limiters: map[string]*rate.Limiter{}, held: map[string]*Letter{}, claims: map[string]*claim{}}
	if cfg.Rate > 0 {
		r.limit = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	for name := range cfg.Targets {
		rt := cfg.Rates[name]
		if rt <= 0 {
			rt = DefaultRate
		}
		r.limiters[name] = rate.NewLimiter(rate.Limit(rt), 1)
	}
	return r
}

// Stats returns the run's counts.
func (r *Redriver) Stats() *Stats { return &r.stats }

// receiveFailures in a row end a run.
const receiveFailures = 5

// Run takes dead letters from the place until none is visible (or Max are
// taken, or ctx ends), and redrives each. When ctx ends it takes no more,
// lets the deliveries in flight finish within Grace, and deletes nothing
// that was not delivered or written back. Letters it does not delete are
// made visible again before it returns. The error is for a run that could
// not go on (the place failed); the counts say what became of the letters.
func (r *Redriver) Run(ctx context.Context) error {
	// Deliveries outlive ctx by Grace: what is in flight finishes.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.cfg.Grace, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopGrace()

	var wg sync.WaitGroup
	extendDone := make(chan struct{})
	var ext sync.WaitGroup
	ext.Go(func() { r.extend(work, extendDone) })

	slots := make(chan struct{}, r.cfg.InFlight)
	var runErr error
	failures := 0
receive:
	for ctx.Err() == nil && (r.cfg.Max <= 0 || r.taken.Load() < int64(r.cfg.Max)) {
		// At least one slot free, and ask for no more than are.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break receive
		}
		n := 1
		for n < 10 {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		ls, err := r.cfg.Place.Receive(ctx, n, r.cfg.Hold)
		if err != nil {
			for range n {
				<-slots
			}
			if ctx.Err() != nil {
				break
			}
			failures++
			if router.ClassOf(err) == router.Permanent {
				runErr = fmt.Errorf("%s: %w", r.cfg.Place, err)
				break
			}
			r.log.Warn("receiving dead letters failed", "place", r.cfg.Place.String(), "error", err)
			if failures >= receiveFailures {
				runErr = fmt.Errorf("%s: %d receives in a row failed: %w", r.cfg.Place, failures, err)
				break
			}
			sleep(ctx, time.Duration(failures)*time.Second)
			continue
		}
		failures = 0
		var fresh []*Letter
		for _, l := range ls {
			if r.hold(l) {
				fresh = append(fresh, l)
			}
		}
		for range n - len(fresh) {
			<-slots
		}
		for _, l := range fresh {
			r.stats.Received.Add(1)
			r.stats.InFlight.Add(1)
			wg.Go(func() {
				defer func() { r.stats.InFlight.Add(-1); <-slots }()
				r.handle(ctx, work, l)
			})
		}
		if len(ls) == 0 {
			break // none visible: the rest is held by this run, or another
		}
	}
	wg.Wait()
	close(extendDone)
	ext.Wait()
	r.releaseAll()
	return runErr
}

// hold tracks a letter taken; false when it was taken before in this run
// (its invisibility lapsed): the one already held gets its new handle.
func (r *Redriver) hold(l *Letter) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if have := r.held[l.Ref]; have != nil {
		have.SetHandle(l.Handle())
		return false
	}
	r.held[l.Ref] = l
	return true
}

// forget stops tracking a letter that was deleted.
func (r *Redriver) forget(l *Letter) {
	r.mu.Lock()
	delete(r.held, l.Ref)
	r.mu.Unlock()
}

func (r *Redriver) heldLetters() []*Letter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Letter, 0, len(r.held))
	for _, ref := range slices.Sorted(maps.Keys(r.held)) {
		out = append(out, r.held[ref])
	}
	return out
}

// extend keeps every letter held invisible, every Hold/2, until done.
func (r *Redriver) extend(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.Hold / 2)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ls := r.heldLetters(); len(ls) > 0 {
			ectx, cancel := context.WithTimeout(ctx, r.cfg.Hold/2)
			if err := r.cfg.Place.Extend(ectx, ls, r.cfg.Hold); err != nil {
				r.log.Warn("keeping dead letters invisible failed: another reader may take them", "place", r.cfg.Place.String(), "error", err)
			}
			cancel()
		}
	}
}

// releaseAll makes the letters still held visible again.
func (r *Redriver) releaseAll() {
	ls := r.heldLetters()
	if len(ls) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cfg.Place.Release(ctx, ls); err != nil {
		r.log.Warn("making dead letters visible again failed: they come back when their invisibility ends",
			"place", r.cfg.Place.String(), "letters", len(ls), "hold", r.cfg.Hold.String(), "error", err)
	}
}

// handle decides what to do with one letter and does it. Letters it does
// not delete stay held, and are released at the end of the run.
func (r *Redriver) handle(ctx, work context.Context, l *Letter) {
	// What is held until the end of the run is its handle, not its body.
	defer func() { l.Body, l.Attributes = nil, nil }()
	if r.cfg.Pattern != nil {
		ok, err := r.cfg.Pattern.Match(Document(l))
		if err != nil || !ok {
			r.stats.SkippedByPattern.Add(1)
			return
		}
	}
	if l.Unreadable != nil {
		r.skip(l, "unreadable: "+l.Unreadable.Error())
		return
	}
	if r.cfg.Max > 0 && r.taken.Add(1) > int64(r.cfg.Max) {
		r.stats.Left.Add(1)
		return
	}
	rec := l.Record
	target := rec.Target
	if r.cfg.To != "" {
		target = r.cfg.To
	}
	switch {
	case target == "":
		r.skip(l, fmt.Sprintf("the dead letter names no target (a malformed message of source %s): --to names one", rec.Source))
		return
	case r.cfg.Targets[target] == nil:
		r.skip(l, fmt.Sprintf("target %q is not in the config: --to names one to send its dead letters to", target))
		return
	}
	d, err := r.cfg.Rebuild.Delivery(l, target)
	if err != nil {
		r.skip(l, err.Error())
		return
	}
	d.Ledger = r.cfg.Ledger
	c, first := r.claim(d.ID)
	if !first {
		r.again(work, l, d, c)
		return
	}
	defer close(c.done)
	if rec, found := r.cfg.Ledger.Get(work, d.ID); found && rec.Matches(d) {
		if rec.State == router.Delivered {
			c.delivered = true
			r.list("already delivered (the ledger has it): would be deleted", l, d, target)
			if !r.cfg.DryRun {
				r.delete(work, l, &r.stats.AlreadyDelivered)
			} else {
				r.stats.AlreadyDelivered.Add(1)
			}
			return
		}
		// An ECS launch goes on under its last launch generation.
		d.Generation = rec.Generation
	}
	if r.cfg.DryRun {
		r.list("would redrive", l, d, target)
		r.stats.Redriven.Add(1)
		return
	}
	if err := r.wait(ctx, target); err != nil {
		r.stats.Left.Add(1) // interrupted before it was sent
		return
	}
	r.cfg.DeadLetters.expect(d.Message, d.ID, rec)
	err = r.cfg.Targets[target].Deliver(work, d)
	wrote := r.cfg.DeadLetters.done(d.Message)
	switch {
	case err == nil && d.State == router.DeadLettered:
		c.wrote = wrote // the policy logged it
		r.delete(work, l, &r.stats.FailedAgain)
	case err == nil:
		c.delivered = true
		// On record before the dead letter goes: a run that stops between
		// the two finds it delivered.
		if rerr := d.Record(work, router.Delivered); rerr != nil && r.cfg.Ledger != nil {
			r.log.Warn("a redriven delivery could not be recorded in the ledger", "delivery_id", d.ID, "error", rerr)
		}
		r.delete(work, l, &r.stats.Redriven)
	case work.Err() != nil || ctx.Err() != nil && errors.Is(err, context.Canceled):
		r.stats.Left.Add(1) // interrupted: nothing deleted
	default:
		r.skip(l, "failed again, and its new dead letter was not written: "+err.Error())
	}
}

// again handles a letter of a delivery this run has seen already: the new
// dead letter it wrote (left alone), or another dead letter of the same
// delivery, settled once the first is through.
func (r *Redriver) again(work context.Context, l *Letter, d *router.Delivery, c *claim) {
	select {
	case <-c.done:
	case <-work.Done():
		r.stats.Left.Add(1)
		return
	}
	switch w := c.wrote; {
	case r.cfg.DryRun:
		r.list("another dead letter of the same delivery: would be deleted once that one is through", l, d, d.Target)
		r.stats.Duplicates.Add(1)
	case c.delivered:
		r.list("already delivered (in this run): would be deleted", l, d, d.Target)
		r.delete(work, l, &r.stats.AlreadyDelivered)
	case w != nil && w.Attempts == l.Record.Attempts && w.LastAttempt.Equal(l.Record.LastAttempt):
		// The dead letter this run wrote: it stays.
		r.stats.Own.Add(1)
	case w != nil:
		r.delete(work, l, &r.stats.Duplicates)
	default:
		r.skip(l, "another dead letter of the same delivery was not redriven in this run")
	}
}

// claim returns the claim of a delivery id, and whether it is new: the
// first letter of the delivery in this run.
func (r *Redriver) claim(id string) (*claim, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.claims[id]; c != nil {
		return c, false
	}
	c := &claim{done: make(chan struct{})}
	r.claims[id] = c
	return c, true
}

// wait takes a rate token: of the run's rate, or the target's.
func (r *Redriver) wait(ctx context.Context, target string) error {
	if r.limit != nil {
		return r.limit.Wait(ctx)
	}
	return r.limiters[target].Wait(ctx)
}

// delete removes a letter, counting it in n; a failed delete leaves it
// (counted NotDeleted).
func (r *Redriver) delete(ctx context.Context, l *Letter, n *atomic.Int64) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.cfg.Place.Delete(dctx, l); err != nil {
		r.stats.NotDeleted.Add(1)
		r.log.Error("deleting a dead letter failed: it stays", "message_id", l.Ref, "error", err)
		return
	}
	r.forget(l)
	n.Add(1)
}

func (r *Redriver) skip(l *Letter, reason string) {
	r.stats.skip(reason)
	r.log.Warn("dead letter skipped: it stays", "message_id", l.Ref, "reason", reason)
	if r.cfg.DryRun {
		r.listMu.Lock()
		fmt.Fprintf(r.cfg.Listing, "%s: skipped: %s\n", l.Ref, reason)
		r.listMu.Unlock()
	}
}

// list writes a line of the dry run's listing.
func (r *Redriver) list(what string, l *Letter, d *router.Delivery, target string) {
	if !r.cfg.DryRun {
		return
	}
	rec := l.Record
	r.listMu.Lock()
	defer r.listMu.Unlock()
	fmt.Fprintf(r.cfg.Listing, "%s: %s: rule %s → %s, delivery %s, attempts %d, last error: %s\n",
		l.Ref, what, orNone(rec.Rule), target, d.ID, rec.Attempts, orNone(rec.LastError))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

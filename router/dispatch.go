package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Poller is implemented by sources that want several Receive loops, each
// asking for up to BatchSize messages at a time.
type Poller interface {
	Pollers() int
	BatchSize() int
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Table holds the rules. Required.
	Table *Table
	// Sinks are the targets by name, each wrapped in its delivery policy: a
	// nil error from Deliver means the delivery resolved (delivered, or
	// dead-lettered). Every target a rule names must be here.
	Sinks map[string]Sink
	// Sources feed the dispatcher.
	Sources []Source
	// DeadLetters are the dead-letter targets of sources that dead-letter
	// malformed messages, by source name, wrapped in their policies.
	DeadLetters map[string]Sink
	// MaxInFlight bounds the messages being worked on. Default 1000.
	MaxInFlight int
	// MaxInFlightBytes bounds the bytes of their bodies (see ByteBudget).
	// Zero or less: no bound.
	MaxInFlightBytes int64
	// Logger receives the dispatcher's logs. Default slog.Default().
	Logger *slog.Logger
	// RetryLater is how long a message whose deliveries did not all
	// resolve waits before it is received again, when no target hinted
	// otherwise. Default 10s.
	RetryLater time.Duration
	// Ledger, when not nil, is where deliveries' states are recorded: a
	// message that comes back (Message.Redelivered) skips the deliveries
	// that resolved or went to a backlog, and the others carry on with
	// their attempts and age.
	Ledger *LedgerGuard
	// Backlogs are the targets' backlogs, by target name: each is drained
	// into its target while the target has room.
	Backlogs map[string]Backlog
}

// Dispatcher moves messages from the sources through the rules to the
// sinks, and settles each message once every delivery it produced has
// resolved. It is the daemon's run loop.
type Dispatcher struct {
	cfg       DispatcherConfig
	slots     chan struct{}
	bytes     *ByteBudget
	reserves  map[Source]bool // sources whose messages come with their bytes reserved
	log       *slog.Logger
	groups    sync.Map // group key → *groupTurn of the group's latest message
	stats     Stats
	sources   map[string]*SourceStats
	receiving atomic.Bool

	mu     sync.RWMutex // guards routes and rules; held for reading only to take a reference
	routes *routes
	rules  map[string]*RuleStats // by rule name, kept across reloads

	drains   sync.WaitGroup           // deliveries drained from backlogs
	backlogs map[string]*BacklogStats // by target name
}

// routes are the rules and sinks that messages are handled with; a reload
// replaces them while the messages handled with the old ones finish.
type routes struct {
	Routes
	ruleStats []*RuleStats   // by rule index in Table
	active    sync.WaitGroup // messages being handled with these routes
	// retired is closed once no message is handled with these routes, or
	// with any routes before them (prev is the retired of those): a sink
	// that one reload kept and the next removed may still be called by a
	// message of the routes before both.
	retired, prev chan struct{}
}

// Routes are what a config reload replaces: the rules, and the sinks of
// the targets and dead-letter targets they name.
type Routes struct {
	// Table holds the rules. Required.
	Table *Table
	// Sinks are the targets by name, each wrapped in its delivery policy.
	// Every target a rule names must be here.
	Sinks map[string]Sink
	// DeadLetters are the dead-letter targets of sources, by source name.
	DeadLetters map[string]Sink
}

// RuleStats are one rule's counters, safe to read at any time.
type RuleStats struct {
	// Matched counts the events the rule matched.
	Matched atomic.Int64
}

// LastError is a failure worth showing an operator: when, and what.
type LastError struct {
	At    time.Time
	Error string
}

// SourceStats are one source's counters, safe to read at any time.
type SourceStats struct {
	// Received, Acked and Nacked count messages; Unmatched those no rule
	// matched (they are acked too).
	Received, Acked, Nacked, Unmatched atomic.Int64
	// ReceiveErrors counts failed receives.
	ReceiveErrors atomic.Int64
	// Paused is how long (in nanoseconds, summed over the source's
	// pollers) receiving waited for room under max_in_flight.
	Paused atomic.Int64
	// FailingReceives counts the receives that failed since the last one
	// that did not.
	FailingReceives atomic.Int64
	// LastError is the latest failed receive, or nil.
	LastError atomic.Pointer[LastError]
}

// Stats are the dispatcher's counters, safe to read at any time.
type Stats struct {
	Received, Acked, Nacked, Unmatched atomic.Int64
	Delivered, Failed                  atomic.Int64 // deliveries
	ReceiveErrors, SettleErrors        atomic.Int64
	InFlight                           atomic.Int64 // messages
}

// NewDispatcher checks the config. It starts nothing.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Table == nil {
		return nil, errors.New("dispatcher: no rules")
	}
	if err := checkRoutes(cfg.Table, cfg.Sinks); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetryLater <= 0 {
		cfg.RetryLater = 10 * time.Second
	}
	d := &Dispatcher{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), log: cfg.Logger, sources: map[string]*SourceStats{}, rules: map[string]*RuleStats{},
		backlogs: map[string]*BacklogStats{}}
	d.bytes, d.reserves = NewByteBudget(cfg.MaxInFlightBytes), map[Source]bool{}
	for _, s := range cfg.Sources {
		d.sources[s.Name()] = &SourceStats{}
		if u, ok := s.(BytesUser); ok {
			d.reserves[s] = u.UseBytes(d.bytes)
		}
	}
	for target := range cfg.Backlogs {
		d.backlogs[target] = &BacklogStats{}
	}
	d.routes = d.newRoutes(Routes{Table: cfg.Table, Sinks: cfg.Sinks, DeadLetters: cfg.DeadLetters})
	return d, nil
}

func checkRoutes(t *Table, sinks map[string]Sink) error {
	if t == nil {
		return errors.New("dispatcher: no rules")
	}
	for _, r := range t.Rules() {
		for _, name := range r.Targets {
			if sinks[name] == nil {
				return fmt.Errorf("dispatcher: rule %s names target %s, which has no sink", r.Name, name)
			}
		}
	}
	return nil
}

// newRoutes gives r's rules their counters, reusing those of rules with
// the same name. d.mu must be held for writing, or d not yet shared.
func (d *Dispatcher) newRoutes(r Routes) *routes {
	rs := &routes{Routes: r, retired: make(chan struct{})}
	for _, rule := range r.Table.Rules() {
		st := d.rules[rule.Name]
		if st == nil {
			st = &RuleStats{}
			d.rules[rule.Name] = st
		}
		rs.ruleStats = append(rs.ruleStats, st)
	}
	return rs
}

// Reload replaces the rules and sinks for the messages received from now
// on; messages already being handled finish with the old ones. The
// returned channel is closed once all of those are settled, and those of
// every earlier reload too, when sinks the new routes do not use may be
// closed. A rule's counters carry over to a rule of the same name.
func (d *Dispatcher) Reload(r Routes) (retired <-chan struct{}, err error) {
	if err := checkRoutes(r.Table, r.Sinks); err != nil {
		return nil, err
	}
	d.mu.Lock()
	old := d.routes
	d.routes = d.newRoutes(r)
	d.routes.prev = old.retired
	for name := range d.rules {
		if !slices.ContainsFunc(r.Table.Rules(), func(rule Rule) bool { return rule.Name == name }) {
			delete(d.rules, name)
		}
	}
	d.mu.Unlock()
	go func() {
		old.active.Wait()
		if old.prev != nil {
			<-old.prev
		}
		close(old.retired)
	}()
	return old.retired, nil
}

// EachRule calls f with each current rule's name and counters, in the
// order of the rules.
func (d *Dispatcher) EachRule(f func(name string, st *RuleStats)) {
	d.mu.RLock()
	r := d.routes
	d.mu.RUnlock()
	for i, rule := range r.Table.Rules() {
		f(rule.Name, r.ruleStats[i])
	}
}

// Receiving reports whether the dispatcher is receiving: Run has started
// and its context has not ended.
func (d *Dispatcher) Receiving() bool { return d.receiving.Load() }

// acquire returns the current routes, held until release.
func (d *Dispatcher) acquire() *routes {
	d.mu.RLock()
	r := d.routes
	r.active.Add(1)
	d.mu.RUnlock()
	return r
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() *Stats { return &d.stats }

// BacklogStats returns the counters of a target's backlog (nil when it has
// none).
func (d *Dispatcher) BacklogStats(target string) *BacklogStats { return d.backlogs[target] }

// LedgerStats returns the ledger's counters (nil when there is no ledger).
func (d *Dispatcher) LedgerStats() *LedgerStats { return d.cfg.Ledger.Stats() }

// Bytes returns the byte budget of the messages in flight.
func (d *Dispatcher) Bytes() *ByteBudget { return d.bytes }

// SourceStats returns a source's counters (nil for an unknown source).
func (d *Dispatcher) SourceStats(name string) *SourceStats { return d.sources[name] }

// sourceStats returns the counters of a message's source; messages of a
// source the dispatcher was not given count in a throwaway.
func (d *Dispatcher) sourceStats(name string) *SourceStats {
	if s := d.sources[name]; s != nil {
		return s
	}
	return &SourceStats{}
}

// Run receives and dispatches until ctx ends. Then it stops receiving,
// lets the messages in flight finish for up to grace, cancels what is
// still running, nacks those messages so they are redelivered, and
// returns once every message it received is settled.
func (d *Dispatcher) Run(ctx context.Context, grace time.Duration) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d.receiving.Store(true)
	stopReceiving := context.AfterFunc(ctx, func() { d.receiving.Store(false) })
	defer func() {
		stopReceiving()
		d.receiving.Store(false)
	}()
	var messages sync.WaitGroup // one per message being handled
	var loops sync.WaitGroup
	type plan struct{ pollers, batch int }
	plans := make([]plan, len(d.cfg.Sources))
	total := 0
	for i, src := range d.cfg.Sources {
		plans[i] = plan{1, 10}
		if p, ok := src.(Poller); ok {
			plans[i] = plan{max(1, p.Pollers()), max(1, p.BatchSize())}
		}
		total += plans[i].pollers
	}
	// A receive loop holds the slots it asks for while it waits (a long
	// poll, an idle HTTP listener): each may hold at most its share of
	// the budget, so that an idle source never starves a busy one.
	share := max(1, cap(d.slots)/max(1, total))
	for i, src := range d.cfg.Sources {
		batch := min(plans[i].batch, share)
		for range plans[i].pollers {
			loops.Go(func() { d.receive(ctx, work, src, batch, &messages) })
		}
	}
	for target, b := range d.cfg.Backlogs {
		loops.Go(func() { d.drain(ctx, work, target, b, d.backlogs[target]) })
	}
	loops.Wait()

	// Receiving has stopped: drain.
	for _, src := range d.cfg.Sources {
		if dr, ok := src.(Drainer); ok {
			dr.Drain()
		}
	}
	drained := make(chan struct{})
	go func() { messages.Wait(); d.drains.Wait(); close(drained) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-drained:
		return nil
	case <-timer.C:
	}
	d.log.Warn("shutdown grace period over: nacking unfinished messages", "grace", grace, "in_flight", d.stats.InFlight.Load())
	cancelWork()
	<-drained
	return nil
}

// receive is one receive loop: it asks the source for as many messages
// as there are free slots (up to batch), and never more.
func (d *Dispatcher) receive(ctx, work context.Context, src Source, batch int, messages *sync.WaitGroup) {
	st := d.sourceStats(src.Name())
	for {
		// Block for one slot, then take what else is free, up to batch.
		select {
		case d.slots <- struct{}{}:
		default:
			paused := time.Now()
			select {
			case d.slots <- struct{}{}:
				st.Paused.Add(int64(time.Since(paused)))
			case <-ctx.Done():
				st.Paused.Add(int64(time.Since(paused)))
				return
			}
		}
		n := 1
	more:
		for n < batch {
			select {
			case d.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		if !d.reserves[src] && d.bytes.full() {
			// No room for bytes either: wait, holding the slots.
			paused := time.Now()
			err := d.bytes.Wait(ctx)
			st.Paused.Add(int64(time.Since(paused)))
			if err != nil {
				for range n {
					<-d.slots
				}
				return
			}
		}
		msgs, err := src.Receive(ctx, n)
		for range n - len(msgs) {
			<-d.slots
		}
		if err == nil {
			st.FailingReceives.Store(0)
		} else if ctx.Err() == nil {
			d.stats.ReceiveErrors.Add(1)
			st.ReceiveErrors.Add(1)
			st.FailingReceives.Add(1)
			st.LastError.Store(&LastError{At: time.Now(), Error: err.Error()})
		}
		if err != nil {
			if ctx.Err() != nil {
				// Messages a source returned with the shutdown still count.
				if len(msgs) == 0 {
					return
				}
			}
		}
		// A message of a group takes its turn after the message of the
		// group received just before it, fixed here, in receive order, for
		// the whole batch before any of it is handled: a message settled
		// (its turn closed and dropped) before the next one's turn was
		// fixed would let the next one go first, although it failed.
		var turns []*groupTurn // prev, turn of each message
		for i, m := range msgs {
			if m.Group == "" {
				continue
			}
			if turns == nil {
				turns = make([]*groupTurn, 2*len(msgs))
			}
			turns[2*i+1] = &groupTurn{done: make(chan struct{})}
			if p, loaded := d.groups.Swap(m.Source+"\x00"+m.Group, turns[2*i+1]); loaded {
				turns[2*i] = p.(*groupTurn)
			}
		}
		for i, m := range msgs {
			d.stats.Received.Add(1)
			st.Received.Add(1)
			d.stats.InFlight.Add(1)
			messages.Add(1)
			held := m.Reserved
			if held == 0 {
				held = int64(len(m.Body))
				d.bytes.Charge(held)
			}
			var prev, turn *groupTurn
			if turns != nil {
				prev, turn = turns[2*i], turns[2*i+1]
			}
			go func() {
				defer messages.Done()
				defer func() { <-d.slots; d.bytes.Release(held); d.stats.InFlight.Add(-1) }()
				ok := d.handle(work, m, prev)
				if turn != nil {
					turn.ok = ok
					close(turn.done)
					d.groups.CompareAndDelete(m.Source+"\x00"+m.Group, turn)
				}
			}()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// groupTurn is one message's place in its group's order.
type groupTurn struct {
	done chan struct{} // closed when the message is settled
	ok   bool          // it was acked; set before done is closed
}

// handle routes one message and settles it, after its group predecessor
// (if any) is settled. It reports whether the message was acked.
func (d *Dispatcher) handle(ctx context.Context, m *Message, prev *groupTurn) bool {
	if prev != nil {
		select {
		case <-prev.done:
		case <-ctx.Done():
			d.nack(m, 0)
			return false
		}
		if !prev.ok {
			// The message before it in its group will come back; this one
			// must not overtake it.
			d.nack(m, 0)
			return false
		}
	}

	r := d.acquire()
	defer r.active.Done()
	// Log lines name the message by its correlation ids (MessageLogAttrs,
	// LogAttrs), built only when a line is written.
	if m.Malformed != nil {
		return d.deadLetterMalformed(ctx, r, m)
	}
	table := r.Table
	var buf [8]int
	matched, err := table.Match(m.Event, m.Source, buf[:0])
	if err != nil {
		// The source made a valid event, so this is an event too complex
		// to match: it comes back later and, failing again, goes to the
		// queue's own dead-letter queue.
		d.log.Error("cannot match event", MessageLogAttrs(m), "error", err)
		d.nack(m, d.cfg.RetryLater)
		return false
	}
	if len(matched) == 0 {
		d.stats.Unmatched.Add(1)
		d.sourceStats(m.Source).Unmatched.Add(1)
		if d.log.Enabled(ctx, slog.LevelDebug) {
			d.log.Debug("no rule matched", MessageLogAttrs(m))
		}
		return d.ack(m)
	}

	var ds []*Delivery
	for _, i := range matched {
		r.ruleStats[i].Matched.Add(1)
		rule := &table.Rules()[i]
		payload := table.Render(nil, i, m.Event)
		eventID := m.Event.ID
		if eventID == "" {
			eventID = m.Source + "/" + m.ID
		}
		for _, t := range rule.Targets {
			ds = append(ds, &Delivery{
				ID: DeliveryID(eventID, rule.Name, t), Message: m, Rule: rule.Name, Target: t,
				Payload: payload, Text: rule.Input != nil && rule.Input.Text(), Whole: rule.Input == nil, Ledger: d.cfg.Ledger,
			})
		}
	}
	if m.Redelivered && d.cfg.Ledger != nil {
		if ds = d.lookUp(ctx, ds); len(ds) == 0 {
			return d.ack(m)
		}
	}
	errs := make([]error, len(ds))
	recorded := make([]bool, len(ds))
	if len(ds) == 1 {
		errs[0] = r.Sinks[ds[0].Target].Deliver(ctx, ds[0])
	} else {
		var wg sync.WaitGroup
		var left atomic.Int32
		left.Store(int32(len(ds)))
		all := make(chan struct{}) // closed when every delivery has ended
		for i, del := range ds {
			wg.Go(func() {
				errs[i] = r.Sinks[del.Target].Deliver(ctx, del)
				if left.Add(-1) == 0 {
					close(all)
					return
				}
				if errs[i] != nil || del.Ledger == nil {
					return
				}
				// The others still run, and may not resolve: record this
				// one, so that if the message comes back it is not made
				// again. Those that end soon after need no record, as the
				// message is settled then.
				t := time.NewTimer(recordAfter)
				defer t.Stop()
				select {
				case <-all:
				case <-t.C:
					recorded[i] = del.Record(ctx, stateOf(del)) == nil
				}
			})
		}
		wg.Wait()
	}

	var later time.Duration
	failed := false
	for i, err := range errs {
		if err == nil {
			d.stats.Delivered.Add(1)
			continue
		}
		failed = true
		d.stats.Failed.Add(1)
		if ctx.Err() == nil {
			d.log.Warn("delivery unresolved: the message will come back", LogAttrs(ds[i]), "error", err)
		}
		later = max(later, RetryAfterOf(err))
	}
	if failed && d.cfg.Ledger != nil {
		// The message comes back: what became of each of its deliveries
		// goes on record first.
		for i, del := range ds {
			switch {
			case recorded[i]:
			case errs[i] == nil:
				del.Record(ctx, stateOf(del))
			case del.Attempt > 0 || !del.FirstAttempt.IsZero():
				del.Record(ctx, Pending)
			}
		}
	}
	switch {
	case !failed:
		return d.ack(m)
	case ctx.Err() != nil:
		d.nack(m, 0) // shutting down: let another instance have it now
	default:
		if later == 0 {
			later = d.cfg.RetryLater
		}
		d.nack(m, later)
	}
	return false
}

// recordAfter is how long a delivery that resolved waits for the other
// deliveries of its message before it records its state in the ledger.
const recordAfter = 20 * time.Millisecond

// stateOf is the state of a delivery whose Deliver returned nil.
func stateOf(d *Delivery) State {
	if d.State == Pending {
		return Delivered
	}
	return d.State
}

// lookUp asks the ledger about the deliveries of a message that may have
// been received before. It leaves out those that resolved or went to a
// backlog, and carries the others on where they were.
func (d *Dispatcher) lookUp(ctx context.Context, ds []*Delivery) []*Delivery {
	recs := make([]Record, len(ds))
	found := make([]bool, len(ds))
	if len(ds) == 1 {
		recs[0], found[0] = d.cfg.Ledger.Get(ctx, ds[0].ID)
	} else {
		var wg sync.WaitGroup
		for i, del := range ds {
			wg.Go(func() { recs[i], found[i] = d.cfg.Ledger.Get(ctx, del.ID) })
		}
		wg.Wait()
	}
	out := ds[:0]
	for i, del := range ds {
		rec := recs[i]
		switch {
		case !found[i]:
		case !rec.Matches(del):
			d.log.Info("ledger record of another message under the same delivery id (an event id used again): delivered anew", LogAttrs(del))
		case rec.State != Pending:
			d.cfg.Ledger.stats.hit(del.Target)
			if d.log.Enabled(ctx, slog.LevelDebug) {
				d.log.Debug("delivery skipped: the ledger has it "+rec.State.String(), LogAttrs(del))
			}
			continue
		default:
			del.restore(rec)
		}
		out = append(out, del)
	}
	return out
}

// deadLetterMalformed sends a message that did not fit its source's
// envelope to the source's dead-letter target.
func (d *Dispatcher) deadLetterMalformed(ctx context.Context, r *routes, m *Message) bool {
	log := d.log.With(MessageLogAttrs(m))
	sink := r.DeadLetters[m.Source]
	if sink == nil {
		log.Error("malformed message and no dead-letter target: it will come back", "error", m.Malformed)
		d.nack(m, d.cfg.RetryLater)
		return false
	}
	now := time.Now()
	del := &Delivery{
		ID: DeliveryID(m.Source+"/"+m.ID, "", sink.Name()), Message: m, Target: sink.Name(), Payload: m.Body,
		DeadLetter: &DeadLetter{Source: m.Source, MessageID: m.ID, LastError: m.Malformed.Error(), FirstError: m.Malformed.Error(),
			FirstAttempt: now, LastAttempt: now, Attributes: m.Attributes},
	}
	if err := sink.Deliver(ctx, del); err != nil {
		d.stats.Failed.Add(1)
		log.Error("dead-lettering a malformed message failed: it will come back", "target", sink.Name(), "error", err)
		d.nack(m, max(RetryAfterOf(err), d.cfg.RetryLater))
		return false
	}
	log.Warn("malformed message dead-lettered", "target", sink.Name(), "error", m.Malformed)
	return d.ack(m)
}

// settleTimeout bounds an ack or nack, which must outlive the run context.
const settleTimeout = 10 * time.Second

func (d *Dispatcher) ack(m *Message) bool {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := m.Handle.Ack(ctx); err != nil {
		d.stats.SettleErrors.Add(1)
		d.log.Error("ack failed: the message will be redelivered", MessageLogAttrs(m), "error", err)
		return false
	}
	d.stats.Acked.Add(1)
	d.sourceStats(m.Source).Acked.Add(1)
	return true
}

func (d *Dispatcher) nack(m *Message, after time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := m.Handle.Nack(ctx, after); err != nil {
		d.stats.SettleErrors.Add(1)
		d.log.Warn("nack failed: the message comes back when its visibility ends", MessageLogAttrs(m), "error", err)
		return
	}
	d.stats.Nacked.Add(1)
	d.sourceStats(m.Source).Nacked.Add(1)
}

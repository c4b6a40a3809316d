package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/switchyard-dev/switchyard/router"
)

// The envelope values of the events the source emits.
const (
	// EventSource is the events' source, as ECS's own events carry it.
	EventSource = "aws.ecs"
	// DetailTypeTask is the detail-type of cluster mode's events: the
	// documented "ECS Task State Change".
	DetailTypeTask = "ECS Task State Change"
	// DetailTypeContainer is the detail-type of task: self's events, which
	// ECS does not send itself (see docs/config.md for their shape).
	DetailTypeContainer = "ECS Container State Change"
)

// MetadataEnv is the environment variable ECS sets, in every container of
// a task, to the container's task metadata endpoint v4.
const MetadataEnv = "ECS_CONTAINER_METADATA_URI_V4"

// ErrClosed is returned by Receive once the source is closed.
var ErrClosed = errors.New("ecs source closed")

// API is the part of the ECS client the source uses; *ecs.Client has it.
type API interface {
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

// Clock is the source's time: poll pacing, nack delays and backoff. Its
// methods must be safe for concurrent use. (internal/awstest.ManualClock
// is one, for tests.)
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Options are what a Source needs besides its Config.
type Options struct {
	// API is the ECS client. Required in cluster mode (an *ecs.Client
	// keeping the SDK's retries for polls).
	API API
	// State keeps what was acked across restarts. Nil means a new
	// MemoryState: the first poll then emits every task's (or sibling
	// container's) current status once.
	State State
	// MetadataURI is the task metadata endpoint v4 of switchyard's own
	// container, for task: self. Default: $ECS_CONTAINER_METADATA_URI_V4.
	MetadataURI string
	// HTTPClient reads the task metadata endpoint. Default: a client that
	// uses no proxy and gives up on a request after 10s.
	HTTPClient *http.Client
	// Clock is the source's time. Default: the wall clock.
	Clock Clock
	// Logger receives the source's logs. Default slog.Default().
	Logger *slog.Logger
	// Leader, when set, is the lease on the source's polling, for a
	// fleet whose instances share the State (a NATS cluster): the source
	// polls only while it leads. Losing the lease, it hands out nothing
	// but what is out already and forgets what it polled; leading again,
	// it starts from the State the previous leader left. Nil: it always
	// polls.
	Leader Leader
}

// Leader is a lease: whether this instance leads now, and a channel closed
// when that changes.
type Leader interface {
	Leading() (bool, <-chan struct{})
}

// Source emits ECS state changes as events: a cluster's task state changes,
// or with task: self its own task's sibling containers' state changes.
//
// Every interval it polls, compares what it sees with what was acked, and
// queues one event per task (or container) whose status differs; a task
// has at most one event out at a time, so its events arrive in order. An
// ack records the event's status in the State; a nack hands the same event
// (same id, same body) out again after the delay; an event handed out and
// never settled stays out until the source is closed, and a new source
// emits the task's status again, since it was not acked.
//
// A task whose STOPPED event was acked is kept in the State while ECS
// still lists it (about an hour), so it is not emitted again, and deleted
// once it is no longer listed.
//
// Lock order: saveMu before mu.
type Source struct {
	name      string
	cfg       Config
	state     State
	clock     Clock
	log       *slog.Logger
	poller    poller
	closeIdle func()
	leader    Leader

	base       context.Context // cancelled by Close
	cancelBase context.CancelFunc
	closed     atomic.Bool

	initMu sync.Mutex // serialises init
	saveMu sync.Mutex // serialises writes to the State, so they land in order

	mu        sync.Mutex
	loaded    bool
	committed map[string]Seen // acked (and, but for unsaved, saved)
	unsaved   map[string]Seen // acked, but the State refused it: retried every poll
	entries   map[string]*entry
	ready     []*entry // waiting to be handed out, in order
	delayed   []*entry // nacked, waiting for their delay
	polling   bool
	nextPoll  time.Time
	changed   chan struct{} // closed and replaced whenever Receive may have something new
	errStreak int
	errFirst  time.Time
}

// poller is one mode's way of seeing what there is.
type poller interface {
	// init learns what the mode needs once (task: self's own container).
	init(ctx context.Context) error
	// poll returns an event for the current state of every task or
	// container, and the keys it listed (nil: it cannot tell what is gone).
	poll(ctx context.Context, now time.Time) (events []*event, listed map[string]bool, err error)
	// changed says whether next must be emitted after prev (ok: there is one).
	changed(prev Seen, ok bool, next Seen) bool
}

// event is one event as the source hands it out, every time the same.
type event struct {
	key    string
	id     string
	seen   Seen
	json   []byte
	group  string
	system map[string]string
}

type phase uint8

const (
	queued phase = iota
	inflight
	delayed
)

// entry is the source's view of one task or container.
type entry struct {
	key    string
	latest *event // the latest state polled
	out    *event // the event handed out or waiting to be; nil: none
	phase  phase  // of out
	until  time.Time
	gen    uint64 // bumped at each hand-out: older handles are stale
	gone   bool   // no longer listed
}

// New returns a source for cfg (defaults applied). It starts nothing: call
// Open to check access and load the State, then Receive. It fails only on
// wiring: no API in cluster mode, no metadata URI with task: self.
func New(name string, cfg Config, opts Options) (*Source, error) {
	s := &Source{
		name: name, cfg: cfg, state: opts.State, clock: opts.Clock, log: opts.Logger, leader: opts.Leader,
		committed: map[string]Seen{}, unsaved: map[string]Seen{}, entries: map[string]*entry{},
		changed: make(chan struct{}),
	}
	if s.state == nil {
		s.state = &MemoryState{}
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("source", name)
	if cfg.Task == "self" {
		uri := opts.MetadataURI
		if uri == "" {
			uri = os.Getenv(MetadataEnv)
		}
		if uri == "" {
			return nil, fmt.Errorf("ecs source %s: task: self needs the task metadata endpoint, but %s is not set (is switchyard running in an ECS task?)", name, MetadataEnv)
		}
		client := opts.HTTPClient
		if client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil // the endpoint is link-local: never through a proxy
			client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
			s.closeIdle = tr.CloseIdleConnections
		}
		s.poller = &selfPoller{uri: uri, client: client}
	} else {
		if opts.API == nil {
			return nil, fmt.Errorf("ecs source %s: cluster mode needs an ECS API client", name)
		}
		s.poller = &clusterPoller{cfg: cfg, api: opts.API}
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	return s, nil
}

var (
	_ router.Source = (*Source)(nil)
	_ router.Poller = (*Source)(nil)
)

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Pollers is 1: one receive loop, since every poll sees everything.
func (s *Source) Pollers() int { return 1 }

// BatchSize is the most events one Receive hands out: 100.
func (s *Source) BatchSize() int { return 100 }

// Open loads the State and checks the source can see what it watches: in
// cluster mode one ListTasks call (a missing cluster or a missing
// permission fails here), with task: self one read of its own container's
// metadata. It may be called again after a failure.
func (s *Source) Open(ctx context.Context) error {
	if err := s.init(ctx); err != nil {
		return err
	}
	if cp, ok := s.poller.(*clusterPoller); ok {
		if err := cp.check(ctx); err != nil {
			return fmt.Errorf("ecs source %s: cluster %s: %w", s.name, s.cfg.Cluster, err)
		}
	}
	return nil
}

// init loads the State and lets the poller learn what it needs, once.
func (s *Source) init(ctx context.Context) error {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if loaded {
		return nil
	}
	if err := s.poller.init(ctx); err != nil {
		return fmt.Errorf("ecs source %s: %w", s.name, err)
	}
	m, err := s.state.Load(ctx)
	if err != nil {
		return fmt.Errorf("ecs source %s: load state: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m != nil {
		s.committed = m
	}
	s.loaded = true
	return nil
}

// Receive returns up to max events, blocking until there is one or ctx
// ends. It polls when the interval since the last poll is over and nothing
// is waiting; a failed poll is logged once per streak of failures, returned,
// and the next poll waits a backoff (the interval, doubling up to 5 minutes,
// jittered; the longest at once for errors that will not go away by
// themselves, such as a missing cluster or permission). It is safe to call
// from several goroutines; only one of them polls at a time.
func (s *Source) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	if max < 1 {
		return nil, nil
	}
	for {
		if s.closed.Load() {
			return nil, fmt.Errorf("ecs source %s: %w", s.name, ErrClosed)
		}
		if s.leader != nil {
			if leading, changed := s.leader.Leading(); !leading {
				s.mu.Lock()
				s.followLocked()
				s.mu.Unlock()
				select {
				case <-changed:
				case <-s.base.Done():
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				continue
			}
		}
		s.mu.Lock()
		now := s.clock.Now()
		if msgs := s.takeLocked(now, max); len(msgs) > 0 {
			s.mu.Unlock()
			return msgs, nil
		}
		poll := !s.polling && !now.Before(s.nextPoll)
		if poll {
			s.polling = true
		}
		changed := s.changed
		wait := s.waitLocked(now)
		s.mu.Unlock()

		if poll {
			err := s.pollOnce(ctx)
			s.mu.Lock()
			s.polling = false
			switch {
			case err == nil:
				s.nextPoll = s.clock.Now().Add(s.cfg.Interval)
			case ctx.Err() == nil && !s.closed.Load():
				err = s.failedLocked(err)
			default:
				// Cut short by the caller or Close: not a failure, and the
				// next Receive polls at once.
			}
			s.broadcastLocked()
			s.mu.Unlock()
			switch {
			case err == nil:
				continue
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case s.closed.Load():
				return nil, fmt.Errorf("ecs source %s: %w", s.name, ErrClosed)
			}
			return nil, err
		}

		var timer <-chan time.Time
		stop := func() bool { return false }
		if wait > 0 {
			timer, stop = s.clock.NewTimer(wait)
		}
		select {
		case <-changed:
		case <-timer:
		case <-s.base.Done():
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
		stop()
	}
}

// followLocked is the source while another instance leads: what it
// polled and has not handed out is dropped (the leader emits it), and the
// State is read again before it polls next, for what the leader acked.
// Events already out are still settled as usual.
func (s *Source) followLocked() {
	for _, e := range append(s.ready, s.delayed...) {
		e.out = nil
	}
	s.ready, s.delayed = nil, nil
	for key, e := range s.entries {
		if e.out == nil {
			delete(s.entries, key)
		}
	}
	if s.loaded {
		s.log.Info("another instance leads: not polling")
	}
	s.loaded = false
	s.nextPoll = time.Time{}
}

// pollOnce polls and queues what changed. It ends with ctx or Close.
func (s *Source) pollOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.base, cancel)()
	if err := s.init(ctx); err != nil {
		return err
	}
	s.retrySaves(ctx)
	events, listed, err := s.poller.poll(ctx, s.clock.Now())
	if err != nil {
		return fmt.Errorf("ecs source %s: poll: %w", s.name, err)
	}
	gone := s.apply(events, listed)
	s.forget(ctx, gone)
	s.recovered()
	return nil
}

// apply records a poll and queues an event for every task whose state
// differs from what was acked. It returns the acked keys no longer listed.
func (s *Source) apply(events []*event, listed map[string]bool) (gone []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		e := s.entries[ev.key]
		if e == nil {
			e = &entry{key: ev.key}
			s.entries[ev.key] = e
		}
		e.gone = false
		prev, ok := s.committed[ev.key]
		if ok && ev.seen.Version < prev.Version || e.latest != nil && ev.seen.Version < e.latest.seen.Version {
			continue // an older view than one already seen (DescribeTasks is eventually consistent)
		}
		e.latest = ev
		if e.out == nil && s.poller.changed(prev, ok, ev.seen) {
			e.out, e.phase = ev, queued
			s.ready = append(s.ready, e)
		}
	}
	if listed == nil {
		return nil
	}
	for key, e := range s.entries {
		if !listed[key] {
			e.gone = true
			if e.out == nil {
				delete(s.entries, key)
			}
		}
	}
	for key := range s.committed {
		if !listed[key] && s.entries[key] == nil {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	return gone
}

// forget deletes from the State what ECS no longer lists. A failed delete
// is retried at the next poll, the key being still there.
func (s *Source) forget(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	for _, key := range keys {
		if err := s.state.Delete(ctx, key); err != nil {
			s.log.Warn("deleting a task no longer listed from the state failed; retrying at the next poll", "key", key, "error", err)
			continue
		}
		s.mu.Lock()
		if s.entries[key] == nil {
			delete(s.committed, key)
			delete(s.unsaved, key)
		}
		s.mu.Unlock()
	}
}

// retrySaves writes again what the State refused at ack time.
func (s *Source) retrySaves(ctx context.Context) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	pending := maps.Clone(s.unsaved)
	s.mu.Unlock()
	for key, seen := range pending {
		if err := s.state.Save(ctx, key, seen); err != nil {
			return // still failing: try again at the next poll
		}
		s.mu.Lock()
		if s.unsaved[key] == seen {
			delete(s.unsaved, key)
		}
		s.mu.Unlock()
	}
}

// takeLocked hands out up to max waiting events.
func (s *Source) takeLocked(now time.Time, max int) []*router.Message {
	if len(s.delayed) > 0 {
		slices.SortStableFunc(s.delayed, func(a, b *entry) int { return a.until.Compare(b.until) })
		n := 0
		for n < len(s.delayed) && !s.delayed[n].until.After(now) {
			s.delayed[n].phase = queued
			n++
		}
		s.ready = append(s.ready, s.delayed[:n]...)
		s.delayed = slices.Delete(s.delayed, 0, n)
	}
	n := min(max, len(s.ready))
	if n == 0 {
		return nil
	}
	msgs := make([]*router.Message, 0, n)
	for _, e := range s.ready[:n] {
		e.phase = inflight
		e.gen++
		msgs = append(msgs, s.message(e.out, &handle{s: s, e: e, gen: e.gen}, now))
	}
	s.ready = slices.Delete(s.ready, 0, n)
	return msgs
}

// waitLocked is how long Receive may wait before it has something to do:
// the next poll (unless one is running) or the end of a nack delay; -1 for
// no deadline.
func (s *Source) waitLocked(now time.Time) time.Duration {
	var at time.Time
	if !s.polling {
		at = s.nextPoll
	}
	for _, e := range s.delayed {
		if at.IsZero() || e.until.Before(at) {
			at = e.until
		}
	}
	if at.IsZero() {
		return -1
	}
	return max(at.Sub(now), time.Nanosecond)
}

func (s *Source) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Source) message(ev *event, h *handle, now time.Time) *router.Message {
	e, err := router.ParseEvent(ev.json, now)
	if err != nil {
		panic("ecs: built an invalid event: " + err.Error()) // a bug in this package
	}
	return &router.Message{
		Event: e, Handle: h, Source: s.name, ID: ev.id, Group: ev.group,
		Body: ev.json, System: maps.Clone(ev.system), Received: now,
	}
}

// maxBackoff bounds the wait after failed polls.
const maxBackoff = 5 * time.Minute

// failedLocked counts a failed poll, logs the first of a streak, sets the
// next poll after a backoff and returns err classified.
func (s *Source) failedLocked(err error) error {
	err = classify(err)
	s.errStreak++
	n := s.errStreak
	now := s.clock.Now()
	if n == 1 {
		s.errFirst = now
		s.log.Error("poll failed; retrying with backoff (logged once until it recovers)",
			"mode", s.mode(), "class", router.ClassOf(err).String(), "error", err)
	}
	d := s.cfg.Interval << min(n-1, 16)
	if router.ClassOf(err) == router.Permanent {
		d = maxBackoff
	}
	d = min(d, max(maxBackoff, s.cfg.Interval))
	d = d/2 + rand.N(d/2+1)
	s.nextPoll = now.Add(d)
	return err
}

func (s *Source) recovered() {
	s.mu.Lock()
	n, since := s.errStreak, s.errFirst
	s.errStreak = 0
	now := s.clock.Now()
	s.mu.Unlock()
	if n > 0 {
		s.log.Info("poll recovered", "mode", s.mode(), "failures", n, "after", now.Sub(since).Round(time.Millisecond))
	}
}

func (s *Source) mode() string {
	if s.cfg.Task == "self" {
		return "task: self"
	}
	return "cluster " + s.cfg.Cluster
}

// Close stops the source: pending Receive calls return ErrClosed, a poll
// under way is cancelled. Events handed out can still be acked (the State
// is written) and nacked (to no effect). It is idempotent and never
// blocks.
func (s *Source) Close(context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancelBase()
	s.mu.Lock()
	s.broadcastLocked()
	s.mu.Unlock()
	if s.closeIdle != nil {
		s.closeIdle()
	}
	return nil
}

// handle settles one hand-out of an event.
type handle struct {
	s       *Source
	e       *entry
	gen     uint64
	settled atomic.Bool
}

// Ack records the event's status as emitted: in memory at once, and in the
// State. If the State refuses it, the status is still not emitted again by
// this source, the save is retried at every poll, and the failure is
// logged (not returned: nothing would be redelivered); a restart before a
// save succeeds emits it again, at least once. Ack is idempotent and the
// first of Ack and Nack wins.
func (h *handle) Ack(ctx context.Context) error {
	if !h.settled.CompareAndSwap(false, true) {
		return nil
	}
	s := h.s
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	e := h.e
	if e.gen != h.gen || e.out == nil || e.phase != inflight {
		s.mu.Unlock()
		return nil
	}
	ev := e.out
	s.mu.Unlock()

	err := s.state.Save(ctx, e.key, ev.seen)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed[e.key] = ev.seen
	if err != nil {
		s.unsaved[e.key] = ev.seen
		s.log.Warn("saving an acked status to the state failed; retrying at every poll (a restart before then emits it again)",
			"key", e.key, "status", ev.seen.Status, "error", err)
	} else {
		delete(s.unsaved, e.key)
	}
	e.out = nil
	switch {
	case e.latest != nil && e.latest != ev && e.latest.seen.Version >= ev.seen.Version && s.poller.changed(ev.seen, true, e.latest.seen):
		// It changed again while this event was out: its turn now.
		e.out, e.phase = e.latest, queued
		s.ready = append(s.ready, e)
		s.broadcastLocked()
	case e.gone:
		delete(s.entries, e.key)
	}
	return nil
}

// Nack hands the same event out again after the delay (0: at once). It is
// idempotent and the first of Ack and Nack wins.
func (h *handle) Nack(_ context.Context, after time.Duration) error {
	if !h.settled.CompareAndSwap(false, true) {
		return nil
	}
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e := h.e
	if e.gen != h.gen || e.out == nil || e.phase != inflight {
		return nil
	}
	if after <= 0 {
		e.phase = queued
		s.ready = append(s.ready, e)
	} else {
		e.phase, e.until = delayed, s.clock.Now().Add(after)
		s.delayed = append(s.delayed, e)
	}
	s.broadcastLocked()
	return nil
}

// Extend does nothing: an event handed out stays out, without a timeout,
// until it is acked or nacked (or the source goes away), so there is no
// visibility to extend. Unlike an SQS message it cannot come back while
// its deliveries still run.
func (h *handle) Extend(context.Context, time.Duration) error { return nil }

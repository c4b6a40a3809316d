package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/bodycopy"
	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/fleet"
	"github.com/switchyard-dev/switchyard/internal/ledger"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
)

// failingReceives is how many receives in a row must fail before a source
// makes the daemon not ready.
const failingReceives = 5

// engine is the running daemon: what it built from the config, and what a
// reload may replace (rules, targets, policies).
type engine struct {
	e       *env
	log     *slog.Logger
	load    func(ctx context.Context) (*config.Config, error)
	metrics *telemetry.Metrics

	c        *clients
	tracer   *telemetry.Tracer
	d        atomic.Pointer[router.Dispatcher]
	draining atomic.Bool
	closers  []any // the sources, and the backlogs
	ledger   *router.LedgerGuard
	backlogs map[string]router.Backlog // by target name; fixed at start

	backlogViews map[string]*telemetry.Backlog // by target name, kept across reloads (their depth is cached)

	// deadLetter, when set, is every target's dead-letter sink instead of
	// its policy's dead_letter: switchyard redrive writes what fails again
	// back where it came from.
	deadLetter router.Sink

	started      atomic.Bool            // startup is over: /healthz is 200 from then on
	startupState atomic.Pointer[string] // what startup waits for, while it waits

	mu       sync.Mutex // serialises build, reloads and close; guards what follows
	cfg      *config.Config
	closed   bool
	targets  map[string]*builtTarget
	stats    map[string]*policy.Stats // by target name, kept across reloads
	sources  []telemetry.Source
	retiring sync.WaitGroup // closing sinks a reload replaced

	statusMu sync.Mutex // guards status; /status must not wait for a reload
	status   telemetry.ConfigStatus
}

// builtTarget is a target's sink in its policy, and what it was built from.
type builtTarget struct {
	key     string // the target's config, its policy's and its dead letter's
	typ     string
	sink    router.Sink    // the target's own sink
	policy  *policy.Policy // around sink
	wrapped router.Sink    // around policy: what the dispatcher calls
}

func newEngine(e *env, log *slog.Logger, load func(context.Context) (*config.Config, error)) *engine {
	eng := &engine{e: e, log: log, load: load, stats: map[string]*policy.Stats{}, backlogViews: map[string]*telemetry.Backlog{}}
	eng.metrics = telemetry.NewMetrics(versionString(), func() bool { return len(eng.notReady()) == 0 })
	return eng
}

// run serves the admin endpoint, builds everything, and runs until ctx
// ends; SIGHUP reloads the config.
func (eng *engine) run(ctx context.Context, cfg *config.Config) (int, error) {
	log := eng.log
	eng.cfg = cfg
	eng.status = telemetry.ConfigStatus{File: cfg.File, LoadedAt: time.Now()}

	// SIGHUP is ours from the start: during startup and shutdown it is
	// answered "not running" rather than killing the process (its default
	// action), so a `systemctl reload` at the wrong moment is harmless.
	// The registration is never undone for the same reason.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	defer wg.Wait()
	hupCtx, stopHUP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHUP()
	wg.Go(func() {
		for {
			select {
			case <-hup:
				eng.reload(hupCtx)
			case <-hupCtx.Done():
				return
			}
		}
	})

	if cfg.Admin.Listen != "none" {
		admin, err := telemetry.ListenAdmin(telemetry.AdminConfig{
			Listen: cfg.Admin.Listen, Version: versionString(), Metrics: eng.metrics, NotReady: eng.notReady, NotStarted: eng.notStarted,
			Reload: eng.reload, Config: eng.configStatus, Logger: log, Pprof: cfg.Admin.Pprof,
		})
		if err != nil {
			return exitFail, fmt.Errorf("startup: %w", err)
		}
		defer admin.Close(context.Background())
		log.Info("admin endpoint listening", "addr", admin.Addr())
	}
	defer eng.close()
	if err := eng.build(ctx, cfg); err != nil {
		if ctx.Err() != nil {
			// SIGTERM while starting (waiting out a dependency's outage,
			// say): asked to stop, not failed.
			log.Info("switchyard stopped while starting", "error", err)
			return exitOK, nil
		}
		return exitFail, fmt.Errorf("startup: %w", err)
	}
	eng.started.Store(true)
	d := eng.d.Load()
	stopDraining := context.AfterFunc(ctx, func() { eng.draining.Store(true) })
	defer stopDraining()

	log.Info("switchyard running", "version", versionString(), "config", cfg.File, "sources", len(cfg.Sources), "targets", len(cfg.Targets), "rules", len(cfg.Rules))
	for _, n := range cfg.Notes() {
		log.Info("note: " + n)
	}
	if err := d.Run(ctx, cfg.ShutdownGrace); err != nil {
		return exitFail, err
	}
	st := d.Stats()
	log.Info("switchyard stopped", "received", st.Received.Load(), "acked", st.Acked.Load(), "nacked", st.Nacked.Load(), "unmatched", st.Unmatched.Load())
	return exitOK, nil
}

// build opens NATS and AWS as the config needs them, then makes every
// sink in its policy, every source, and the dispatcher.
func (eng *engine) build(ctx context.Context, cfg *config.Config) error {
	eng.mu.Lock()
	defer eng.mu.Unlock()
	eng.c = &clients{endpoints: cfg.AWS.Endpoints, maxInFlight: cfg.MaxInFlight, shared: !cfg.NATS.Embedded(), replicas: cfg.Ledger.Replicas}
	// Tracing, when configured: one span per delivery (around each
	// target's policy), an event per failed attempt (around its sink).
	tracer, err := telemetry.NewTracer(cfg.Tracing, os.Getenv, versionString())
	if err != nil {
		return err
	}
	eng.tracer = tracer
	if err := eng.openClients(ctx, cfg); err != nil {
		return err
	}
	if err := eng.openState(ctx, cfg); err != nil {
		return err
	}
	targets, stats, err := eng.buildTargets(cfg, nil)
	eng.targets = targets
	if err != nil {
		return err
	}
	eng.commitStats(stats)
	var sources []router.Source
	for _, s := range cfg.Sources {
		src, err := eng.openSource(ctx, s)
		if src != nil {
			eng.closers = append(eng.closers, src)
		}
		if err != nil {
			return err
		}
		sources = append(sources, src)
		info := telemetry.Source{Name: s.Name, Type: s.Type}
		if h, ok := src.(*httpsource.Source); ok {
			info.HTTP = h.Stats()
		}
		eng.sources = append(eng.sources, info)
	}
	routes, err := eng.routes(cfg, targets)
	if err != nil {
		return err
	}
	d, err := router.NewDispatcher(router.DispatcherConfig{
		Table: routes.Table, Sinks: routes.Sinks, Sources: sources, DeadLetters: routes.DeadLetters,
		MaxInFlight: cfg.MaxInFlight, MaxInFlightBytes: int64(cfg.MaxInFlightBytes), Logger: eng.log, Ledger: eng.ledger, Backlogs: eng.backlogs,
	})
	if err != nil {
		return err
	}
	eng.metrics.SetState(eng.state(cfg, d))
	eng.d.Store(d) // now reloads may run, and readiness be checked
	return nil
}

// openClients opens NATS and loads the AWS config when cfg needs them and
// they are not open yet.
func (eng *engine) openClients(ctx context.Context, cfg *config.Config) error {
	c := eng.c
	if c.bus == nil && needsNATS(cfg) {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := bus.Open(octx, cfg.NATS, eng.log)
		cancel()
		if err != nil {
			return err
		}
		c.bus = b
	}
	if c.awsLoaded || !needsAWS(cfg) {
		return nil
	}
	if err := eng.retryStartup(ctx, "aws.endpoints", unreachableForNow, func() error { return checkEndpoints(ctx, cfg.AWS.Endpoints) }); err != nil {
		return err
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithHTTPClient(awsHTTPClient(cfg.MaxInFlight))}
	if cfg.AWS.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.AWS.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	if awsCfg.Region == "" {
		return errors.New("aws: no region: set aws.region in the config, or AWS_REGION")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = awsCfg.Credentials.Retrieve(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("aws: no usable credentials (the task role on ECS, the instance profile on EC2, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): %w", err)
	}
	// The SDK's client, sending copies of request bodies: see
	// internal/bodycopy.
	awsCfg.HTTPClient = bodycopy.Client(awsCfg.HTTPClient)
	c.cfg, c.awsLoaded = awsCfg, true
	return nil
}

// openState opens the delivery ledger and the targets' backlogs, as cfg
// asks for them.
func (eng *engine) openState(ctx context.Context, cfg *config.Config) error {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := eng.openLedger(octx, cfg); err != nil {
		return err
	}
	eng.backlogs = map[string]router.Backlog{}
	for _, t := range cfg.Targets {
		if t.Backlog == nil {
			continue
		}
		var b router.Backlog
		var err error
		switch t.Backlog.Type {
		case backlog.TypeJetStream:
			b, err = backlog.OpenJetStream(octx, eng.c.bus.JetStream(), t.Name, *t.Backlog, eng.log)
		case backlog.TypeSQS:
			// As a source queue: SQS's hiccups at startup delay it.
			err = eng.retryStartup(ctx, "backlog of "+t.Name, transientAtStartup, func() error {
				qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				var err error
				b, err = backlog.OpenSQS(qctx, eng.c.sqs(true), t.Name, *t.Backlog, cfg.Policies[t.Policy].Retry.MaxAge, eng.log)
				return err
			})
		}
		if err != nil {
			return err
		}
		eng.backlogs[t.Name] = b
		eng.closers = append(eng.closers, b)
		eng.log.Info("backlog open", "target", t.Name, "backlog", b.String(), "max_waiting", t.Backlog.MaxWaiting)
	}
	if eng.c.bus != nil {
		eng.strandedBacklogs(octx, cfg)
	}
	return nil
}

// openLedger opens the delivery ledger when cfg has it on, and joins the
// fleet when NATS is open, as run does before it builds the targets.
func (eng *engine) openLedger(octx context.Context, cfg *config.Config) error {
	if cfg.Ledger.On() {
		l, err := ledger.Open(octx, eng.c.bus.JetStream(), cfg.Ledger)
		if err != nil {
			return err
		}
		eng.ledger = router.NewLedgerGuard(l, eng.log)
		eng.log.Info("delivery ledger open", "bucket", cfg.Ledger.Bucket, "ttl", cfg.Ledger.TTL.String())
	}
	if eng.c.bus != nil {
		f, err := fleet.Open(octx, eng.c.bus.JetStream(), cfg.Fleet, versionString(), eng.log, cfg.Ledger.Replicas)
		if err != nil {
			return err
		}
		eng.c.fleet = f
		eng.log.Info("joined the fleet", "instance", f.ID(), "lease", cfg.Fleet.Lease.String())
	}
	return nil
}

// strandedBacklogs logs the backlog streams that hold deliveries but are
// no configured target's backlog (its target, or its backlog, was removed
// from the config): their deliveries' messages were acked, so they wait
// there for a target with that backlog to come back, or an operator.
func (eng *engine) strandedBacklogs(ctx context.Context, cfg *config.Config) {
	ours := map[string]bool{}
	for _, t := range cfg.Targets {
		if t.Backlog != nil && t.Backlog.Type == backlog.TypeJetStream {
			ours[cmp.Or(t.Backlog.Stream, backlog.StreamFor(t.Name))] = true
		}
	}
	js := eng.c.bus.JetStream()
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if ours[name] || !strings.HasPrefix(name, backlog.StreamPrefix) {
			continue
		}
		s, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		if n := s.CachedInfo().State.Msgs; n > 0 {
			eng.log.Error("a backlog stream holds deliveries of no configured target's backlog: they wait there until one is configured again",
				"stream", name, "deliveries", n)
		}
	}
}

// awsHTTPClient is the SDK's HTTP client, keeping up to maxInFlight idle
// connections to each endpoint instead of the SDK's 10. Calls in flight
// to one endpoint reach the targets' concurrency (64 by default), and with
// only 10 kept, every call past them ends with its connection closed and
// the next one dials (and, on AWS, shakes hands over TLS) again: under
// load, a new connection for most calls. Idle connections are only those
// that load opened, and the SDK's idle timeout (90s) closes them.
func awsHTTPClient(maxInFlight int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 0 // no limit over all endpoints: the limit is per endpoint
		t.MaxIdleConnsPerHost = max(maxInFlight, awshttp.DefaultHTTPTransportMaxIdleConnsPerHost)
	})
}

// buildTargets makes each target's sink in its policy; a dead-letter
// target is built before the targets that use it. Dead letters may lead
// back to a target (dlq using the default policy, whose dead_letter is
// dlq), since a dead letter is never dead-lettered again: a target whose
// dead letters go to one still being built gets a reference to it, bound
// once everything is built. A target of prev whose config, policy and dead
// letters are unchanged is kept as it is, in-flight calls, breaker and all.
// On error, what was built is in the returned map, to be closed. The
// counters of targets built anew are in stats, for commitStats.
func (eng *engine) buildTargets(cfg *config.Config, prev map[string]*builtTarget) (built map[string]*builtTarget, stats map[string]*policy.Stats, err error) {
	targets := map[string]config.Target{}
	for _, t := range cfg.Targets {
		targets[t.Name] = t
	}
	built, stats = map[string]*builtTarget{}, map[string]*policy.Stats{}
	building, refs := map[string]bool{}, []*deadLetterRef{}
	var build func(name string) (*builtTarget, error)
	build = func(name string) (*builtTarget, error) {
		if b, ok := built[name]; ok {
			return b, nil
		}
		building[name] = true
		defer delete(building, name)
		t := targets[name]
		pc := *cfg.Policies[t.Policy]
		var dl *builtTarget
		var dlSink router.Sink
		switch {
		case eng.deadLetter != nil:
			dlSink = eng.deadLetter
		case building[pc.DeadLetter]:
			ref := &deadLetterRef{name: pc.DeadLetter}
			refs, dlSink = append(refs, ref), ref
		case pc.DeadLetter != "":
			var err error
			if dl, err = build(pc.DeadLetter); err != nil {
				return nil, err
			}
			dlSink = dl.wrapped
		}
		key := targetKey(targets, cfg.Policies, name)
		if p := prev[name]; p != nil && p.key == key {
			built[name] = p
			return p, nil
		}
		sink, err := sinkKinds[t.Type](t, eng.c, eng.e)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		st := eng.stats[name]
		if st == nil || (prev[name] != nil && prev[name].typ != t.Type) {
			st = new(policy.Stats)
		}
		stats[name] = st
		opts := []policy.Option{policy.WithLogger(eng.log), policy.WithStats(st), policy.WithObserver(eng.metrics.Observer(name))}
		fleetWide := pc.Scope == policy.ScopeFleet && eng.c.fleet != nil
		if r := pc.Rate.PerSecond(); fleetWide && r > 0 {
			opts = append(opts, policy.WithRateLimiter(eng.c.fleet.Rate(name, r)))
		}
		if b := eng.backlogs[name]; b != nil {
			opts = append(opts, policy.WithBacklog(b, t.Backlog.MaxWaiting))
		}
		p := policy.Wrap(eng.tracer.Attempts(sink), pc, dlSink, opts...)
		switch {
		case fleetWide:
			eng.c.fleet.Concurrency(name, pc.Concurrency, p.SetConcurrency)
		case eng.c.fleet != nil:
			eng.c.fleet.Concurrency(name, 0, nil)
		}
		b := &builtTarget{key: key, typ: t.Type, sink: sink, policy: p, wrapped: eng.tracer.Sink(p)}
		built[name] = b
		return b, nil
	}
	for _, t := range cfg.Targets {
		if _, err := build(t.Name); err != nil {
			return built, stats, err
		}
	}
	for _, r := range refs {
		r.sink = built[r.name].wrapped
	}
	return built, stats, nil
}

// deadLetterRef is the dead-letter sink of a target whose dead letters
// lead back to a target that was still being built; buildTargets binds it.
type deadLetterRef struct {
	name string
	sink router.Sink
}

func (r *deadLetterRef) Name() string { return r.name }

func (r *deadLetterRef) Deliver(ctx context.Context, d *router.Delivery) error {
	return r.sink.Deliver(ctx, d)
}

// commitStats makes the counters of targets built anew theirs for good,
// once what was built runs.
func (eng *engine) commitStats(stats map[string]*policy.Stats) {
	maps.Copy(eng.stats, stats)
}

// targetKey identifies what a target was built from: its config and
// policy, then those of its dead letter, and so on until a target repeats.
// The config holds secrets, so keys stay in memory and are never shown.
func targetKey(targets map[string]config.Target, policies map[string]*policy.Config, name string) string {
	var key []string
	for seen := map[string]bool{}; name != "" && !seen[name]; name = policies[targets[name].Policy].DeadLetter {
		seen[name] = true
		t := targets[name]
		b, err := json.Marshal(struct {
			Type   string
			Config config.Kind
			Policy policy.Config
		}{t.Type, t.Config, *policies[t.Policy]})
		if err != nil {
			panic(fmt.Sprintf("target %s: config does not marshal: %v", t.Name, err)) // a wiring bug: every Kind is plain data
		}
		key = append(key, string(b))
	}
	return strings.Join(key, "\x00")
}

// routes are the rules of cfg with the sinks of targets.
func (eng *engine) routes(cfg *config.Config, targets map[string]*builtTarget) (router.Routes, error) {
	table, err := router.NewTable(cfg.RouterRules())
	if err != nil {
		return router.Routes{}, err
	}
	r := router.Routes{Table: table, Sinks: map[string]router.Sink{}, DeadLetters: map[string]router.Sink{}}
	for name, b := range targets {
		r.Sinks[name] = b.wrapped
	}
	for _, s := range cfg.Sources {
		if dl, ok := s.Config.(interface{ DeadLetterTarget() string }); ok && dl.DeadLetterTarget() != "" {
			r.DeadLetters[s.Name] = r.Sinks[dl.DeadLetterTarget()]
		}
	}
	return r, nil
}

// state is what metrics and /status read.
func (eng *engine) state(cfg *config.Config, d *router.Dispatcher) *telemetry.State {
	s := &telemetry.State{Dispatcher: d, MaxInFlight: cfg.MaxInFlight, Sources: eng.sources, Ledger: d.LedgerStats()}
	if f := eng.c.fleet; f != nil {
		s.Fleet = func(ctx context.Context) *telemetry.FleetStatus { return fleetStatus(ctx, f) }
	}
	for _, t := range cfg.Targets {
		b := eng.targets[t.Name]
		tt := telemetry.Target{
			Name: t.Name, Type: t.Type, Concurrency: b.policy.Config().Concurrency, Stats: b.policy.Stats(), Breaker: b.policy.BreakerState,
		}
		if bl := eng.backlogs[t.Name]; bl != nil {
			depth, _ := bl.(router.BacklogDepth)
			tt.Backlog = eng.backlogViews[t.Name]
			if tt.Backlog == nil {
				tt.Backlog = telemetry.NewBacklog(bl.String(), d.BacklogStats(t.Name), depth)
				eng.backlogViews[t.Name] = tt.Backlog
			}
		}
		s.Targets = append(s.Targets, tt)
	}
	return s
}

// reload reads the config again. A valid config whose rules, targets or
// policies changed replaces them: targets that did not change keep
// running as they are, messages being handled finish with the old ones,
// and sinks no longer used are closed once they have. An invalid config,
// or one that changes what only a restart can (sources, nats, aws, admin,
// max_in_flight, shutdown_grace, tracing, log), is rejected and the old
// one kept.
func (eng *engine) reload(ctx context.Context) error {
	eng.mu.Lock()
	defer eng.mu.Unlock()
	err := eng.reloadLocked(ctx)
	if errors.Is(err, telemetry.ErrNotRunning) {
		eng.log.Warn("config reload ignored: switchyard is starting or draining")
		return err
	}
	eng.metrics.Reloaded(err == nil)
	eng.statusMu.Lock()
	defer eng.statusMu.Unlock()
	if err != nil {
		eng.status.LastReject = err.Error()
		eng.log.Error("config reload rejected: the running config is kept", "config", eng.cfg.File, "error", err)
		return err
	}
	eng.status = telemetry.ConfigStatus{File: eng.cfg.File, LoadedAt: time.Now(), Reloads: eng.status.Reloads + 1}
	return nil
}

func (eng *engine) reloadLocked(ctx context.Context) error {
	d := eng.d.Load()
	if d == nil || eng.draining.Load() || eng.closed {
		return fmt.Errorf("%w: starting or draining", telemetry.ErrNotRunning)
	}
	cfg, err := eng.load(ctx)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			lines := make([]string, len(errs))
			for i, e := range errs {
				lines[i] = e.Error()
			}
			return fmt.Errorf("invalid config:\n%s", strings.Join(lines, "\n"))
		}
		return err
	}
	if changed := restartOnly(eng.cfg, cfg); len(changed) > 0 {
		return fmt.Errorf("%s changed, which takes a restart (a reload replaces rules, targets and policies)", strings.Join(changed, ", "))
	}
	// NATS and AWS are opened at startup, as the config then needed them:
	// a reload does not open them (readiness reads them unguarded).
	if needsNATS(cfg) && eng.c.bus == nil {
		return errors.New("the new config uses NATS, which the running one does not: that takes a restart")
	}
	if needsAWS(cfg) && !eng.c.awsLoaded {
		return errors.New("the new config calls AWS, which the running one does not: that takes a restart")
	}
	for _, t := range cfg.Targets {
		if b, ok := eng.backlogs[t.Name].(*backlog.SQS); ok {
			if err := b.CheckMaxAge(cfg.Policies[t.Policy].Retry.MaxAge); err != nil {
				return fmt.Errorf("target %s: backlog: %w", t.Name, err)
			}
		}
	}
	targets, stats, err := eng.buildTargets(cfg, eng.targets)
	if err != nil {
		eng.reportLimits()
		eng.closeSinks(targets, eng.targets)
		return err
	}
	routes, err := eng.routes(cfg, targets)
	if err == nil {
		var retired <-chan struct{}
		if retired, err = d.Reload(routes); err == nil {
			old := eng.targets
			eng.retiring.Go(func() {
				<-retired
				eng.closeSinks(old, targets)
			})
		}
	}
	if err != nil {
		eng.closeSinks(targets, eng.targets)
		eng.reportLimits()
		return err
	}
	eng.commitStats(stats)
	var added, changed, removed []string
	for name, b := range targets {
		switch o := eng.targets[name]; {
		case o == nil:
			added = append(added, name)
		case o != b:
			changed = append(changed, name)
		}
	}
	for name := range eng.targets {
		if targets[name] == nil {
			removed = append(removed, name)
		}
	}
	eng.targets, eng.cfg = targets, cfg
	eng.metrics.SetState(eng.state(cfg, d))
	eng.log.Info("config reloaded", "config", cfg.File, "rules", len(cfg.Rules), "targets", len(cfg.Targets),
		"targets_added", sorted(added), "targets_changed", sorted(changed), "targets_removed", sorted(removed))
	return nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return append([]string{}, s...) // [] rather than null in the log
}

// closeSinks closes the sinks of these targets that keep does not use.
func (eng *engine) closeSinks(these, keep map[string]*builtTarget) {
	in := map[*builtTarget]bool{}
	for _, b := range keep {
		in[b] = true
	}
	var closers []any
	for _, name := range slices.Sorted(maps.Keys(these)) {
		if b := these[name]; !in[b] {
			closers = append(closers, b.sink)
		}
	}
	closeAll(closers, eng.log)
}

// restartOnly names the settings that differ between old and new and
// that only a restart applies.
func restartOnly(old, new *config.Config) []string {
	var changed []string
	for _, f := range []struct {
		name     string
		old, new any
	}{
		{"sources", old.Sources, new.Sources}, {"nats", old.NATS, new.NATS}, {"aws", old.AWS, new.AWS},
		{"admin", old.Admin, new.Admin}, {"max_in_flight", old.MaxInFlight, new.MaxInFlight}, {"max_in_flight_bytes", old.MaxInFlightBytes, new.MaxInFlightBytes},
		{"shutdown_grace", old.ShutdownGrace, new.ShutdownGrace}, {"tracing", old.Tracing, new.Tracing}, {"log", old.Log, new.Log},
		{"ledger", old.Ledger, new.Ledger}, {"fleet", old.Fleet, new.Fleet}, {"a target's backlog", backlogsOf(old), backlogsOf(new)},
	} {
		a, _ := json.Marshal(f.old)
		b, _ := json.Marshal(f.new)
		if string(a) != string(b) {
			changed = append(changed, f.name)
		}
	}
	return changed
}

// backlogsOf maps the targets that have a backlog to it.
func backlogsOf(c *config.Config) map[string]*backlog.Config {
	out := map[string]*backlog.Config{}
	for _, t := range c.Targets {
		if t.Backlog != nil {
			out[t.Name] = t.Backlog
		}
	}
	return out
}

// notReady says why the daemon is not ready; nothing when it is.
func (eng *engine) notReady() []string {
	if eng.draining.Load() {
		return []string{"draining"}
	}
	d := eng.d.Load()
	if d == nil || !d.Receiving() {
		return []string{eng.startingWhy()}
	}
	var why []string
	if eng.c.bus != nil && !eng.c.bus.Conn().IsConnected() {
		why = append(why, "nats: not connected")
	}
	for _, s := range eng.sources {
		st := d.SourceStats(s.Name)
		if st == nil || st.FailingReceives.Load() < failingReceives {
			continue
		}
		msg := fmt.Sprintf("source %s: the last %d receives failed", s.Name, st.FailingReceives.Load())
		if e := st.LastError.Load(); e != nil {
			msg += ": " + e.Error
		}
		why = append(why, msg)
	}
	return why
}

func (eng *engine) configStatus() telemetry.ConfigStatus {
	eng.statusMu.Lock()
	defer eng.statusMu.Unlock()
	return eng.status
}

// reportLimits puts the running policies' concurrency back in their
// counters, which policies built for a rejected reload overwrote.
func (eng *engine) reportLimits() {
	for _, b := range eng.targets {
		b.policy.ReportLimit()
	}
}

// close closes the sources and NATS, after the sinks, and waits for sinks
// retired by reloads.
func (eng *engine) close() {
	eng.mu.Lock()
	defer eng.mu.Unlock()
	eng.closed = true
	eng.retiring.Wait()
	// closeAll closes the last first: sources, then the sinks they feed,
	// then NATS, which sources and sinks may use.
	var all []any
	if eng.tracer != nil {
		all = append(all, eng.tracer) // flushes the spans, last
	}
	if eng.c != nil && eng.c.bus != nil {
		all = append(all, eng.c.bus)
	}
	if eng.c != nil && eng.c.fleet != nil {
		all = append(all, eng.c.fleet) // before NATS: it gives its leases up
	}
	for _, name := range slices.Sorted(maps.Keys(eng.targets)) {
		all = append(all, eng.targets[name].sink)
	}
	closeAll(append(all, eng.closers...), eng.log)
}

// fleetStatus is the fleet's roster for /status.
func fleetStatus(ctx context.Context, f *fleet.Fleet) *telemetry.FleetStatus {
	st := &telemetry.FleetStatus{Self: f.ID(), Members: []telemetry.FleetMember{}}
	for _, m := range f.Members(ctx) {
		tm := telemetry.FleetMember{ID: m.ID, Host: m.Host, Version: m.Version, Started: m.Started, Seen: m.Seen, Leases: m.Leases}
		if len(m.Shares) > 0 {
			tm.Shares = map[string]telemetry.FleetShare{}
			for target, s := range m.Shares {
				tm.Shares[target] = telemetry.FleetShare{Concurrency: s.Concurrency, Rate: s.Rate, Fallback: s.Fallback}
			}
		}
		st.Members = append(st.Members, tm)
	}
	return st
}

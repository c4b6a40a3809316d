package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/redrive"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	natssink "github.com/switchyard-dev/switchyard/sinks/nats"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
)

// cmdRedrive sends dead letters back to the targets that failed them (or
// to --to), through the targets' policies as run builds them, and deletes
// each once it was delivered, or once its new dead letter (attempts
// counted) was written. Exit 0 when every dead letter taken was redriven
// or found delivered already; 1 when some failed again, were skipped for
// another reason than the pattern, or the run was interrupted.
func cmdRedrive(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "redrive")
	file := fs.String("c", "", configFlagUsage)
	from := fs.String("from", "", "where the dead letters are: a target of the config (an sqs target: its queue; a nats target with jetstream: its stream), or an SQS queue URL (required)")
	to := fs.String("to", "", "send every dead letter to this target of the config instead of the one in its record")
	patternArg := fs.String("pattern", "", `redrive only the dead letters this event pattern matches (JSON, @FILE or - for stdin), matched against the record's fields and the body, such as {"target": ["billing"], "body": {"detail-type": ["Invoice Paid"]}}`)
	rateArg := fs.String("rate", "", "at most this many sends, over all targets, such as 50/s (default: each target's policy rate, else 10/s)")
	maxN := fs.Int("max", 0, "stop after this many dead letters are taken (0: no limit)")
	dry := fs.Bool("dry-run", false, "list what would be redriven, and send and delete nothing")
	level := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	format := fs.String("log-format", "", "log format: json or text (default text on a terminal, json otherwise)")
	if err := parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	if *from == "" {
		return exitUsage, fmt.Errorf("%w: --from is required: a target that holds dead letters, or an SQS queue URL", errUsage)
	}
	if *maxN < 0 {
		return exitUsage, fmt.Errorf("%w: --max must be 0 (no limit) or more, got %d", errUsage, *maxN)
	}
	var perSecond float64
	if *rateArg != "" {
		r, err := policy.ParseRate(*rateArg)
		if err != nil {
			return exitUsage, fmt.Errorf("%w: --rate: %v", errUsage, err)
		}
		perSecond = r.PerSecond()
	}
	var pattern *router.Pattern
	if *patternArg != "" {
		b, err := readArg(e, *patternArg)
		if err != nil {
			return exitUsage, fmt.Errorf("--pattern: %w", err)
		}
		if pattern, err = router.ParsePattern(b); err != nil {
			return exitUsage, fmt.Errorf("%w: --pattern: %v", errUsage, err)
		}
	}
	if _, err := newLogger(io.Discard, *level, *format); err != nil {
		return exitUsage, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	targets := map[string]config.Target{}
	for _, t := range cfg.Targets {
		targets[t.Name] = t
	}
	if *to != "" {
		if _, ok := targets[*to]; !ok {
			return exitUsage, fmt.Errorf("%w: --to %q is not a target of %s (targets: %s)", errUsage, *to, cfg.File, strings.Join(slices.Sorted(maps.Keys(targets)), ", "))
		}
	}
	src, err := redriveSource(cfg, targets, *from)
	if err != nil {
		return exitUsage, fmt.Errorf("%w: --from: %v", errUsage, err)
	}

	out := &progressWriter{w: e.stderr}
	if f, ok := e.stderr.(*os.File); ok && telemetry.IsTerminal(f) {
		out.term = true
	}
	log, err := newLogger(out, *level, *format)
	if err != nil {
		return exitUsage, fmt.Errorf("%w: %v", errUsage, err)
	}
	if s, ok := log.Handler().(*telemetry.Summarizer); ok {
		defer s.Close()
	}
	if cfg.NATS.Embedded() && needsNATS(cfg) {
		if err := shareEmbeddedNATS(ctx, cfg); err != nil {
			return exitFail, err
		}
	}
	if src.queueURL != "" && !needsAWS(cfg) {
		return exitUsage, fmt.Errorf("%w: --from %s is an SQS queue, but the config calls no AWS service: give it an aws block and an sqs target for the queue", errUsage, *from)
	}

	// The targets, as run builds them, with every dead letter going back
	// where it came from.
	eng := newEngine(e, log, nil)
	defer eng.close()
	eng.c = &clients{endpoints: cfg.AWS.Endpoints, maxInFlight: cfg.MaxInFlight, shared: !cfg.NATS.Embedded(), replicas: cfg.Ledger.Replicas}
	if eng.tracer, err = telemetry.NewTracer(cfg.Tracing, os.Getenv, versionString()); err != nil {
		return exitFail, err
	}
	if err := eng.openClients(ctx, cfg); err != nil {
		return exitFail, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = eng.openLedger(octx, cfg)
	cancel()
	if err != nil {
		return exitFail, err
	}
	dls := &redrive.DeadLetters{}
	eng.deadLetter = dls
	eng.mu.Lock()
	built, _, err := eng.buildTargets(cfg, nil)
	eng.targets = built
	eng.mu.Unlock()
	if err != nil {
		return exitFail, err
	}
	// Letters stay invisible for longer than the calls of their target may
	// take (timeout × attempts), and are extended every half of that.
	sinks, rates := map[string]router.Sink{}, map[string]float64{}
	hold := minHold
	for name, b := range built {
		sinks[name] = b.wrapped
		pc := b.policy.Config()
		rates[name] = pc.Rate.PerSecond()
		if name != src.target && (*to == "" || name == *to) {
			hold = max(hold, pc.Timeout*time.Duration(pc.Retry.Attempts)+5*time.Second)
		}
	}

	var place redrive.Place
	switch {
	case src.target != "" && src.queueURL == "":
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		place, err = redrive.OpenJetStream(octx, eng.c.bus.JetStream(), src.subject, durableFor(src.target), hold)
		cancel()
		if err != nil {
			return exitFail, fmt.Errorf("--from %s: %w", *from, err)
		}
		dls.Writer = built[src.target].wrapped
	default:
		place = redrive.NewSQS(eng.c.sqs(true), src.queueURL)
		if src.target != "" {
			dls.Writer = built[src.target].wrapped
		} else {
			q, _ := names.ParseQueueURL(src.queueURL)
			dls.Writer = policy.Wrap(sqssink.New(q.Name, sqssink.Config{QueueURL: src.queueURL}, eng.c.sqs(false)), policy.Default(), nil, policy.WithLogger(log))
		}
	}
	rebuild, err := redrive.NewRebuilder(cfg)
	if err != nil {
		return exitFail, err
	}
	r := redrive.New(redrive.Config{
		Place: place, DeadLetters: dls, Targets: sinks, Rates: rates, Rebuild: rebuild, Ledger: eng.ledger,
		To: *to, Pattern: pattern, Rate: perSecond, Max: *maxN, DryRun: *dry, Listing: e.stdout,
		Hold: hold, Grace: cfg.ShutdownGrace, Log: log,
	})
	if *dry {
		fmt.Fprintf(e.stdout, "dry run: nothing is sent or deleted\n")
	}
	stopProgress := out.run(r.Stats())
	runErr := r.Run(ctx)
	stopProgress()
	summarize(e.stdout, place, dls.Name(), r.Stats(), *dry, ctx.Err() != nil)
	switch {
	case runErr != nil:
		return exitFail, runErr
	case r.Stats().Failed() || ctx.Err() != nil:
		return exitFail, nil
	}
	return exitOK, nil
}

// minHold is the shortest time dead letters stay invisible while they
// are worked on.
const minHold = 10 * time.Second

// redriveFrom is where --from points.
type redriveFrom struct {
	target   string // the config's target, if it is one
	queueURL string // an SQS queue
	subject  string // a JetStream subject (a nats target)
}

// redriveSource resolves --from: a target that holds dead letters, or an
// SQS queue URL (an sqs target's, when one has it).
func redriveSource(cfg *config.Config, targets map[string]config.Target, from string) (redriveFrom, error) {
	if t, ok := targets[from]; ok {
		switch c := t.Config.(type) {
		case *sqssink.Config:
			return redriveFrom{target: t.Name, queueURL: c.QueueURL}, nil
		case *natssink.Config:
			if !c.JetStream {
				return redriveFrom{}, fmt.Errorf("target %s publishes with core NATS, which keeps nothing to read back: dead letters are read from nats targets with jetstream: true", t.Name)
			}
			return redriveFrom{target: t.Name, subject: c.Subject}, nil
		}
		return redriveFrom{}, fmt.Errorf("target %s is of type %s: dead letters are read back from sqs targets and nats targets with jetstream: true", t.Name, t.Type)
	}
	if _, err := names.ParseQueueURL(from); err != nil {
		var holders []string
		for _, t := range cfg.Targets {
			if c, ok := t.Config.(*natssink.Config); t.Type == "sqs" || ok && c.JetStream {
				holders = append(holders, t.Name)
			}
		}
		have := "none"
		if len(holders) > 0 {
			have = strings.Join(holders, ", ")
		}
		return redriveFrom{}, fmt.Errorf("%q is neither a target of %s that holds dead letters (%s) nor an SQS queue URL", from, cfg.File, have)
	}
	for _, t := range cfg.Targets {
		if c, ok := t.Config.(*sqssink.Config); ok && c.QueueURL == from {
			return redriveFrom{target: t.Name, queueURL: from}, nil
		}
	}
	return redriveFrom{queueURL: from}, nil
}

// durableFor is the JetStream durable consumer of redrives from a target.
func durableFor(target string) string {
	return "switchyard_redrive_" + strings.Map(func(r rune) rune {
		if r == '.' {
			return '_'
		}
		return r
	}, target)
}

// shareEmbeddedNATS points the config at the embedded NATS server of a
// daemon running on this host, which holds the ledger, when one serves
// nats.listen: its store cannot be opened twice. With nats.listen none
// it cannot be reached, so a daemon answering on admin.listen is an error.
func shareEmbeddedNATS(ctx context.Context, cfg *config.Config) error {
	if cfg.NATS.Listen != bus.ListenNone {
		d := net.Dialer{Timeout: time.Second}
		if conn, err := d.DialContext(ctx, "tcp", cfg.NATS.Listen); err == nil {
			conn.Close()
			cfg.NATS = bus.Config{URL: "nats://" + cfg.NATS.Listen}
		}
		return nil
	}
	if cfg.Admin.Listen == "none" {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, "http://"+cfg.Admin.Listen+"/healthz", nil)
	if err != nil {
		return nil
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	res.Body.Close()
	return fmt.Errorf("a switchyard daemon answers on %s with the embedded NATS server, and nats.listen is none: its store (%s) cannot be opened twice; stop it, or give it nats.listen so that redrive connects to it", cfg.Admin.Listen, cfg.NATS.StoreDir)
}

// summarize writes what became of the dead letters.
func summarize(w io.Writer, place redrive.Place, dlName string, st *redrive.Stats, dry, interrupted bool) {
	verb := ""
	if dry {
		verb = " (would be)"
	}
	fmt.Fprintf(w, "redrive from %s\n", place)
	line := func(what string, n int64, note string) {
		fmt.Fprintf(w, "  %-20s %6d%s\n", what+":", n, note)
	}
	line("redriven"+verb, st.Redriven.Load(), "")
	line("already delivered", st.AlreadyDelivered.Load(), map[bool]string{true: " (would be deleted)", false: " (deleted)"}[dry])
	line("failed again", st.FailedAgain.Load(), fmt.Sprintf(" (written back to %s with their attempts)", dlName))
	line("skipped by pattern", st.SkippedByPattern.Load(), "")
	line("skipped", st.Skipped.Load(), "")
	reasons := st.Reasons()
	for _, why := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Fprintf(w, "  %27d  %s\n", reasons[why], why)
	}
	if n := st.Duplicates.Load(); n > 0 {
		line("duplicates", n, " (dead letters of a delivery that failed again in this run: deleted, its new one stands for them)")
	}
	if n := st.Left.Load(); n > 0 {
		why := " (beyond --max)"
		if interrupted {
			why = " (interrupted: nothing deleted that was not delivered)"
		}
		line("left", n, why)
	}
	if n := st.NotDeleted.Load(); n > 0 {
		line("not deleted", n, " (delivered, but the delete failed: the next run finds them delivered in the ledger)")
	}
}

// progressWriter is stderr while a redrive runs: on a terminal the
// counts on one line, redrawn in place, with log lines written above it;
// otherwise log lines as they come and the counts every 5 seconds.
type progressWriter struct {
	w    io.Writer
	term bool

	mu    sync.Mutex
	shown string
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown != "" {
		io.WriteString(p.w, "\r\033[K")
	}
	n, err := p.w.Write(b)
	if p.shown != "" {
		io.WriteString(p.w, p.shown)
	}
	return n, err
}

// run shows the counts until the returned stop is called.
func (p *progressWriter) run(st *redrive.Stats) (stop func()) {
	every := 5 * time.Second
	if p.term {
		every = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			p.show(st)
		}
	})
	return func() {
		close(done)
		wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.shown != "" {
			io.WriteString(p.w, "\r\033[K")
			p.shown = ""
		}
	}
}

func (p *progressWriter) show(st *redrive.Stats) {
	line := fmt.Sprintf("redrive: %d taken, %d in flight: %d redriven, %d already delivered, %d failed again, %d skipped by pattern, %d skipped",
		st.Received.Load()-st.Own.Load(), st.InFlight.Load(), st.Redriven.Load(), st.AlreadyDelivered.Load(), st.FailedAgain.Load(),
		st.SkippedByPattern.Load(), st.Skipped.Load())
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.term {
		fmt.Fprintln(p.w, line)
		return
	}
	io.WriteString(p.w, "\r\033[K"+line)
	p.shown = line
}

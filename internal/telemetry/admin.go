package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/router"
)

// ErrNotRunning is what Reload returns while the daemon starts or drains:
// POST /reload answers 503.
var ErrNotRunning = errors.New("not running")

// reloadTimeout bounds a reload (fetching the config included), whoever
// asked for it: an impatient client does not cut it short.
const reloadTimeout = 2 * time.Minute

// AdminConfig configures the admin endpoint.
type AdminConfig struct {
	// Listen is host:port; port 0 picks a free one (see Admin.Addr).
	Listen string
	// Version is the running build's version.
	Version string
	// Metrics is what /metrics and /status read. Required.
	Metrics *Metrics
	// NotReady returns why the daemon is not ready, or nothing when it is.
	// Required.
	NotReady func() []string
	// NotStarted returns why the daemon has not started yet, or nothing
	// once it has, which it then keeps returning whatever its
	// dependencies do: /healthz answers 503 until then, and 200 from then
	// on. Nil: started from the first request.
	NotStarted func() []string
	// Reload reloads the config and returns the problems that kept the new
	// one out, or nil. Nil: POST /reload answers 501.
	Reload func(ctx context.Context) error
	// Config returns the running config's file and when it was loaded.
	Config func() ConfigStatus
	Logger *slog.Logger
	// Pprof serves net/http/pprof's handlers under /debug/pprof/, to
	// loopback peers only.
	Pprof bool
}

// Admin is the admin endpoint: /metrics, /healthz, /readyz, /status and
// POST /reload.
type Admin struct {
	cfg     AdminConfig
	ln      net.Listener
	srv     *http.Server
	served  chan error
	rates   rates
	started time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// ListenAdmin binds the admin endpoint and starts serving. It fails at once
// when the address cannot be bound.
func ListenAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	a := &Admin{cfg: cfg, ln: ln, served: make(chan error, 1), started: time.Now(), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.Registry(), promhttp.HandlerOpts{ErrorLog: slogPrinter{cfg.Logger}}))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /status", a.status)
	mux.Handle("POST /reload", loopbackOnly(http.HandlerFunc(a.reload)))
	if cfg.Pprof {
		mux.Handle("GET /debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("GET /debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("GET /debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
	}
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	go func() { a.served <- a.srv.Serve(ln) }()
	a.wg.Go(a.sample)
	return a, nil
}

// Addr is the address the endpoint listens on.
func (a *Admin) Addr() string { return a.ln.Addr().String() }

// Close stops serving within ctx. It is idempotent.
func (a *Admin) Close(ctx context.Context) error {
	if a.closed.Swap(true) {
		return nil
	}
	close(a.stop)
	a.wg.Wait()
	err := a.srv.Shutdown(ctx)
	if serr := <-a.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// sample records the counters every second for the rates in /status.
func (a *Admin) sample() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		a.rates.add(time.Now(), counters(a.cfg.Metrics.State()))
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// healthz answers whether the process works: 503 until it has started
// (once ready), 200 from then on, while its sources fail or it drains
// included. A container health check asks it: a dependency's outage makes
// the daemon not ready, and must not get it replaced.
func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.NotStarted != nil {
		if why := a.cfg.NotStarted(); len(why) > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not started:", strings.Join(why, "; "))
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	if why := a.cfg.NotReady(); len(why) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", strings.Join(why, "; "))
		return
	}
	fmt.Fprintln(w, "ready")
}

func (a *Admin) status(w http.ResponseWriter, _ *http.Request) {
	s := a.Status()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s)
}

// Status returns the figures /status serves.
func (a *Admin) Status() *Status {
	now := time.Now()
	why := a.cfg.NotReady()
	out := &Status{Version: a.cfg.Version, Started: a.started, Ready: len(why) == 0, NotReady: why, RateWindow: RateWindow.Seconds(),
		Sources: []SourceStatus{}, Rules: []RuleStatus{}, Targets: []TargetStatus{}}
	if a.cfg.Config != nil {
		out.Config = a.cfg.Config()
	}
	s := a.cfg.Metrics.State()
	if s == nil {
		return out
	}
	out.InFlight, out.MaxInFlight = s.Dispatcher.Stats().InFlight.Load(), s.MaxInFlight
	for _, src := range s.Sources {
		ss := s.Dispatcher.SourceStats(src.Name)
		if ss == nil {
			continue
		}
		out.Sources = append(out.Sources, SourceStatus{
			Name: src.Name, Type: src.Type, Received: ss.Received.Load(), Acked: ss.Acked.Load(), Nacked: ss.Nacked.Load(),
			Unmatched: ss.Unmatched.Load(), ReceiveErrors: ss.ReceiveErrors.Load(),
			Rate: a.rates.rate("s/"+src.Name, now, ss.Received.Load()), LastError: lastError(ss.LastError.Load()),
		})
	}
	s.Dispatcher.EachRule(func(name string, rs *router.RuleStats) {
		n := rs.Matched.Load()
		out.Rules = append(out.Rules, RuleStatus{Name: name, Matched: n, Rate: a.rates.rate("r/"+name, now, n)})
	})
	for _, t := range s.Targets {
		ts := t.Stats
		out.Targets = append(out.Targets, TargetStatus{
			Name: t.Name, Type: t.Type, InFlight: ts.InFlight.Load(), Waiting: ts.Waiting.Load(), Limit: ts.Limit.Load(),
			Concurrency: t.Concurrency, Breaker: t.Breaker(), Attempts: ts.Attempts.Load(), Delivered: ts.Delivered.Load(),
			DeadLettered: ts.DeadLettered.Load(), Unresolved: ts.Unresolved.Load(), Retried: ts.Retried.Load(),
			Throttled: ts.Throttled.Load(), Rate: a.rates.rate("t/"+t.Name, now, ts.Delivered.Load()),
			LastError: lastError(ts.LastError.Load()), Backlog: backlogStatus(t),
		})
		if s.Ledger != nil {
			out.Targets[len(out.Targets)-1].LedgerHits = s.Ledger.HitsOf(t.Name)
		}
	}
	if s.Fleet != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		out.Fleet = s.Fleet(ctx)
		cancel()
	}
	if l := s.Ledger; l != nil {
		out.Ledger = &LedgerStatus{Lookups: l.Lookups.Load(), Hits: l.Hits.Load(), Writes: l.Writes.Load(), Errors: l.Errors.Load(),
			Skipped: l.Skipped.Load(), LastError: lastError(l.LastError.Load())}
	}
	return out
}

func backlogStatus(t Target) *BacklogStatus {
	b := t.Backlog
	if b == nil {
		return nil
	}
	n, age, err := b.Depth()
	st := &BacklogStatus{Kind: b.Kind, Depth: n, AgeSeconds: age.Seconds(), Backlogged: t.Stats.Backlogged.Load(),
		Drained: b.Stats.Drained.Load(), Returned: b.Stats.Returned.Load(), Corrupt: b.Stats.Corrupt.Load(),
		Errors: t.Stats.BacklogErrors.Load(), LastError: lastError(t.Stats.LastBacklogError.Load())}
	if err != nil {
		st.DepthError = err.Error()
	}
	return st
}

func lastError(e *router.LastError) *LastError {
	if e == nil {
		return nil
	}
	return &LastError{At: e.At, Error: e.Error}
}

// loopbackOnly refuses peers other than loopback, whatever address the
// endpoint listens on: a reload changes what runs, and profiles reveal
// internals and cost CPU, so they are for the host itself.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			http.Error(w, r.URL.Path+" is served to loopback peers only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reload answers POST /reload: 200 when the new config runs, 422 with its
// problems when it was rejected, 503 while starting or draining.
func (a *Admin) reload(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Reload == nil {
		http.Error(w, "reload is not supported", http.StatusNotImplemented)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), reloadTimeout)
	defer cancel()
	if err := a.cfg.Reload(ctx); err != nil {
		code := http.StatusUnprocessableEntity
		if errors.Is(err, ErrNotRunning) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	fmt.Fprintln(w, "reloaded")
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slogPrinter lets promhttp report errors through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }

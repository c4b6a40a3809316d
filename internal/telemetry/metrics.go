// Package telemetry is how switchyard is watched: Prometheus metrics, the
// /status figures, and the admin endpoint that serves them with /healthz
// and /readyz.
package telemetry

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
)

// State is what the daemon runs: the dispatcher and the sources and
// targets it was built with. A reload stores a new State; scrapes and
// /status read the latest.
type State struct {
	Dispatcher  *router.Dispatcher
	MaxInFlight int
	Sources     []Source
	Targets     []Target
	// Ledger holds the ledger's counters; nil when it is off.
	Ledger *router.LedgerStats
	// Fleet reads the fleet's roster; nil without NATS.
	Fleet func(ctx context.Context) *FleetStatus
}

// Source is a source as telemetry sees it.
type Source struct {
	Name, Type string
	// HTTP holds the request counters of an http source, else nil.
	HTTP *httpsource.Stats
}

// Target is a target as telemetry sees it: its policy's counters and its
// circuit breaker.
type Target struct {
	Name, Type  string
	Concurrency int
	Stats       *policy.Stats
	// Breaker returns the breaker's state: closed, half-open or open.
	Breaker func() string
	// Backlog is the target's backlog; nil when it has none.
	Backlog *Backlog
}

// Metrics holds switchyard's Prometheus registry. Counters and gauges are
// read from the daemon's own atomic counters when scraped, so they cost
// the event path nothing; latency histograms are observed as deliveries
// happen, through Observer.
type Metrics struct {
	reg       *prometheus.Registry
	state     atomic.Pointer[State]
	attempt   *prometheus.HistogramVec
	delivered *prometheus.HistogramVec
	reloads   *prometheus.CounterVec
	reloaded  prometheus.Gauge
	ready     func() bool

	mu        sync.Mutex
	observers map[string]*Observer
}

// latencyBuckets span a fast Lambda call to a slow RunTask, in seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics returns a registry with switchyard's metrics, the Go runtime's
// and the process's. ready reports readiness for switchyard_ready.
func NewMetrics(version string, ready func() bool) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), ready: ready, observers: map[string]*Observer{}}
	m.attempt = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchyard_target_attempt_duration_seconds",
		Help:    "How long calls to a target took, by outcome: ok, retryable, throttled or permanent.",
		Buckets: latencyBuckets,
	}, []string{"target", "outcome"})
	m.delivered = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchyard_delivery_latency_seconds",
		Help:    "Time from receiving a message to delivering it to a target, retries and waits included.",
		Buckets: latencyBuckets,
	}, []string{"target"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_config_reloads_total",
		Help: "Config reloads, by result: ok or rejected.",
	}, []string{"result"})
	m.reloaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchyard_config_loaded_timestamp_seconds",
		Help: "When the running config was loaded, as a Unix time.",
	})
	m.reloaded.SetToCurrentTime()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchyard_build_info",
		Help:        "The running build: always 1, with its version.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.attempt, m.delivered, m.reloads, m.reloaded, build, (*collector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry, for the /metrics handler.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetState makes s what scrapes and /status read.
func (m *Metrics) SetState(s *State) { m.state.Store(s) }

// State returns the latest State, or nil before the first.
func (m *Metrics) State() *State { return m.state.Load() }

// Reloaded counts a reload by its result.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.reloaded.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("rejected").Inc()
}

// Observer returns the latency observer of a target, the same one for the
// same name, for policy.WithObserver.
func (m *Metrics) Observer(target string) *Observer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.observers[target]; o != nil {
		return o
	}
	o := &Observer{delivered: m.delivered.WithLabelValues(target)}
	for c, name := range outcomes {
		o.attempt[c] = m.attempt.WithLabelValues(target, name)
	}
	m.observers[target] = o
	return o
}

// outcomes name attempt outcomes: ok, then the error classes.
var outcomes = [...]string{"ok", "retryable", "throttled", "permanent"}

// Observer records a target's latencies in histograms. It is safe for
// concurrent use and does not allocate.
type Observer struct {
	attempt   [len(outcomes)]prometheus.Observer
	delivered prometheus.Observer
}

var _ policy.Observer = (*Observer)(nil)

// ObserveAttempt records one call to the target.
func (o *Observer) ObserveAttempt(took time.Duration, err error) {
	i := 0
	if err != nil {
		switch router.ClassOf(err) {
		case router.Throttled:
			i = 2
		case router.Permanent:
			i = 3
		default:
			i = 1
		}
	}
	o.attempt[i].Observe(took.Seconds())
}

// ObserveDelivered records a delivery's latency from receipt.
func (o *Observer) ObserveDelivered(since time.Duration) { o.delivered.Observe(since.Seconds()) }

// collector reads the daemon's counters at scrape time.
type collector Metrics

type desc struct {
	*prometheus.Desc
	typ prometheus.ValueType
}

func counter(name, help string, labels ...string) desc {
	return desc{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue}
}

func gauge(name, help string, labels ...string) desc {
	return desc{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue}
}

var (
	dReady         = gauge("switchyard_ready", "1 when /readyz answers ready: running, receiving, not draining.")
	dInFlight      = gauge("switchyard_messages_in_flight", "Source messages being worked on.")
	dMaxInFlight   = gauge("switchyard_max_in_flight", "The max_in_flight budget.")
	dBytesInFlight = gauge("switchyard_bytes_in_flight", "Bytes of the bodies of the source messages being worked on.")
	dMaxBytes      = gauge("switchyard_max_in_flight_bytes", "The max_in_flight_bytes budget.")
	dSettleErrors  = counter("switchyard_settle_errors_total", "Acks and nacks that failed at the source.")
	dSrcReceived   = counter("switchyard_source_received_messages_total", "Messages received, by source.", "source")
	dSrcAcked      = counter("switchyard_source_acked_messages_total", "Messages acked (every delivery resolved, or none matched), by source.", "source")
	dSrcNacked     = counter("switchyard_source_nacked_messages_total", "Messages returned to their source to come back later, by source.", "source")
	dSrcUnmatched  = counter("switchyard_source_unmatched_messages_total", "Messages no rule matched (they are acked), by source.", "source")
	dSrcRecvErrors = counter("switchyard_source_receive_errors_total", "Receives that failed, by source.", "source")
	dSrcPaused     = counter("switchyard_source_paused_seconds_total", "Time receive loops waited for room under max_in_flight, summed over pollers, by source.", "source")
	dHTTPRequests  = counter("switchyard_http_requests_total", "Requests to http sources, by answer: accepted, unauthorized, wrong_method, wrong_type, not_found, too_large, bad_request, throttled (429), unavailable (503), token_issued (a token from the token endpoint of oauth_client_credentials).", "source", "outcome")
	dHTTPEvents    = counter("switchyard_http_events_total", "Events in the requests http sources accepted (answered 2xx), by source.", "source")
	dRuleMatched   = counter("switchyard_rule_matched_events_total", "Events a rule matched, by rule.", "rule")
	dTgtAttempts   = counter("switchyard_target_attempts_total", "Calls made to a target, by target.", "target")
	dTgtDeliveries = counter("switchyard_target_deliveries_total", "Deliveries by how they ended: delivered, dead_lettered, or unresolved (the message comes back), by target.", "target", "outcome")
	dTgtRetries    = counter("switchyard_target_retries_total", "Failed attempts that were tried again, by target.", "target")
	dTgtThrottled  = counter("switchyard_target_throttled_total", "Attempts the target throttled, by target.", "target")
	dTgtDLFailures = counter("switchyard_target_dead_letter_failures_total", "Dead letters the dead-letter target did not take, by target.", "target")
	dTgtInFlight   = gauge("switchyard_target_in_flight", "Calls to a target now, by target.", "target")
	dTgtWaiting    = gauge("switchyard_target_waiting", "Deliveries waiting for an open circuit breaker, by target.", "target")
	dTgtLimit      = gauge("switchyard_target_concurrency_limit", "The effective concurrency: the configured one, lowered while the target throttles, by target.", "target")
	dTgtBreaker    = gauge("switchyard_target_breaker_state", "The circuit breaker: 0 closed, 1 half-open, 2 open, by target.", "target")
	dBacklogged    = counter("switchyard_target_backlogged_total", "Deliveries moved to the target's backlog, by target.", "target")
	dBacklogErrors = counter("switchyard_target_backlog_errors_total", "Moves to the target's backlog that failed (the delivery waited in memory), by target.", "target")
	dBacklogDrain  = counter("switchyard_target_backlog_drained_total", "Deliveries taken out of the target's backlog and resolved (or put back), by target.", "target")
	dBacklogBack   = counter("switchyard_target_backlog_returned_total", "Deliveries taken out of the target's backlog that went back unresolved, by target.", "target")
	dBacklogBad    = counter("switchyard_target_backlog_corrupt_total", "Backlog entries that could not be read (they stay in the backlog), by target.", "target")
	dBacklogDepth  = gauge("switchyard_target_backlog_depth", "Deliveries in the target's backlog (approximate for SQS), by target.", "target")
	dBacklogAge    = gauge("switchyard_target_backlog_age_seconds", "How long the oldest delivery in the target's backlog has waited (for SQS: since the queue was last seen empty), by target.", "target")
	dLedgerLookups = counter("switchyard_ledger_lookups_total", "Ledger lookups that answered (deliveries of messages that came back).")
	dLedgerHits    = counter("switchyard_ledger_hits_total", "Deliveries skipped because the ledger had them resolved or backlogged, by target.", "target")
	dLedgerWrites  = counter("switchyard_ledger_writes_total", "Ledger records written.")
	dLedgerErrors  = counter("switchyard_ledger_errors_total", "Ledger calls that failed (the delivery went on without it).")
	dLedgerSkipped = counter("switchyard_ledger_skipped_total", "Ledger calls not made because the ledger had just failed.")

	allDescs = []desc{dReady, dInFlight, dMaxInFlight, dBytesInFlight, dMaxBytes, dSettleErrors, dSrcReceived, dSrcAcked, dSrcNacked, dSrcUnmatched,
		dSrcRecvErrors, dSrcPaused, dHTTPRequests, dHTTPEvents, dRuleMatched, dTgtAttempts, dTgtDeliveries, dTgtRetries, dTgtThrottled,
		dTgtDLFailures, dTgtInFlight, dTgtWaiting, dTgtLimit, dTgtBreaker, dBacklogged, dBacklogErrors, dBacklogDrain, dBacklogBack,
		dBacklogBad, dBacklogDepth, dBacklogAge, dLedgerLookups, dLedgerHits, dLedgerWrites, dLedgerErrors, dLedgerSkipped}
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d.Desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(d desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.typ, v, labels...)
	}
	ready := 0.0
	if c.ready != nil && c.ready() {
		ready = 1
	}
	emit(dReady, ready)
	s := c.state.Load()
	if s == nil {
		return
	}
	st := s.Dispatcher.Stats()
	emit(dInFlight, float64(st.InFlight.Load()))
	emit(dMaxInFlight, float64(s.MaxInFlight))
	emit(dBytesInFlight, float64(s.Dispatcher.Bytes().Used()))
	emit(dMaxBytes, float64(s.Dispatcher.Bytes().Max()))
	emit(dSettleErrors, float64(st.SettleErrors.Load()))
	for _, src := range s.Sources {
		ss := s.Dispatcher.SourceStats(src.Name)
		if ss == nil {
			continue
		}
		emit(dSrcReceived, float64(ss.Received.Load()), src.Name)
		emit(dSrcAcked, float64(ss.Acked.Load()), src.Name)
		emit(dSrcNacked, float64(ss.Nacked.Load()), src.Name)
		emit(dSrcUnmatched, float64(ss.Unmatched.Load()), src.Name)
		emit(dSrcRecvErrors, float64(ss.ReceiveErrors.Load()), src.Name)
		emit(dSrcPaused, time.Duration(ss.Paused.Load()).Seconds(), src.Name)
		if h := src.HTTP; h != nil {
			for _, o := range httpOutcomes(h) {
				emit(dHTTPRequests, float64(o.n), src.Name, o.name)
			}
			emit(dHTTPEvents, float64(h.Events.Load()), src.Name)
		}
	}
	s.Dispatcher.EachRule(func(name string, rs *router.RuleStats) {
		emit(dRuleMatched, float64(rs.Matched.Load()), name)
	})
	for _, t := range s.Targets {
		ts := t.Stats
		emit(dTgtAttempts, float64(ts.Attempts.Load()), t.Name)
		emit(dTgtDeliveries, float64(ts.Delivered.Load()), t.Name, "delivered")
		emit(dTgtDeliveries, float64(ts.DeadLettered.Load()), t.Name, "dead_lettered")
		emit(dTgtDeliveries, float64(ts.Unresolved.Load()), t.Name, "unresolved")
		emit(dTgtRetries, float64(ts.Retried.Load()), t.Name)
		emit(dTgtThrottled, float64(ts.Throttled.Load()), t.Name)
		emit(dTgtDLFailures, float64(ts.DeadLetterFailures.Load()), t.Name)
		emit(dTgtInFlight, float64(ts.InFlight.Load()), t.Name)
		emit(dTgtWaiting, float64(ts.Waiting.Load()), t.Name)
		emit(dTgtLimit, float64(ts.Limit.Load()), t.Name)
		emit(dTgtBreaker, breakerValue(t.Breaker()), t.Name)
		if b := t.Backlog; b != nil {
			emit(dBacklogged, float64(ts.Backlogged.Load()), t.Name)
			emit(dBacklogErrors, float64(ts.BacklogErrors.Load()), t.Name)
			emit(dBacklogDrain, float64(b.Stats.Drained.Load()), t.Name)
			emit(dBacklogBack, float64(b.Stats.Returned.Load()), t.Name)
			emit(dBacklogBad, float64(b.Stats.Corrupt.Load()), t.Name)
			n, age, _ := b.Depth()
			emit(dBacklogDepth, float64(n), t.Name)
			emit(dBacklogAge, age.Seconds(), t.Name)
		}
	}
	if l := s.Ledger; l != nil {
		emit(dLedgerLookups, float64(l.Lookups.Load()))
		for _, t := range s.Targets {
			emit(dLedgerHits, float64(l.HitsOf(t.Name)), t.Name)
		}
		emit(dLedgerWrites, float64(l.Writes.Load()))
		emit(dLedgerErrors, float64(l.Errors.Load()))
		emit(dLedgerSkipped, float64(l.Skipped.Load()))
	}
}

type outcomeCount struct {
	name string
	n    int64
}

func httpOutcomes(h *httpsource.Stats) []outcomeCount {
	return []outcomeCount{
		{"accepted", h.Accepted.Load()}, {"unauthorized", h.Unauthorized.Load()}, {"wrong_method", h.WrongMethod.Load()},
		{"wrong_type", h.WrongType.Load()}, {"not_found", h.NotFound.Load()}, {"too_large", h.TooLarge.Load()},
		{"bad_request", h.BadRequest.Load()}, {"throttled", h.Throttled.Load()}, {"unavailable", h.Unavailable.Load()},
		{"token_issued", h.Tokens.Load()},
	}
}

func breakerValue(state string) float64 {
	switch state {
	case "half-open":
		return 1
	case "open":
		return 2
	}
	return 0
}

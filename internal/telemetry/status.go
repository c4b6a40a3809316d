package telemetry

import (
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Status is what /status answers: the figures an operator looks at first.
// Rates are per second over the last RateWindow.
type Status struct {
	Version     string         `json:"version"`
	Started     time.Time      `json:"started"`
	Ready       bool           `json:"ready"`
	NotReady    []string       `json:"not_ready,omitempty"`
	Config      ConfigStatus   `json:"config"`
	InFlight    int64          `json:"in_flight"`
	MaxInFlight int            `json:"max_in_flight"`
	RateWindow  float64        `json:"rate_window_seconds"`
	Sources     []SourceStatus `json:"sources"`
	Rules       []RuleStatus   `json:"rules"`
	Targets     []TargetStatus `json:"targets"`
	// Ledger is the delivery ledger's figures; absent when it is off.
	Ledger *LedgerStatus `json:"ledger,omitempty"`
	// Fleet is the instances sharing the NATS cluster, as the cluster
	// knows them; absent without NATS.
	Fleet *FleetStatus `json:"fleet,omitempty"`
}

// FleetStatus is the fleet as the cluster's roster shows it.
type FleetStatus struct {
	// Self is this instance's id.
	Self    string        `json:"self"`
	Members []FleetMember `json:"members"`
}

// FleetMember is one live instance.
type FleetMember struct {
	ID      string                `json:"id"`
	Host    string                `json:"host"`
	Version string                `json:"version"`
	Started time.Time             `json:"started"`
	Seen    time.Time             `json:"seen"`
	Leases  []string              `json:"leases,omitempty"`
	Shares  map[string]FleetShare `json:"shares,omitempty"`
}

// FleetShare is an instance's part of a target's fleet-wide limits.
type FleetShare struct {
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate_per_second,omitempty"`
	Fallback    bool    `json:"fallback,omitempty"`
}

// LedgerStatus is the delivery ledger's figures.
type LedgerStatus struct {
	Lookups   int64      `json:"lookups"`
	Hits      int64      `json:"hits"`
	Writes    int64      `json:"writes"`
	Errors    int64      `json:"errors"`
	Skipped   int64      `json:"skipped"`
	LastError *LastError `json:"last_error,omitempty"`
}

// BacklogStatus is a target's backlog's figures.
type BacklogStatus struct {
	Kind       string     `json:"kind"`
	Depth      int64      `json:"depth"`
	AgeSeconds float64    `json:"age_seconds"`
	DepthError string     `json:"depth_error,omitempty"`
	Backlogged int64      `json:"backlogged"`
	Drained    int64      `json:"drained"`
	Returned   int64      `json:"returned"`
	Corrupt    int64      `json:"corrupt"`
	Errors     int64      `json:"errors"`
	LastError  *LastError `json:"last_error,omitempty"`
}

// ConfigStatus says which config runs and how reloads went.
type ConfigStatus struct {
	File       string    `json:"file"`
	LoadedAt   time.Time `json:"loaded_at"`
	Reloads    int64     `json:"reloads"`
	LastReject string    `json:"last_reload_error,omitempty"`
}

// SourceStatus is one source's figures.
type SourceStatus struct {
	Name          string     `json:"name"`
	Type          string     `json:"type"`
	Received      int64      `json:"received"`
	Acked         int64      `json:"acked"`
	Nacked        int64      `json:"nacked"`
	Unmatched     int64      `json:"unmatched"`
	ReceiveErrors int64      `json:"receive_errors"`
	Rate          float64    `json:"received_per_second"`
	LastError     *LastError `json:"last_error,omitempty"`
}

// RuleStatus is one rule's figures.
type RuleStatus struct {
	Name    string  `json:"name"`
	Matched int64   `json:"matched"`
	Rate    float64 `json:"matched_per_second"`
}

// TargetStatus is one target's figures.
type TargetStatus struct {
	Name         string     `json:"name"`
	Type         string     `json:"type"`
	InFlight     int64      `json:"in_flight"`
	Waiting      int64      `json:"waiting"`
	Limit        int64      `json:"concurrency_limit"`
	Concurrency  int        `json:"concurrency"`
	Breaker      string     `json:"breaker"`
	Attempts     int64      `json:"attempts"`
	Delivered    int64      `json:"delivered"`
	DeadLettered int64      `json:"dead_lettered"`
	Unresolved   int64      `json:"unresolved"`
	Retried      int64      `json:"retried"`
	Throttled    int64      `json:"throttled"`
	Rate         float64    `json:"delivered_per_second"`
	LastError    *LastError `json:"last_error,omitempty"`
	// Backlog is the target's backlog; absent when it has none.
	Backlog *BacklogStatus `json:"backlog,omitempty"`
	// LedgerHits counts the target's deliveries skipped because the ledger
	// had them resolved or backlogged.
	LedgerHits int64 `json:"ledger_hits"`
}

// LastError is the latest failure of a source or target.
type LastError struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// RateWindow is the span rates in /status are averaged over.
const RateWindow = 10 * time.Second

// rates remembers counters once a second for RateWindow, to turn them into
// rates.
type rates struct {
	mu      sync.Mutex
	samples []sample // oldest first, at most RateWindow/time.Second+1
}

type sample struct {
	at time.Time
	n  map[string]int64
}

func (r *rates) add(at time.Time, n map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := int(RateWindow/time.Second) + 1
	if len(r.samples) >= keep {
		r.samples = append(r.samples[:0], r.samples[len(r.samples)-keep+1:]...)
	}
	r.samples = append(r.samples, sample{at, n})
}

// rate is the per-second rate of counter key between the oldest sample
// and now (value cur).
func (r *rates) rate(key string, now time.Time, cur int64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The oldest sample that has the key: a rule added by a reload, or
	// the daemon's first second, has fewer samples than the window.
	for _, old := range r.samples {
		prev, ok := old.n[key]
		if !ok {
			continue
		}
		dt := now.Sub(old.at).Seconds()
		if dt <= 0 || cur < prev {
			return 0
		}
		return float64(cur-prev) / dt
	}
	return 0
}

// counters are the counters /status turns into rates, by key.
func counters(s *State) map[string]int64 {
	n := map[string]int64{}
	if s == nil {
		return n
	}
	for _, src := range s.Sources {
		if ss := s.Dispatcher.SourceStats(src.Name); ss != nil {
			n["s/"+src.Name] = ss.Received.Load()
		}
	}
	s.Dispatcher.EachRule(func(name string, rs *router.RuleStats) { n["r/"+name] = rs.Matched.Load() })
	for _, t := range s.Targets {
		n["t/"+t.Name] = t.Stats.Delivered.Load()
	}
	return n
}

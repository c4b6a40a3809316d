package awstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Bounds of the latency probe's memory: past them it stops recording (and
// counts what it left out), so a long load test cannot grow the server.
const (
	probeMaxReceived = 1 << 20
	probeMaxSamples  = 1 << 21
)

// LatencyPath serves the receive-to-invoke summary ([Server.ReceiveToInvoke])
// as JSON to GET requests, unsigned.
const LatencyPath = "/_awstest/latency"

// FaultsPath scripts faults over HTTP, for load tests that run the server in
// another process: POST a [FaultRule] as JSON (durations in nanoseconds) to
// add it, DELETE to remove every rule ([Server.ClearFaults]).
const FaultsPath = "/_awstest/faults"

// LatencySummary is the receive-to-invoke latency of the Lambda invocations
// the probe could attribute to an SQS message, in microseconds.
type LatencySummary struct {
	// Count is how many invocations were measured.
	Count int `json:"count"`
	// Unattributed counts invocations that named no message the probe saw
	// received (or came after its bounds were reached).
	Unattributed int     `json:"unattributed"`
	P50          float64 `json:"p50_us"`
	P90          float64 `json:"p90_us"`
	P99          float64 `json:"p99_us"`
	Max          float64 `json:"max_us"`
}

// probe pairs SQS receives with Lambda invocations by message id. Its mutex
// is a leaf: it is taken under SQS.mu and nothing is taken under it.
type probe struct {
	mu           sync.Mutex
	received     map[string]time.Time // message id → first time a receive handed it out
	samples      []time.Duration
	unattributed int
}

func newProbe() *probe { return &probe{received: map[string]time.Time{}} }

// receive notes that id was handed out at now (its first receive only).
// The caller holds SQS.mu.
func (p *probe) receive(id string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.received[id]; !ok && len(p.received) < probeMaxReceived {
		p.received[id] = now
	}
}

// invoke measures an invocation that arrived at now with payload: an event
// whose "id" is an SQS message id, or a batch {"Records":[{"messageId":…}]}
// as Lambda's SQS event-source mapping sends. Each message named is a
// sample.
func (p *probe) invoke(payload []byte, now time.Time) {
	var ev struct {
		ID      string `json:"id"`
		Records []struct {
			MessageID string `json:"messageId"`
		} `json:"Records"`
	}
	if json.Unmarshal(payload, &ev) != nil {
		ev.ID, ev.Records = "", nil
	}
	ids := make([]string, 0, 1+len(ev.Records))
	if ev.ID != "" {
		ids = append(ids, ev.ID)
	}
	for _, r := range ev.Records {
		ids = append(ids, r.MessageID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ids) == 0 {
		p.unattributed++
	}
	for _, id := range ids {
		at, ok := p.received[id]
		if !ok || len(p.samples) >= probeMaxSamples {
			p.unattributed++
			continue
		}
		p.samples = append(p.samples, now.Sub(at))
	}
}

func (p *probe) summary() LatencySummary {
	p.mu.Lock()
	s := slices.Clone(p.samples)
	out := LatencySummary{Count: len(s), Unattributed: p.unattributed}
	p.mu.Unlock()
	if len(s) == 0 {
		return out
	}
	slices.Sort(s)
	q := func(f float64) float64 {
		i := int(f*float64(len(s)) + 0.5)
		i = min(max(i-1, 0), len(s)-1)
		return float64(s[i]) / float64(time.Microsecond)
	}
	out.P50, out.P90, out.P99 = q(0.50), q(0.90), q(0.99)
	out.Max = float64(s[len(s)-1]) / float64(time.Microsecond)
	return out
}

func (p *probe) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received, p.samples, p.unattributed = map[string]time.Time{}, nil, 0
}

// ReceiveToInvoke summarises, when Options.ProbeLatency is set, the time from
// an SQS message's first receive (when ReceiveMessage took it from the queue,
// just before the response is written) to the arrival of each Lambda Invoke
// that carries its message id (when the endpoint takes the call: after the
// request body was read and any injected Fault.Latency; calls that an
// injected fault answers are not measured). Both ends are read on the
// server's clock. The zero summary is returned when the probe is off.
func (s *Server) ReceiveToInvoke() LatencySummary {
	if s.probe == nil {
		return LatencySummary{}
	}
	return s.probe.summary()
}

// serveControl answers LatencyPath and FaultsPath; it reports whether r was
// one of them.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == LatencyPath && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, contentJSON, s.ReceiveToInvoke())
	case r.URL.Path == FaultsPath && r.Method == http.MethodPost:
		var rule FaultRule
		if err := json.NewDecoder(r.Body).Decode(&rule); err != nil {
			http.Error(w, "awstest: fault rule: "+err.Error(), http.StatusBadRequest)
			return true
		}
		s.InjectFault(rule)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == FaultsPath && r.Method == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		return false
	}
	return true
}

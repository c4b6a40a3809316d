package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard-dev/switchyard/router"
)

func TestAdmin_ReloadOnlyFromLoopback(t *testing.T) {
	called := 0
	a := &Admin{cfg: AdminConfig{Reload: func(context.Context) error { called++; return nil }}}
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"10.0.0.7:5000", http.StatusForbidden},
		{"192.168.1.2:80", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodPost, "/reload", nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		loopbackOnly(http.HandlerFunc(a.reload)).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("POST /reload from %s: %d, want %d", tc.remote, w.Code, tc.want)
		}
	}
	if called != 2 {
		t.Errorf("reload ran %d times, want 2 (the loopback peers)", called)
	}
}

func TestAdmin_ReloadRejectionIs422WithTheProblems(t *testing.T) {
	a := &Admin{cfg: AdminConfig{Reload: func(context.Context) error {
		return errors.New("invalid config:\nf.yaml:3:5: rules[0].targets[0]: unknown target \"x\"")
	}}}
	r := httptest.NewRequest(http.MethodPost, "/reload", nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	loopbackOnly(http.HandlerFunc(a.reload)).ServeHTTP(w, r)
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "f.yaml:3:5:") {
		t.Errorf("rejected reload: %d %q", w.Code, w.Body.String())
	}
}

func TestRates_PerSecondOverTheWindow(t *testing.T) {
	var r rates
	t0 := time.Unix(1000, 0)
	for i := range 15 {
		r.add(t0.Add(time.Duration(i)*time.Second), map[string]int64{"k": int64(i * 100)})
	}
	// The window keeps the last 11 samples: from t0+4s (400) to now.
	now := t0.Add(14 * time.Second)
	if got := r.rate("k", now, 1400); got != 100 {
		t.Errorf("rate = %v, want 100/s", got)
	}
	if got := r.rate("other", now, 5); got != 0 {
		t.Errorf("rate of an unknown key = %v, want 0", got)
	}
	if got := r.rate("k", now, 10); got != 0 {
		t.Errorf("rate after a counter reset = %v, want 0", got)
	}

	// A key that appears later (a rule added by a reload) is rated from
	// its first sample.
	var r2 rates
	r2.add(t0, map[string]int64{})
	r2.add(t0.Add(time.Second), map[string]int64{"new": 0})
	if got := r2.rate("new", t0.Add(3*time.Second), 50); got != 25 {
		t.Errorf("rate of a new key = %v, want 25/s", got)
	}
}

func TestObserver_ByOutcome(t *testing.T) {
	m := NewMetrics("test", nil)
	o := m.Observer("t")
	if m.Observer("t") != o {
		t.Fatal("a second Observer for the same target is a new one")
	}
	o.ObserveAttempt(time.Millisecond, nil)
	o.ObserveAttempt(time.Millisecond, router.ThrottledError(errors.New("slow down"), 0))
	o.ObserveAttempt(time.Millisecond, router.PermanentError(errors.New("bad")))
	o.ObserveAttempt(time.Millisecond, errors.New("reset"))
	o.ObserveAttempt(time.Millisecond, errors.New("reset"))
	o.ObserveDelivered(2 * time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range fams {
		for _, mt := range f.Metric {
			if h := mt.Histogram; h != nil {
				got[f.GetName()+"/"+label(mt, "outcome")] = h.GetSampleCount()
			}
		}
	}
	want := map[string]uint64{
		"switchyard_target_attempt_duration_seconds/ok": 1, "switchyard_target_attempt_duration_seconds/throttled": 1,
		"switchyard_target_attempt_duration_seconds/permanent": 1, "switchyard_target_attempt_duration_seconds/retryable": 2,
		"switchyard_delivery_latency_seconds/": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d observations, want %d", k, got[k], v)
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestBreakerValue(t *testing.T) {
	for state, want := range map[string]float64{"closed": 0, "half-open": 1, "open": 2} {
		if got := breakerValue(state); got != want {
			t.Errorf("%s = %v, want %v", state, got, want)
		}
	}
}

func TestAdmin_PprofOnlyWhenOnAndFromLoopback(t *testing.T) {
	for _, on := range []bool{false, true} {
		a, err := ListenAdmin(AdminConfig{Listen: "127.0.0.1:0", Metrics: NewMetrics("test", nil), NotReady: func() []string { return nil }, Pprof: on})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + a.Addr() + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
			t.Errorf("pprof %v: GET /debug/pprof/cmdline: %d, want %d", on, resp.StatusCode, want)
		}
		if err := a.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil)
	r.RemoteAddr = "10.0.0.7:5000"
	w := httptest.NewRecorder()
	loopbackOnly(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("from 10.0.0.7: %d, want 403", w.Code)
	}
}

// /healthz is 503 until the daemon has started, then 200 whatever
// readiness says: a source's outage makes it not ready, never not live.
func TestAdmin_HealthzIsLivenessOnceStarted(t *testing.T) {
	var started bool
	a := &Admin{cfg: AdminConfig{
		NotStarted: func() []string {
			if started {
				return nil
			}
			return []string{"starting: source jobs: retrying in 2s"}
		},
		NotReady: func() []string { return []string{"source jobs: the last 5 receives failed"} },
	}}
	get := func(h http.HandlerFunc) (int, string) {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodGet, "/", nil))
		return w.Code, w.Body.String()
	}
	if code, body := get(a.healthz); code != http.StatusServiceUnavailable || body != "not started: starting: source jobs: retrying in 2s\n" {
		t.Errorf("/healthz while starting = %d %q, want 503 and why", code, body)
	}
	started = true
	if code, body := get(a.healthz); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz once started, its source failing = %d %q, want 200 ok", code, body)
	}
	if code, _ := get(a.readyz); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a failing source = %d, want 503", code)
	}
	// Without NotStarted, /healthz answers as soon as it is served.
	a.cfg.NotStarted = nil
	if code, _ := get(a.healthz); code != http.StatusOK {
		t.Errorf("/healthz without NotStarted = %d, want 200", code)
	}
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// A rejected reload's reason is shown whole, each problem on a line of its
// own, long lines and all.
func TestRenderStatus_ShowsAWholeRejectedReload(t *testing.T) {
	at := time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)
	long := "/etc/switchyard/switchyard.yaml:41:13: targets[2].policy: unknown policy \"defualt\" (did you mean \"default\"? defined: default, ecs, quick, slow-and-careful)"
	reason := "invalid config:\n" + long + "\n/etc/switchyard/switchyard.yaml:52:7: rules[3].targets[0]: unknown target \"nowhere\""
	st := &telemetry.Status{Version: "v1", Started: at.Add(-time.Minute), Ready: true,
		Config: telemetry.ConfigStatus{File: "/etc/switchyard/switchyard.yaml", LoadedAt: at.Add(-time.Minute), Reloads: 2, LastReject: reason}}
	var b strings.Builder
	renderStatus(&b, st, at)
	got := b.String()
	want := "config /etc/switchyard/switchyard.yaml, loaded 1m0s ago, 2 reloads\n" +
		"last reload REJECTED, the running config is kept:\n" +
		"  invalid config:\n" +
		"  " + long + "\n" +
		"  /etc/switchyard/switchyard.yaml:52:7: rules[3].targets[0]: unknown target \"nowhere\"\n" +
		"in flight 0 of 0"
	if !strings.Contains(got, want) {
		t.Errorf("status output:\n%s\nwant it to hold:\n%s", got, want)
	}

	// Without a rejection, no such line.
	st.Config.LastReject = ""
	b.Reset()
	renderStatus(&b, st, at)
	if strings.Contains(b.String(), "REJECTED") || !strings.Contains(b.String(), "2 reloads\nin flight") {
		t.Errorf("status output without a rejection:\n%s", b.String())
	}
}

// The fleet, as the cluster's roster has it: every instance with its
// leases and its shares of fleet-wide limits, this one marked; an instance
// alone with nothing shared shows no table.
func TestRenderStatus_Fleet(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	st := &telemetry.Status{Version: "v1", Started: at.Add(-time.Minute), Ready: true, Fleet: &telemetry.FleetStatus{
		Self: "ip-10-0-1-7-4305500a",
		Members: []telemetry.FleetMember{
			{ID: "ip-10-0-1-7-4305500a", Host: "ip-10-0-1-7", Version: "v1", Started: at.Add(-90 * time.Second), Seen: at.Add(-2 * time.Second),
				Shares: map[string]telemetry.FleetShare{"report": {Concurrency: 2, Rate: 9.6}, "app": {Concurrency: 8}}},
			{ID: "ip-10-0-2-9-74934838", Host: "ip-10-0-2-9", Version: "v1", Started: at.Add(-time.Hour), Seen: at.Add(-4 * time.Second),
				Leases: []string{"ecs:tasks"}, Shares: map[string]telemetry.FleetShare{"report": {Concurrency: 2, Rate: 10.4, Fallback: true}}},
		},
	}}
	var b strings.Builder
	renderStatus(&b, st, at)
	want := "INSTANCE                     HOST         VERSION  UP      SEEN    LEASES     SHARES\n" +
		"ip-10-0-1-7-4305500a (this)  ip-10-0-1-7  v1       1m30s   2s ago  -          app 8 calls, 0.0/s; report 2 calls, 9.6/s\n" +
		"ip-10-0-2-9-74934838         ip-10-0-2-9  v1       1h0m0s  4s ago  ecs:tasks  report 2 calls, 10.4/s (fallback)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("status output:\n%s\nwant it to hold:\n%s", b.String(), want)
	}

	st.Fleet.Members = st.Fleet.Members[:1]
	st.Fleet.Members[0].Shares = nil
	b.Reset()
	renderStatus(&b, st, at)
	if strings.Contains(b.String(), "INSTANCE") {
		t.Errorf("an instance alone, sharing nothing, got a fleet table:\n%s", b.String())
	}
}

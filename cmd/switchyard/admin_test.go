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

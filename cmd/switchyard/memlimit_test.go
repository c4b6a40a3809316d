package main

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// keepMemoryLimit restores the runtime's memory limit after a test that
// changes it.
func keepMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

func TestLimitMemory(t *testing.T) {
	const mib = 1 << 20
	failing := func(t *testing.T) memlimit.Provider {
		return func() (uint64, error) {
			t.Error("the provider was asked, though the environment says not to")
			return 64 * mib, nil
		}
	}
	tests := []struct {
		name     string
		env      map[string]string
		provider func(t *testing.T) memlimit.Provider
		start    int64  // the runtime's limit at the start (as GOMEMLIMIT sets it); 0: as it is
		want     int64  // the runtime's limit afterwards; -1: unchanged
		log      string // in the log at debug level; "" for no line
	}{
		{
			name:     "a container limit",
			provider: func(*testing.T) memlimit.Provider { return memlimit.Limit(200 * mib) },
			want:     180 * mib,
			log:      `level=INFO msg="memory limit" go_mem_limit=188743680 from=cgroup ratio=0.9`,
		},
		{
			name:     "AUTOMEMLIMIT changes the ratio",
			env:      map[string]string{"AUTOMEMLIMIT": "0.5"},
			provider: func(*testing.T) memlimit.Provider { return memlimit.Limit(200 * mib) },
			want:     100 * mib,
			log:      `msg="memory limit" go_mem_limit=104857600 from=cgroup`,
		},
		{
			name:     "GOMEMLIMIT wins",
			env:      map[string]string{"GOMEMLIMIT": "50MiB"},
			start:    50 * mib,
			provider: failing,
			want:     -1,
			log:      `msg="memory limit" go_mem_limit=52428800 from=GOMEMLIMIT`,
		},
		{
			name:     "a bad AUTOMEMLIMIT",
			env:      map[string]string{"AUTOMEMLIMIT": "90%"},
			provider: failing,
			want:     -1,
			log:      `level=WARN msg="AUTOMEMLIMIT not applied: want off or a ratio in (0, 1]" AUTOMEMLIMIT=90%`,
		},
		{
			name:     "AUTOMEMLIMIT=off",
			env:      map[string]string{"AUTOMEMLIMIT": "off"},
			provider: failing,
			want:     -1,
		},
		{
			name:     "no limit",
			provider: func(*testing.T) memlimit.Provider { return func() (uint64, error) { return 0, memlimit.ErrNoLimit } },
			want:     math.MaxInt64,
		},
		{
			name: "an unreadable cgroup",
			provider: func(*testing.T) memlimit.Provider {
				return func() (uint64, error) { return 0, errors.New("permission denied") }
			},
			want: -1,
			log:  `level=DEBUG msg="no memory limit found" error="failed to set GOMEMLIMIT: permission denied"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keepMemoryLimit(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.start != 0 {
				debug.SetMemoryLimit(tt.start)
			}
			before := debug.SetMemoryLimit(-1)
			var buf bytes.Buffer
			limitMemory(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), tt.provider(t))
			got, want := debug.SetMemoryLimit(-1), tt.want
			if want == -1 {
				want = before
			}
			if got != want {
				t.Errorf("runtime memory limit %d, want %d", got, want)
			}
			if tt.log == "" && buf.Len() > 0 {
				t.Errorf("logged %q, want nothing", buf.String())
			}
			if tt.log != "" && !strings.Contains(buf.String(), tt.log) {
				t.Errorf("logged %q, want it to contain %q", buf.String(), tt.log)
			}
		})
	}
}

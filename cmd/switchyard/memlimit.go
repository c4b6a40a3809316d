package main

import (
	"log/slog"
	"math"
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryRatio is the share of the container's memory limit the Go runtime
// aims to stay under (GOMEMLIMIT): the rest is for the binary's pages, the
// kernel's buffers and headroom.
const memoryRatio = 0.9

// limitMemory sets the Go runtime's soft memory limit to memoryRatio of the
// memory limit provider reports (the cgroup's: an ECS container's or task's
// hard limit), so that the garbage collector works harder as the daemon
// nears the limit instead of the container being killed. GOMEMLIMIT in the
// environment wins; AUTOMEMLIMIT=off turns this off and AUTOMEMLIMIT=0.8
// changes the ratio. Without a limit nothing changes.
func limitMemory(log *slog.Logger, provider memlimit.Provider) {
	limit, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(memoryRatio))
	switch {
	case err != nil && os.Getenv("AUTOMEMLIMIT") != "":
		log.Warn("AUTOMEMLIMIT not applied: want off or a ratio in (0, 1]", "AUTOMEMLIMIT", os.Getenv("AUTOMEMLIMIT"), "error", err)
	case err != nil:
		// Outside a container, or a cgroup layout it cannot read: the
		// runtime keeps its default (no limit).
		log.Debug("no memory limit found", "error", err)
	case os.Getenv("GOMEMLIMIT") != "":
		log.Info("memory limit", "go_mem_limit", limit, "from", "GOMEMLIMIT")
	case limit == math.MaxInt64:
	default:
		log.Info("memory limit", "go_mem_limit", limit, "from", "cgroup", "ratio", memoryRatio)
	}
}

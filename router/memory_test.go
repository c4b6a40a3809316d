package router

import (
	"runtime"
	"strings"
	"testing"
)

// Matching a large event leaves nothing of its size behind in the
// matcher's pool: before, its scratch kept an arena as large as the event
// until two garbage collections later, long after the event was gone.
func TestMatcher_LargeEventLeavesNothingBehind(t *testing.T) {
	m := NewMatcher([]*Pattern{mustPattern(t, `{"detail":{"data":[{"prefix":"x"}]}}`)})
	ev := []byte(`{"detail":{"data":"\u0078` + strings.Repeat("x", 32<<20) + `"}}`)
	if got, err := m.Match(ev, nil); err != nil || len(got) != 1 {
		t.Fatalf("Match = %v, %v", got, err)
	}
	ev = nil
	if live := liveHeap(); live > 16<<20 {
		t.Errorf("%d MB live after matching a 32 MB event, want it gone", live>>20)
	}
}

// liveHeap is the heap in use after a garbage collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

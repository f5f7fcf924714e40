package fs

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestHeapLimit(t *testing.T) {
	const floor = 160 << 20
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, floor},
		{100 << 20, floor},
		{128 << 20, floor},     // 160 MiB: the floor still
		{200 << 20, 250 << 20}, // a quarter more than live
		{500 << 20, 625 << 20},
	} {
		if got := heapLimit(floor, c.live); got != c.want {
			t.Errorf("heapLimit(%d MiB, live %d MiB) = %d MiB, want %d MiB", floor>>20, c.live>>20, got>>20, c.want>>20)
		}
	}
}

// TestHeapGovernorFollowsLiveHeap: a live heap that outgrows the floor (as
// the inodes of a listing of 500,000 entries do) raises the heap's soft
// limit after the next collection, so that the collector does not run
// without pause; once that heap is freed, the limit goes back to the floor.
// (With the floor as a fixed limit, bench/widels.sh's listing ran 39
// collections and 1.5x the CPU of the starting binary.)
func TestHeapGovernorFollowsLiveHeap(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	const floor = 32 << 20
	g := governHeap(floor)
	t.Cleanup(func() {
		g.stop()
		debug.SetMemoryLimit(orig)
	})
	limitAfterGC := func(ok func(int64) bool) int64 {
		t.Helper()
		var l int64
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			runtime.GC()
			if l = debug.SetMemoryLimit(-1); ok(l) {
				return l
			}
			time.Sleep(10 * time.Millisecond)
		}
		return l
	}

	// 96 MiB live, in blocks that hold pointers as inodes do.
	type block struct {
		next *block
		pad  [64 << 10]byte
	}
	var live *block
	for range 96 << 20 / (64 << 10) {
		live = &block{next: live}
	}
	if l := limitAfterGC(func(l int64) bool { return l >= 96<<20*5/4 }); l < 96<<20*5/4 {
		t.Fatalf("with 96 MiB live the heap limit is %d MiB, want at least %d MiB (live + a quarter)", l>>20, 96*5/4)
	}
	runtime.KeepAlive(live)
	live = nil
	if l := limitAfterGC(func(l int64) bool { return l == floor }); l != floor {
		t.Fatalf("with the heap freed the limit is %d MiB, want the floor, %d MiB", l>>20, floor>>20)
	}
}

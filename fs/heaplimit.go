package fs

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// liveHeapMetric is the heap the last collection found reachable.
const liveHeapMetric = "/gc/heap/live:bytes"

// growthRoom is the fraction of the live heap a heap that has outgrown
// MemoryLimit may grow by before the next collection (as GOGC=25 would
// let it): the inodes of a listing of 500,000 entries, which the kernel
// holds until it forgets them, are ~500 MB live, and a limit below that
// made the collector run without pause (bench/widels.sh: 39 collections,
// 1.5x the mount CPU of the starting binary; with this room 24 and
// 0.85-0.96x, at the same peak RSS; a half gave 14 and 0.55x, at 1.05-1.08x
// the peak: docs/performance.md §3.8).
const growthRoom = 4

// LimitHeap sets the soft limit of the Go heap (debug.SetMemoryLimit) of a
// process serving mounts whose caches are bounded by cacheBytes
// (Options.CacheBytes) to MemoryLimit, and, after every collection, raises
// it while the live heap has outgrown that limit, so that the heap may grow
// by a quarter of what is live before the next collection; it goes back to
// MemoryLimit when the live heap shrinks. Within the caches' bound nothing
// changes: the limit then keeps the process's memory within the bound plus
// 64 MiB. Beyond it, only what the kernel keeps alive (inodes it has looked
// up and not forgotten) is live, and a limit below it would make the
// collector run without pause, spending CPU and freeing nothing.
func LimitHeap(cacheBytes int64) {
	governHeap(MemoryLimit(cacheBytes))
}

// heapGovernor sets the heap's soft limit after each collection.
type heapGovernor struct {
	floor   int64 // MemoryLimit
	sample  []metrics.Sample
	stopped atomic.Bool
}

// governHeap sets the heap's soft limit to floor and starts a
// heapGovernor keeping it at heapLimit after each collection.
func governHeap(floor int64) *heapGovernor {
	g := &heapGovernor{floor: floor, sample: []metrics.Sample{{Name: liveHeapMetric}}}
	debug.SetMemoryLimit(floor)
	g.arm()
	return g
}

// stop makes g set the limit no more (tests: a process has one).
func (g *heapGovernor) stop() { g.stopped.Store(true) }

// gcSentinel is an object that becomes unreachable at once: its cleanup
// runs after the next collection. (It holds a pointer so that it is never
// a tiny allocation, whose cleanup may never run.)
type gcSentinel struct{ _ *byte }

// arm runs afterGC after the next collection.
func (g *heapGovernor) arm() {
	runtime.AddCleanup(new(gcSentinel), (*heapGovernor).afterGC, g)
}

// afterGC sets the limit for the live heap the collection found, and
// arms itself for the next one.
func (g *heapGovernor) afterGC() {
	if g.stopped.Load() {
		return
	}
	metrics.Read(g.sample)
	debug.SetMemoryLimit(heapLimit(g.floor, g.sample[0].Value.Uint64()))
	g.arm()
}

// heapLimit is the heap's soft limit for a live heap of live bytes when
// MemoryLimit gives floor: floor, or live plus a growthRoom-th of it when
// that is more.
func heapLimit(floor int64, live uint64) int64 {
	l := live + live/growthRoom
	if l > uint64(floor) {
		return int64(l)
	}
	return floor
}

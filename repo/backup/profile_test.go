package backup_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/local"
)

// TestProfileTree is a tool, not a test: with AZFS_PROFILE_TREE=DIR it
// backs DIR up twice (first, then nothing changed) into a local vault with
// a file cache and the CLI's soft memory limit, and reports the live heap's
// peak; with AZFS_PROFILE_OUT=DIR it writes heap profiles taken at the
// peaks (heap-first.pprof, heap-second.pprof), a CPU profile of each run
// (cpu-first.pprof, cpu-second.pprof) and the allocations of the first
// (allocs-first.pprof) for go tool pprof, and an execution trace of the
// first (trace-first.out, for go tool trace: how busy each core is), and
// logs from that trace how long cores had no work (traceIdle).
//
//	AZFS_PROFILE_TREE=/var/tmp/azfs-bench/scale-tree AZFS_PROFILE_OUT=/tmp \
//	  go test -count=1 -timeout 60m -run TestProfileTree -v ./repo/backup
func TestProfileTree(t *testing.T) {
	tree := os.Getenv("AZFS_PROFILE_TREE")
	if tree == "" {
		t.Skip("set AZFS_PROFILE_TREE=DIR to profile a backup of DIR")
	}
	out := os.Getenv("AZFS_PROFILE_OUT")
	debug.SetMemoryLimit(192 << 20) // as cmd/azfs
	runtime.MemProfileRate = 64 << 10
	work := t.TempDir()
	st, err := local.Create(filepath.Join(work, "vault"))
	if err != nil {
		t.Fatal(err)
	}
	v := newVault(t, st)
	files, err := filecache.Open(filepath.Join(work, "files"))
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	for _, run := range []string{"first", "second"} {
		v = reopen(t, v)
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() { done <- watchHeap(stop, filepath.Join(out, "heap-"+run+".pprof"), out != "") }()
		if out != "" {
			if f, err := os.Create(filepath.Join(out, "cpu-"+run+".pprof")); err == nil {
				_ = pprof.StartCPUProfile(f)
				defer f.Close()
			}
			if run == "first" {
				if f, err := os.Create(filepath.Join(out, "trace-first.out")); err == nil {
					_ = trace.Start(f)
					defer f.Close()
				}
			}
		}
		start := time.Now()
		p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{tree}, Machine: "m", Files: files})
		close(stop)
		peak := <-done
		pprof.StopCPUProfile()
		trace.Stop()
		if out != "" && run == "first" {
			if f, err := os.Create(filepath.Join(out, "allocs-first.pprof")); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			idle, err := traceIdle(filepath.Join(out, "trace-first.out"), runtime.GOMAXPROCS(0))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first backup's trace: %s", idle)
		}
		if err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("%s backup: %d files, %d dirs in %v; live heap peak %d MiB; Sys %d MiB",
			run, p.Stats.Files, p.Stats.Dirs, time.Since(start).Round(time.Millisecond), peak>>20, ms.Sys>>20)
	}
}

// watchHeap samples the live heap until stop is closed and returns its
// peak, writing a heap profile at each new peak (10% over the last) when
// write is set.
func watchHeap(stop chan struct{}, path string, write bool) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak, written uint64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
		metrics.Read(s)
		live := s[0].Value.Uint64()
		peak = max(peak, live)
		if write && live > written+written/10 {
			written = live
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
}

// idleReport is how long a traced run left cores without work.
type idleReport struct {
	wall   time.Duration
	procsN int
	// idle is core time with no goroutine to run: procs minus the
	// goroutines running, runnable or in a system or C call other than an
	// fsync, summed over the run; tail is the part of it after the last
	// C call (zstd) ended, when the run waits for its last uploads, index
	// and point.
	idle, tail time.Duration
	// fsync is how long some goroutine was in an fsync while a core idled.
	fsync time.Duration
}

func (r idleReport) String() string {
	return fmt.Sprintf("%v wall; %v of core time idle (%.1f%% of %d cores), %v of it after the last compression; an fsync under way for %v of it",
		r.wall.Round(time.Millisecond), r.idle.Round(time.Millisecond), 100*r.idle.Seconds()/r.wall.Seconds()/float64(r.procsN), r.procsN,
		r.tail.Round(time.Millisecond), r.fsync.Round(time.Millisecond))
}

// traceIdle reads an execution trace and reports how long cores had no
// work: the time a backup's wall clock is longer than its CPU time over
// the cores for want of work, whatever other load the machine carries (a
// goroutine that is runnable counts as work even while the machine's
// other processes keep it from running).
func traceIdle(path string, procs int) (idleReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return idleReport{}, err
	}
	defer f.Close()
	r, err := xtrace.NewReader(f)
	if err != nil {
		return idleReport{}, err
	}
	type goroutine struct {
		state xtrace.GoState
		fsync bool // in an fsync (a system call that waits for the disk)
		cgo   bool // in a C call
		ours  bool // in a call made by azfs (not the tracer's writes)
	}
	gs := map[xtrace.GoID]*goroutine{}
	var first, prev, lastCgo xtrace.Time
	type span struct {
		at, idle xtrace.Time
		fsync    bool
	}
	var spans []span
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return idleReport{}, err
		}
		t := ev.Time()
		if first == 0 {
			first, prev = t, t
		}
		if t > prev {
			active, fsync := 0, false
			for _, g := range gs {
				switch {
				case g.state == xtrace.GoSyscall && g.fsync:
					fsync = true
				case g.state == xtrace.GoRunning || g.state == xtrace.GoRunnable || g.state == xtrace.GoSyscall && g.ours:
					active++
				}
			}
			if active < procs {
				spans = append(spans, span{prev, (t - prev) * xtrace.Time(procs-active), fsync})
			}
			prev = t
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &goroutine{}
			gs[id] = g
		}
		if to == xtrace.GoNotExist {
			delete(gs, id)
			continue
		}
		if g.cgo && from == xtrace.GoSyscall {
			lastCgo = t
		}
		g.state = to
		if to == xtrace.GoSyscall {
			g.fsync, g.cgo, g.ours = false, false, false
			for fr := range st.Stack.Frames() {
				g.ours = g.ours || strings.HasPrefix(fr.Func, "github.com/azfs/azfs/")
				g.fsync = g.fsync || strings.HasSuffix(fr.Func, ".Sync") || strings.HasSuffix(fr.Func, ".Fsync")
				g.cgo = g.cgo || strings.Contains(fr.Func, "._Cfunc_")
			}
		}
	}
	rep := idleReport{wall: time.Duration(prev - first), procsN: procs}
	for _, s := range spans {
		rep.idle += time.Duration(s.idle)
		if s.at >= lastCgo {
			rep.tail += time.Duration(s.idle)
		}
		if s.fsync {
			rep.fsync += time.Duration(s.idle)
		}
	}
	return rep, nil
}

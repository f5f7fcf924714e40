package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"testing"
	"time"

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
// first (trace-first.out, for go tool trace: how busy each core is).
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

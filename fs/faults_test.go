package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/diskcache"
	"github.com/azfs/azfs/integration/faulttrial"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/faults"
	"github.com/azfs/azfs/repo/storage/mem"
)

// writeFaultTree writes a tree of files of many sizes under dir: large
// files of several chunks, medium ones, empty ones, and a directory of
// more small files than one tree part holds. It returns their contents by
// path relative to dir.
func writeFaultTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(6, 2))
	files := map[string][]byte{}
	add := func(name string, size int) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		files[name] = b
	}
	add("large1", 6*mib+777)
	add("large2", 3*mib+1)
	add("sub/large3", 9*mib/2)
	for i := range 6 {
		add(fmt.Sprintf("sub/medium%d", i), 100<<10+rng.IntN(400<<10))
	}
	add("empty", 0)
	add("sub/one", 1)
	for i := range 1300 {
		add(fmt.Sprintf("many/s%04d", i), rng.IntN(6000))
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// backUpInMemory backs dir up into a new vault in memory and returns its
// storage, the vault and the point.
func backUpInMemory(t *testing.T, dir string) (*mem.Store, *repo.Area, Point) {
	t.Helper()
	ctx := context.Background()
	raw := mem.New()
	v, err := repo.Create(ctx, raw, "correct horse battery staple", keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Machine: "m"})
	if err != nil {
		t.Fatal(err)
	}
	return raw, v, Point{ID: p.ID, Machine: p.Machine, Time: p.Time, Root: p.Root}
}

// faultReadRates are the faults the storage injects into the reads of a
// mount: failed, slow, short and corrupt loads.
var faultReadRates = faults.Rates{Fail: 0.1, Delay: 0.1, Truncate: 0.1, Corrupt: 0.1, MaxDelay: 2 * time.Millisecond}

// TestMountedReadsUnderFaults backs up a tree, mounts its point over
// storage that fails, delays, truncates and corrupts loads, and reads every
// file, whole and at random offsets, through the kernel with its page
// cache dropped before each read, for a while: every read returns the
// source's bytes or fails with EIO, never wrong bytes or another error.
// With the faults off again, every file reads correctly: no cache along the
// way (the mount's chunk and tree part caches, the vault's pack segments
// and disk cache) kept a bad result.
func TestMountedReadsUnderFaults(t *testing.T) {
	testfiles.RequireFUSE(t)
	ctx := context.Background()
	src := t.TempDir()
	files := writeFaultTree(t, src)
	raw, v, pt := backUpInMemory(t, src)
	budget := faulttrial.Budget(t, 5*time.Second, time.Second)
	// As azmount serves a local vault, and a blob vault: small blobs
	// through pack segments, and a disk cache.
	for i, segments := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "segments+diskcache"}[segments]
		t.Run(name, func(t *testing.T) {
			f := faults.Wrap(raw, faults.Rates{}, uint64(i+1))
			fv, err := repo.Open(ctx, f, v.Keys())
			if err != nil {
				t.Fatal(err)
			}
			if segments {
				fv.FetchPackSegments(16 << 20)
				// Smaller than the vault, so that reads keep going to
				// the storage.
				dc, err := diskcache.Open(t.TempDir(), diskcache.Options{MaxBytes: 6 * mib})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = dc.Close() })
				fv.SetCache(dc)
			}
			if err := fv.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			// A chunk cache smaller than the tree, so that reads keep
			// going to the storage.
			opts := Options{CacheBytes: 4 * mib, Logger: slog.New(slog.DiscardHandler)}
			root, err := NewPointRoot(fv, pt, opts)
			if err != nil {
				t.Fatal(err)
			}
			top := filepath.Join(mountTest(t, root, opts), src)
			f.SetRates(faultReadRates)
			right, eio := readUnderFaults(t, top, files, budget/2)
			injected := f.String()
			t.Logf("%d reads: %d right, %d EIO; injected %s", right+eio, right, eio, injected)
			if right == 0 || eio == 0 {
				t.Errorf("the faults were not exercised: %d right, %d EIO", right, eio)
			}

			f.SetRates(faults.Rates{})
			for _, name := range slices.Sorted(maps.Keys(files)) {
				got, err := readWhole(filepath.Join(top, name))
				if err != nil || !bytes.Equal(got, files[name]) {
					t.Errorf("%s after the faults: %d bytes, %v; want %d bytes of content", name, len(got), err, len(files[name]))
				}
			}
		})
	}
}

// readUnderFaults reads the files from a few goroutines until budget has
// passed, whole or at random offsets, and checks each read: the bytes read,
// before an error too, are the source's, and the error is EIO, within 30 s.
// It returns how many reads were right and how many failed with EIO.
func readUnderFaults(t *testing.T, top string, files map[string][]byte, budget time.Duration) (right, eio int64) {
	names := slices.Sorted(maps.Keys(files))
	var nRight, nEIO atomic.Int64
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	// check counts a read of want that returned got and err, or records a
	// problem: bytes that are not want's (got is shorter only with an
	// error), an error other than EIO, a read that hung.
	check := func(what string, got, want []byte, err error, elapsed time.Duration) {
		switch {
		case !bytes.Equal(got, want[:min(len(got), len(want))]) || len(got) > len(want):
			problem("%s: wrong bytes (%d read, error %v)", what, len(got), err)
		case err == nil && len(got) != len(want):
			problem("%s: %d bytes, want %d", what, len(got), len(want))
		case elapsed > 30*time.Second:
			problem("%s: took %v", what, elapsed)
		case err == nil:
			nRight.Add(1)
		case errors.Is(err, syscall.EIO):
			nEIO.Add(1)
		default:
			problem("%s: %v, want the content or EIO", what, err)
		}
	}
	// Past the budget, reading goes on until both outcomes were seen (on a
	// slow machine, caches may absorb the first faults), for a while.
	deadline, overtime := time.Now().Add(budget), time.Now().Add(budget+30*time.Second)
	more := func() bool {
		now := time.Now()
		return now.Before(deadline) || now.Before(overtime) && (nRight.Load() == 0 || nEIO.Load() == 0)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 77))
			for more() {
				// Large files more often than their number says: they
				// span many chunks.
				name := names[rng.IntN(len(names))]
				if rng.IntN(4) == 0 {
					name = []string{"large1", "large2", "sub/large3"}[rng.IntN(3)]
				}
				want := files[name]
				path := filepath.Join(top, name)
				start := time.Now()
				if rng.IntN(2) == 0 {
					got, err := readWhole(path)
					check(name, got, want, err, time.Since(start))
					continue
				}
				off := rng.IntN(len(want) + 1)
				n := 1 + rng.IntN(min(len(want)-off, 2*mib)+1)
				got, err := preadFresh(path, int64(off), n)
				end := min(off+n, len(want))
				check(fmt.Sprintf("%s[%d:%d]", name, off, end), got, want[off:end], err, time.Since(start))
			}
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	return nRight.Load(), nEIO.Load()
}

// openFresh opens path with its pages dropped from the kernel's page
// cache, so that reads reach the file system.
func openFresh(path string) (*os.File, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Fadvise(int(file.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		file.Close()
		return nil, fmt.Errorf("fadvise: %w", err)
	}
	return file, nil
}

// readWhole reads the file at path from the file system. With an error, it
// returns what it read before.
func readWhole(path string) ([]byte, error) {
	file, err := openFresh(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(file)
}

// preadFresh reads n bytes at off (fewer at the end of the file) from the
// file system. With an error, it returns what it read before.
func preadFresh(path string, off int64, n int) ([]byte, error) {
	file, err := openFresh(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	buf := make([]byte, n)
	k, err := file.ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:k], err
}

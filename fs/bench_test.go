package fs

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

// benchFileSize is the size of the file the benchmarks read.
const benchFileSize = 256 * mib

// benchMount mounts a point holding one file of pseudo-random data in
// 1 MiB chunks and returns the file's path.
func benchMount(b *testing.B, opts Options) string {
	b.Helper()
	src := newFakeSource()
	p := src.point("m", fixtureTime, []tree.Node{src.file("big", randomBytes(benchFileSize, 42), mib)})
	root, err := NewPointRoot(src, p, opts)
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(mountTest(b, root, opts), "big")
}

// dropPageCache evicts the file's pages from the kernel's page cache.
func dropPageCache(b *testing.B, f *os.File) {
	b.Helper()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSequentialRead reads the whole file with a cold page cache. The
// chunk cache is smaller than the file, so every pass loads every chunk
// from the Source again.
func BenchmarkSequentialRead(b *testing.B) {
	path := benchMount(b, Options{CacheBytes: 64 * mib})
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, mib)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dropPageCache(b, f)
		b.StartTimer()
		n, err := io.CopyBuffer(io.Discard, io.NewSectionReader(f, 0, benchFileSize+1), buf)
		if err != nil || n != benchFileSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

// BenchmarkRandom4K measures the latency of 4 KiB reads at random aligned
// offsets that miss the page cache, with the chunks in the chunk cache: the
// cost of a FUSE round trip.
func BenchmarkRandom4K(b *testing.B) {
	path := benchMount(b, Options{})
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil { // fill the chunk cache
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		b.Fatal(err)
	}
	const pages = benchFileSize / 4096
	r := rand.New(rand.NewPCG(3, 4))
	var order []int
	buf := make([]byte, 4096)
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if len(order) == 0 {
			// Visit every page once, then start again with a cold
			// page cache.
			b.StopTimer()
			dropPageCache(b, f)
			order = r.Perm(pages)
			b.StartTimer()
		}
		off := int64(order[0]) * 4096
		order = order[1:]
		start := time.Now()
		if n, err := f.ReadAt(buf, off); n != len(buf) || err != nil {
			b.Fatalf("ReadAt(%d): %d, %v", off, n, err)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Nanoseconds()), "p99-ns")
}

// Command randread measures the latency of random, block-aligned reads of
// one file (used by bench/bench.sh to measure reads through a FUSE mount).
//
//	randread -file F [-n 200] [-size 4096] [-seed 0] [-fadvise-random] [-fadvise-dontneed]
//
// With -fadvise-random the file is opened with POSIX_FADV_RANDOM: the kernel
// then does no read-ahead, so a page-cache miss costs exactly one small read
// from the filesystem (without it, read-ahead of a few 100 KiB to MiB per miss
// can turn most of the 200 reads into page-cache hits).
//
// With -fadvise-dontneed the file's pages are first dropped from the page
// cache (POSIX_FADV_DONTNEED): every read then reaches the filesystem, whose
// own caches a first pass may have warmed.
//
// It prints one line: "n=200 size=4096 p50_ms=0.123 p90_ms=0.456 max_ms=1.2".
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"
)

func main() {
	file := flag.String("file", "", "file to read (required)")
	n := flag.Int("n", 200, "number of reads")
	size := flag.Int("size", 4096, "read size in bytes; offsets are aligned to it")
	seed := flag.Uint64("seed", 0, "random seed (0: time-based)")
	advRandom := flag.Bool("fadvise-random", false, "posix_fadvise(POSIX_FADV_RANDOM): no kernel read-ahead")
	advDontNeed := flag.Bool("fadvise-dontneed", false, "posix_fadvise(POSIX_FADV_DONTNEED) first: drop the file's cached pages")
	flag.Parse()
	if *file == "" || *n <= 0 || *size <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "randread:", err)
		os.Exit(1)
	}
	defer f.Close()
	if *advDontNeed {
		if err := fadvise(f, fadvDontNeed); err != nil {
			fmt.Fprintln(os.Stderr, "randread: fadvise:", err)
			os.Exit(1)
		}
	}
	if *advRandom {
		if err := fadvise(f, fadvRandom); err != nil {
			fmt.Fprintln(os.Stderr, "randread: fadvise:", err)
			os.Exit(1)
		}
	}
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, "randread:", err)
		os.Exit(1)
	}
	blocks := st.Size() / int64(*size)
	if blocks < 1 {
		fmt.Fprintf(os.Stderr, "randread: %s is smaller than %d bytes\n", *file, *size)
		os.Exit(1)
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	buf := make([]byte, *size)
	lat := make([]time.Duration, 0, *n)
	for i := 0; i < *n; i++ {
		off := rng.Int64N(blocks) * int64(*size)
		t0 := time.Now()
		m, err := f.ReadAt(buf, off)
		d := time.Since(t0)
		if err != nil && err != io.EOF {
			fmt.Fprintf(os.Stderr, "randread: read at %d: %v\n", off, err)
			os.Exit(1)
		}
		if m != *size {
			fmt.Fprintf(os.Stderr, "randread: short read at %d: %d bytes\n", off, m)
			os.Exit(1)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(lat))+0.5) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	fmt.Printf("n=%d size=%d p50_ms=%.3f p90_ms=%.3f max_ms=%.3f\n",
		len(lat), *size, ms(pct(0.50)), ms(pct(0.90)), ms(lat[len(lat)-1]))
}

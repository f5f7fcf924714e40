// Command mkscale creates the synthetic tree of the scale measurement
// (bench/scale.sh, issue 6 item 6): about two million files and a sparse
// 1 TiB file, the same bytes on every run.
//
//	mkscale [-wide 500000] [-deep 200] [-broad 1499600] [-sparse=true] DIR
//
// Under DIR (which must not exist, or be empty):
//
//	wide/w0000000 ...      -wide files in one directory: 3 in 4 empty, the
//	                       rest 1 KiB, one of 16 contents
//	deep/d000/d001/...     a chain of -deep directories, each holding one
//	                       small file (f) and one empty file (e)
//	broad/aNN/bNN/fNNNN    -broad files in 1,000-file directories two levels
//	                       down: 40% empty, 45% 1–4 KiB with one of 64
//	                       contents (dedup), 15% 1–4 KiB random
//	sparse.img             1 TiB, all hole except 4 KiB at 0, 1 GiB,
//	                       512 GiB + 12345 and the last 4 KiB (its last byte
//	                       is 0x5a); ftruncate, then pwrite
//
// Content is derived from the file's index by a seeded PRNG, so that two runs
// make equal trees (times and inode numbers aside). Files are made with
// openat/write/close relative to their directory's descriptor, by GOMAXPROCS
// workers, one directory at a time each. It prints the counts and how long it
// took; when done it writes DIR/.mkscale (the parameters), which scale.sh
// checks to reuse a tree.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SparseSize is the size of sparse.img; SparseLast its last byte.
const (
	SparseSize = 1 << 40
	SparseLast = 0x5a
)

// perDir is the number of files in a broad leaf directory.
const perDir = 1000

var files, bytes atomic.Int64

func main() {
	wide := flag.Int("wide", 500000, "files in wide/")
	deep := flag.Int("deep", 200, "levels of deep/")
	broad := flag.Int("broad", 1499600, "files under broad/")
	sparse := flag.Bool("sparse", true, "make sparse.img (1 TiB)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkscale [flags] DIR")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	start := time.Now()
	if err := run(dir, *wide, *deep, *broad, *sparse); err != nil {
		fmt.Fprintln(os.Stderr, "mkscale:", err)
		os.Exit(1)
	}
	el := time.Since(start)
	fmt.Printf("mkscale: %d files (%d MB) in %.1f s (%.0f files/s)\n",
		files.Load(), bytes.Load()>>20, el.Seconds(), float64(files.Load())/el.Seconds())
}

func run(dir string, wide, deep, broad int, sparse bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		return fmt.Errorf("%s must be empty (err %v)", dir, err)
	}
	// A job makes the files of one directory.
	type job struct {
		dir  string
		make func(dfd int) error
	}
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := inDir(j.dir, j.make); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}

	// wide/: split into jobs of 50,000 names so both workers share it.
	w := filepath.Join(dir, "wide")
	if err := os.Mkdir(w, 0o755); err != nil {
		return err
	}
	for lo := 0; lo < wide; lo += 50000 {
		hi := min(lo+50000, wide)
		jobs <- job{w, func(dfd int) error {
			for i := lo; i < hi; i++ {
				var data []byte
				if i%4 == 0 {
					data = pooled(uint64(i%16), 1024)
				}
				if err := create(dfd, fmt.Sprintf("w%07d", i), data); err != nil {
					return err
				}
			}
			return nil
		}}
	}

	// deep/: one chain, made here (it is small).
	p := filepath.Join(dir, "deep")
	for i := range deep {
		p = filepath.Join(p, fmt.Sprintf("d%03d", i))
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	for i := deep - 1; i >= 0; i-- {
		if err := inDir(p, func(dfd int) error {
			if err := create(dfd, "f", random(uint64(1<<40+i), 100)); err != nil {
				return err
			}
			return create(dfd, "e", nil)
		}); err != nil {
			return err
		}
		p = filepath.Dir(p)
	}

	// broad/aNN/bNN: directories of perDir files.
	ndirs := (broad + perDir - 1) / perDir
	for d := range ndirs {
		sub := filepath.Join(dir, "broad", fmt.Sprintf("a%02d", d/40), fmt.Sprintf("b%02d", d%40))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		lo, hi := d*perDir, min((d+1)*perDir, broad)
		jobs <- job{sub, func(dfd int) error {
			for i := lo; i < hi; i++ {
				if err := create(dfd, fmt.Sprintf("f%04d", i-lo), broadContent(i)); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	if sparse {
		if err := makeSparse(filepath.Join(dir, "sparse.img")); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ".mkscale"),
		fmt.Appendf(nil, "wide=%d deep=%d broad=%d sparse=%v\n", wide, deep, broad, sparse), 0o644)
}

// broadContent returns file i of broad/: empty, pooled or random.
func broadContent(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	size := 1024 + r.IntN(3073)
	switch k := r.IntN(100); {
	case k < 40:
		return nil
	case k < 85:
		return pooled(uint64(r.IntN(64)), size%4096+1)
	default:
		return random(uint64(i), size)
	}
}

// pool holds the 64 shared contents (4 KiB each; files take a prefix).
var pool = func() [][]byte {
	p := make([][]byte, 64)
	for i := range p {
		p[i] = random(uint64(1<<32+i), 4096)
	}
	return p
}()

// pooled returns the first n bytes of shared content k (n <= 4096). Equal
// (k, n) give identical files.
func pooled(k uint64, n int) []byte {
	if n > 4096 {
		n = 4096
	}
	return pool[k%64][:n]
}

// random returns n pseudo-random bytes from seed.
func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5ca1e))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// inDir runs f with a descriptor of dir.
func inDir(dir string, f func(dfd int) error) error {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	return f(dfd)
}

// create makes the file name in dfd holding data.
func create(dfd int, name string, data []byte) error {
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	if len(data) > 0 {
		if n, err := unix.Write(fd, data); err != nil || n != len(data) {
			unix.Close(fd)
			return &os.PathError{Op: "write", Path: name, Err: fmt.Errorf("%d of %d bytes: %v", n, len(data), err)}
		}
	}
	files.Add(1)
	bytes.Add(int64(len(data)))
	return unix.Close(fd)
}

// SparseData returns the data regions of sparse.img: offset → content.
func SparseData() map[int64][]byte {
	return map[int64][]byte{
		0:                 random(1, 4096),
		1 << 30:           random(2, 4096),
		512<<30 + 12345:   random(3, 4096),
		SparseSize - 4096: append(random(4, 4095), SparseLast),
	}
}

// makeSparse makes sparse.img: a 1 TiB hole with SparseData written in.
func makeSparse(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(SparseSize); err != nil {
		f.Close()
		return err
	}
	for off, data := range SparseData() {
		if _, err := f.WriteAt(data, off); err != nil {
			f.Close()
			return err
		}
		bytes.Add(int64(len(data)))
	}
	files.Add(1)
	return f.Close()
}

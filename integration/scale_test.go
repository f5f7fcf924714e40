package integration

// The short form of the scale measurement (bench/scale.sh, issue 6 item 6):
// a sparse 1 TiB file and a directory of 100,000 entries, backed up and
// read through a mount.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unmountCounters stops m and returns the counters of azmount's exit line.
func unmountCounters(t *testing.T, m *mount) (requests, bytesDown int64) {
	t.Helper()
	if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
		t.Fatalf("azmount: exit %d, %v; stderr:\n%s", code, err, m.stderr)
	}
	match := regexp.MustCompile(`msg=unmounted .*requests=(\d+) .*bytes_down=(\d+)`).FindStringSubmatch(m.stderr.String())
	if match == nil {
		t.Fatalf("azmount logged no unmounted line with counters; stderr:\n%s", m.stderr)
	}
	requests, _ = strconv.ParseInt(match[1], 10, 64)
	bytesDown, _ = strconv.ParseInt(match[2], 10, 64)
	return requests, bytesDown
}

// TestSparseTiB backs up a 1 TiB file that is all hole but for a few KiB,
// one of them its last byte: the backup reads and stores only the data (in
// seconds), and the mount serves the last byte and the data at every offset,
// finds data and holes with SEEK_DATA/SEEK_HOLE, and fetches KiB, not the
// file.
func TestSparseTiB(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	path := filepath.Join(src, "sparse.img")
	const size = int64(1) << 40
	data := map[int64][]byte{
		0:               randomBytes(4096, 1),
		1<<30 + 7:       randomBytes(3000, 2),
		700 << 30:       randomBytes(8192, 3),
		size - 4096 + 1: append(randomBytes(4094, 4), 0x5a), // ends at the last byte
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		unavailable(t, fmt.Sprintf("this file system takes no 1 TiB sparse file: %v", err))
	}
	var stored int64
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		stored += int64(len(b))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		unavailable(t, fmt.Sprintf("this file system does not keep holes: the 1 TiB file takes %d bytes", st.Blocks*512))
	}

	start := time.Now()
	out := e.backup(src)
	rss := int64(out.PeakRSS)
	took := time.Since(start)
	t.Logf("backup of a 1 TiB sparse file (%d bytes of data): %v, read %d bytes, %d bytes up, peak RSS %d MiB",
		stored, took.Round(time.Millisecond), out.Stats.BytesRead, out.Storage.BytesUp, rss>>20)
	if took > 30*time.Second {
		t.Errorf("backup took %v: the holes must not be read", took)
	}
	if out.Stats.Bytes != uint64(size) {
		t.Errorf("backup stats: bytes = %d, want %d", out.Stats.Bytes, size)
	}
	// The data lies in a few file system blocks: a few 4 KiB blocks each.
	if out.Stats.BytesRead > 1<<20 {
		t.Errorf("backup read %d bytes of a file holding %d: it read holes", out.Stats.BytesRead, stored)
	}
	if out.Storage.BytesUp > 4<<20 {
		t.Errorf("backup stored %d bytes for %d bytes of data", out.Storage.BytesUp, stored)
	}

	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	m := e.mount(mnt, "--point", "latest")
	inMount := filepath.Join(mnt, path)
	g, err := os.Open(inMount)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fi, err := g.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size {
		t.Fatalf("mount: size %d, want %d", fi.Size(), size)
	}
	start = time.Now()
	last := make([]byte, 1)
	if _, err := g.ReadAt(last, size-1); err != nil && err != io.EOF {
		t.Fatalf("read the last byte through the mount: %v", err)
	}
	t.Logf("last byte through the mount: %v", time.Since(start).Round(time.Microsecond))
	if last[0] != 0x5a {
		t.Errorf("last byte = %#x, want 0x5a", last[0])
	}
	for off, want := range data {
		// The data and a little hole on each side of it.
		lo := max(off-100, 0)
		got := make([]byte, min(int64(len(want))+200, size-lo))
		if _, err := g.ReadAt(got, lo); err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", lo, err)
		}
		exp := make([]byte, len(got))
		copy(exp[off-lo:], want)
		if !bytes.Equal(got, exp) {
			t.Errorf("mount: bytes around offset %d differ from the source", off)
		}
	}
	// A read in the middle of the hole is zeros.
	hole := make([]byte, 64<<10)
	hole[0] = 1
	if _, err := g.ReadAt(hole, 300<<30); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hole, make([]byte, len(hole))) {
		t.Error("mount: the hole at 300 GiB does not read as zeros")
	}

	// SEEK_DATA and SEEK_HOLE: the mount finds the source's data regions.
	src0, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src0.Close()
	for _, off := range []int64{0, 4096, 5000, 1 << 30, 1<<30 + 5000, 300 << 30, 700 << 30, size - 8192, size - 1} {
		for _, whence := range []int{unix.SEEK_DATA, unix.SEEK_HOLE} {
			want, werr := unix.Seek(int(src0.Fd()), off, whence)
			got, gerr := unix.Seek(int(g.Fd()), off, whence)
			if gerr != nil && werr == nil {
				t.Errorf("mount: lseek(%d, whence %d): %v, source says %d", off, whence, gerr, want)
				continue
			}
			if werr != nil || gerr != nil {
				if !errors.Is(gerr, werr) {
					t.Errorf("mount: lseek(%d, whence %d): %d %v, source %d %v", off, whence, got, gerr, want, werr)
				}
				continue
			}
			// The source's regions are whole blocks; the mount's are
			// what was read from them, so they agree.
			if got != want {
				t.Errorf("mount: lseek(%d, whence %d) = %d, source %d", off, whence, got, want)
			}
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	requests, down := unmountCounters(t, m)
	t.Logf("azmount fetched %d bytes in %d requests", down, requests)
	if down > 8<<20 {
		t.Errorf("azmount fetched %d bytes to read a few KiB of a sparse file", down)
	}
}

// TestWideDirectory backs up one directory of 100,000 entries, lists it
// through a mount and looks some of its entries up.
func TestWideDirectory(t *testing.T) {
	requireFUSE(t)
	const n = 100000
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	wide := mkdir(t, filepath.Join(src, "wide"))
	start := time.Now()
	dfd, err := unix.Open(wide, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("entry-%06d", i) }
	content := func(i int) []byte { return fmt.Appendf(nil, "file %d\n", i) }
	for i := range n {
		fd, err := unix.Openat(dfd, name(i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			unix.Close(dfd)
			t.Fatal(err)
		}
		if i%1000 == 0 {
			if _, err := unix.Write(fd, content(i)); err != nil {
				t.Fatal(err)
			}
		}
		unix.Close(fd)
	}
	unix.Close(dfd)
	t.Logf("made %d files in %v", n, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	out := e.backup(src)
	rss := int64(out.PeakRSS)
	t.Logf("backup of %d entries in one directory: %v, peak RSS %d MiB", n, time.Since(start).Round(time.Millisecond), rss>>20)
	if out.Stats.Files != n {
		t.Errorf("backup stats: files = %d, want %d", out.Stats.Files, n)
	}
	// A guard against runaway memory only; bench/scale.sh measures it.
	if rss > 1<<30 {
		t.Errorf("backup peak RSS %d MiB for %d files", rss>>20, n)
	}

	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	e.mount(mnt, "--point", "latest")
	inMount := filepath.Join(mnt, wide)
	start = time.Now()
	d, err := os.Open(inMount)
	if err != nil {
		t.Fatal(err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		t.Fatalf("readdir through the mount: %v", err)
	}
	t.Logf("readdir of %d entries through the mount: %v", len(names), time.Since(start).Round(time.Millisecond))
	if len(names) != n {
		t.Fatalf("readdir through the mount: %d names, want %d", len(names), n)
	}
	seen := make(map[string]bool, n)
	for _, s := range names {
		seen[s] = true
	}
	if len(seen) != n || !seen[name(0)] || !seen[name(n-1)] {
		t.Errorf("readdir through the mount: %d distinct names; first present %v, last %v", len(seen), seen[name(0)], seen[name(n-1)])
	}

	// Lookups on a fresh path (no readdir cache helps): first, last, in
	// between, and missing names.
	for _, i := range []int{0, 1, 999, 1000, 50000, 77777, n - 1000, n - 1} {
		p := filepath.Join(inMount, name(i))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("lookup %s: %v", name(i), err)
			continue
		}
		var want []byte
		if i%1000 == 0 {
			want = content(i)
		}
		if fi.Size() != int64(len(want)) {
			t.Errorf("%s: size %d, want %d", name(i), fi.Size(), len(want))
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %q, %v; want %q", name(i), got, err, want)
		}
	}
	for _, s := range []string{"entry-", "entry-100000", "entry-0500000", "zzz", "a"} {
		if _, err := os.Lstat(filepath.Join(inMount, s)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lookup of missing %q: %v, want ENOENT", s, err)
		}
	}
}

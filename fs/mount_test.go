package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// mountTest mounts root in a temporary directory, unmounted when the test
// ends.
func mountTest(t testing.TB, root gofs.InodeEmbedder, opts Options) string {
	t.Helper()
	testfiles.RequireFUSE(t)
	dir := t.TempDir()
	server, err := Mount(dir, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

func lstat(t *testing.T, path string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func TestMountedPoint(t *testing.T) {
	f := newFixture(t)
	var logs logBuffer
	root, err := NewPointRoot(f.src, f.point, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	p := func(name string) string { return filepath.Join(mnt, name) }

	t.Run("walk", func(t *testing.T) {
		var paths []string
		err := filepath.WalkDir(mnt, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			paths = append(paths, strings.TrimPrefix(path, mnt))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + 16 + 3000 + 1; len(paths) != want {
			t.Errorf("walk found %d paths, want %d", len(paths), want)
		}
		for _, want := range []string{"/bad\xffname", "/many/f0000", "/many/f2999", "/sub/hard2", "/fifo", "/link"} {
			if !slices.Contains(paths, want) {
				t.Errorf("walk did not find %q", want)
			}
		}
	})

	t.Run("content", func(t *testing.T) {
		for name, want := range map[string][]byte{
			"big":          f.big,
			"sparse":       f.sparse,
			"empty":        {},
			"hard1":        f.hard,
			"sub/hard2":    f.hard,
			"bad\xffname":  []byte("not utf-8"),
			"link":         f.big,
			"many/f1234":   {},
			"xattrs":       []byte("x"),
			"suid":         {},
			"sub/../empty": {},
		} {
			got, err := os.ReadFile(p(name))
			if err != nil {
				t.Errorf("%q: %v", name, err)
				continue
			}
			if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Errorf("%q: read %d bytes with another hash than the %d bytes stored", name, len(got), len(want))
			}
		}
	})

	t.Run("attributes", func(t *testing.T) {
		fi, st := lstat(t, p("big"))
		if fi.Mode() != 0o644 || fi.Size() != int64(len(f.big)) || st.Uid != 1000 || st.Gid != 1001 || st.Nlink != 1 || st.Blksize != 4096 {
			t.Errorf("big: mode %v size %d owner %d:%d nlink %d blksize %d", fi.Mode(), fi.Size(), st.Uid, st.Gid, st.Nlink, st.Blksize)
		}
		if st.Mtim.Nano() != 1_700_000_000_123_456_789 || st.Atim.Nano() != 1_700_000_001_000_000_001 || st.Ctim.Nano() != 1_700_000_002_999_999_999 {
			t.Errorf("big: times %v %v %v", st.Mtim, st.Atim, st.Ctim)
		}
		if fi, _ := lstat(t, p("old")); fi.ModTime().UnixNano() != -1_500_000_000 {
			t.Errorf("old: mtime %v", fi.ModTime())
		}
		fi, st = lstat(t, p("sparse"))
		if fi.Size() != 10*mib || st.Blocks != int64((f.sparseLen+511)/512) {
			t.Errorf("sparse: size %d blocks %d, want %d blocks", fi.Size(), st.Blocks, (f.sparseLen+511)/512)
		}
		if fi, _ := lstat(t, p("empty")); fi.Size() != 0 || !fi.Mode().IsRegular() {
			t.Errorf("empty: %v %d", fi.Mode(), fi.Size())
		}
		if fi, _ := lstat(t, p("fifo")); fi.Mode() != fs.ModeNamedPipe|0o640 {
			t.Errorf("fifo: mode %v", fi.Mode())
		}
		fi, st = lstat(t, p("null"))
		if fi.Mode() != fs.ModeDevice|fs.ModeCharDevice|0o666 || st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("null: mode %v rdev %#x", fi.Mode(), st.Rdev)
		}
		fi, st = lstat(t, p("disk"))
		if fi.Mode() != fs.ModeDevice|0o660 || st.Rdev != unix.Mkdev(259, 70000) {
			t.Errorf("disk: mode %v rdev %d:%d", fi.Mode(), unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if fi, _ := lstat(t, p("sock")); fi.Mode() != fs.ModeSocket|0o755 {
			t.Errorf("sock: mode %v", fi.Mode())
		}
		if fi, _ := lstat(t, p("suid")); fi.Mode() != fs.ModeSetuid|0o755 {
			t.Errorf("suid: mode %v", fi.Mode())
		}
		if fi, _ := lstat(t, p("link")); fi.Mode() != fs.ModeSymlink|0o777 || fi.Size() != 3 {
			t.Errorf("link: mode %v size %d", fi.Mode(), fi.Size())
		}
		if target, err := os.Readlink(p("link")); err != nil || target != "big" {
			t.Errorf("readlink: %q, %v", target, err)
		}
		if fi, st := lstat(t, p("many")); !fi.IsDir() || fi.Mode().Perm() != 0o755 || st.Nlink < 2 {
			t.Errorf("many: mode %v nlink %d", fi.Mode(), st.Nlink)
		}
		if _, err := os.Lstat(p("missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing: %v", err)
		}
	})

	t.Run("hard links", func(t *testing.T) {
		_, st1 := lstat(t, p("hard1"))
		_, st2 := lstat(t, p("sub/hard2"))
		if st1.Ino != st2.Ino || st1.Nlink != 2 {
			t.Errorf("hard links: inodes %d and %d, nlink %d", st1.Ino, st2.Ino, st1.Nlink)
		}
		_, big := lstat(t, p("big"))
		if big.Ino == st1.Ino || big.Ino < 2 {
			t.Errorf("big has inode %d", big.Ino)
		}
		// Both names lead to one go-fuse inode.
		top := root.EmbeddedInode()
		if h1, h2 := top.GetChild("hard1"), top.GetChild("sub").GetChild("hard2"); h1 == nil || h1 != h2 {
			t.Errorf("hard links are distinct inodes %p and %p", h1, h2)
		}
	})

	t.Run("xattrs", func(t *testing.T) {
		buf := make([]byte, 256)
		n, err := unix.Listxattr(p("xattrs"), buf)
		if err != nil || string(buf[:n]) != "user.greeting\x00user.one\x00" {
			t.Errorf("listxattr: %q, %v", buf[:n], err)
		}
		n, err = unix.Getxattr(p("xattrs"), "user.greeting", buf)
		if err != nil || string(buf[:n]) != "hello world" {
			t.Errorf("getxattr: %q, %v", buf[:n], err)
		}
		if _, err := unix.Getxattr(p("xattrs"), "user.none", buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("missing xattr: %v", err)
		}
		if n, err := unix.Listxattr(p("big"), buf); n != 0 || err != nil {
			t.Errorf("big: listxattr %d, %v", n, err)
		}
		if _, err := unix.Getxattr(p("big"), "user.one", buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("big: getxattr %v", err)
		}
	})

	t.Run("big directory", func(t *testing.T) {
		entries, err := os.ReadDir(p("many"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, f.manyNames) {
			t.Errorf("readdir returned %d names, want the %d entries", len(names), len(f.manyNames))
		}
	})

	t.Run("random reads", func(t *testing.T) {
		file, err := os.Open(p("big"))
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		r := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			boundary := int64(r.IntN(6)) * mib
			off := max(0, boundary+int64(r.IntN(64<<10))-32<<10)
			buf := make([]byte, 1+r.IntN(2*mib))
			n, err := file.ReadAt(buf, off)
			want := f.big[min(off, int64(len(f.big))):min(off+int64(len(buf)), int64(len(f.big)))]
			if n != len(want) || (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], want) {
				t.Fatalf("ReadAt(%d bytes at %d): %d, %v; want %d bytes of content", len(buf), off, n, err, len(want))
			}
		}
	})

	t.Run("damage", func(t *testing.T) {
		if _, err := os.ReadFile(p("damaged")); !errors.Is(err, syscall.EIO) {
			t.Errorf("damaged file: %v, want EIO", err)
		}
		if _, err := os.ReadFile(p("damaged")); !errors.Is(err, syscall.EIO) {
			t.Errorf("damaged file again: %v, want EIO", err)
		}
		for name, want := range map[string][]byte{"big": f.big, "sparse": f.sparse} {
			if got, err := os.ReadFile(p(name)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s next to a damaged file: %v", name, err)
			}
		}
		if n := strings.Count(logs.String(), "damaged chunk"); n != 1 {
			t.Errorf("damage logged %d times, want once:\n%s", n, logs.String())
		}
	})

	t.Run("read-only", func(t *testing.T) {
		if err := os.WriteFile(p("new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("create: %v, want EROFS", err)
		}
		if _, err := os.OpenFile(p("big"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("open for writing: %v, want EROFS", err)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil || st.Bsize != 4096 || st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("statfs: %+v, %v", st, err)
		}
	})

	t.Run("busy mountpoint", func(t *testing.T) {
		_, err := Mount(mnt, &staticDir{}, Options{})
		if !errors.Is(err, ErrMountpoint) || !strings.HasSuffix(err.Error(), "is busy (already mounted or not empty)") {
			t.Errorf("mounting over a mount: %v", err)
		}
	})

	t.Run("read-ahead setting", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		var st unix.Stat_t
		if err := unix.Stat(mnt, &st); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
		if err != nil || strings.TrimSpace(string(b)) != readAheadKB {
			t.Errorf("read_ahead_kb: %q, %v", b, err)
		}
	})
}

func TestMountedRequests(t *testing.T) {
	testfiles.RequireFUSE(t)
	f := newFixture(t)
	root, err := NewPointRoot(f.src, f.point, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var trace logBuffer
	opts := mountOptions(Options{})
	opts.Debug = true
	opts.MountOptions.Logger = log.New(&trace, "", 0)
	dir := t.TempDir()
	server, err := mount(dir, root, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})

	for _, name := range []string{"big", "big", "sparse", "hard1", "sub/hard2"} {
		if _, err := os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// go-fuse opens a file of its own while mounting: its node ID is
	// ^uint64(0).
	pollHack := fmt.Sprintf("n%d ", ^uint64(0))
	count := func(op string) int {
		n := 0
		for _, line := range strings.Split(trace.String(), "\n") {
			if strings.HasPrefix(line, "rx ") && strings.Contains(line, ": "+op+" ") && !strings.Contains(line, pollHack) {
				n++
			}
		}
		return n
	}
	// The first OPEN gets ENOSYS; the kernel then opens every file
	// without asking and never releases them.
	if n := count("OPEN"); n != 1 {
		t.Errorf("%d OPEN requests for 5 opens, want 1", n)
	}
	if n := count("RELEASE"); n != 0 {
		t.Errorf("%d RELEASE requests, want 0", n)
	}
	if n := count("FLUSH"); n > 1 {
		t.Errorf("%d FLUSH requests, want at most 1", n)
	}
	// Reading big twice: the second time comes from the page cache.
	if n := strings.Count(trace.String(), "READ n"); n > 2*len(f.big)/mib+20 {
		t.Errorf("%d READ requests", n)
	}
	// The raised read-ahead lets READ requests reach 1 MiB.
	if os.Geteuid() == 0 && !strings.Contains(trace.String(), "+1048576)") {
		t.Errorf("no 1 MiB READ request:\n%s", trace.String())
	}
}

func TestMountedNoXattrs(t *testing.T) {
	f := newFixture(t)
	root, err := NewPointRoot(f.src, f.point, Options{NoXattrs: true})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, Options{NoXattrs: true})
	buf := make([]byte, 64)
	for range 2 {
		if _, err := unix.Getxattr(filepath.Join(mnt, "big"), "user.one", buf); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("getxattr: %v, want EOPNOTSUPP", err)
		}
		if _, err := unix.Listxattr(filepath.Join(mnt, "big"), buf); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("listxattr: %v, want EOPNOTSUPP", err)
		}
	}
}

func TestMountedAllPoints(t *testing.T) {
	src := newFakeSource()
	t1 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	file := func(content string) []tree.Node { return []tree.Node{src.file("f", []byte(content), 1024)} }
	old := src.point("web", t1, file("old"))
	newer := src.point("web", t1.Add(time.Hour), file("new"))
	db := src.point("db", t1, file("db"))
	twin := src.point("db", t1, file("twin"))
	root, err := NewAllPointsRoot(src, []Point{newer, db, old, twin}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, Options{})

	names := func(dir string) []string {
		t.Helper()
		return dirNames(t, filepath.Join(mnt, dir))
	}
	if got := names("."); !slices.Equal(got, []string{"db", "web"}) {
		t.Errorf("root: %v", got)
	}
	if got := names("web"); !slices.Equal(got, []string{"2024-03-01T12-00-00Z", "2024-03-01T13-00-00Z", "latest"}) {
		t.Errorf("web: %v", got)
	}
	// Equal times: ordered by ID, the greater ID is the latest.
	first, second, latestDB := db, twin, "twin"
	if slices.Compare(db.ID[:], twin.ID[:]) > 0 {
		first, second, latestDB = twin, db, "db"
	}
	wantDB := []string{"2024-03-01T12-00-00Z-" + first.ID.Short(), "2024-03-01T12-00-00Z-" + second.ID.Short(), "latest"}
	if got := names("db"); !slices.Equal(got, wantDB) {
		t.Errorf("db: %v, want %v", got, wantDB)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "web/latest")); err != nil || target != "2024-03-01T13-00-00Z" {
		t.Errorf("web/latest: %q, %v", target, err)
	}
	for path, want := range map[string]string{
		"web/latest/f":               "new",
		"web/2024-03-01T12-00-00Z/f": "old",
		"db/latest/f":                latestDB,
	} {
		if got, err := os.ReadFile(filepath.Join(mnt, path)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
	fi, err := os.Lstat(filepath.Join(mnt, "web/2024-03-01T12-00-00Z"))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("point directory: %v, %v", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(mnt, "web")); err != nil || !fi.ModTime().Equal(t1.Add(time.Hour)) {
		t.Errorf("machine directory: %v, %v", fi, err)
	}
	// Points in different directories have distinct inodes.
	_, st1 := lstat(t, filepath.Join(mnt, "web/2024-03-01T12-00-00Z/f"))
	_, st2 := lstat(t, filepath.Join(mnt, "web/2024-03-01T13-00-00Z/f"))
	if st1.Ino == st2.Ino {
		t.Errorf("files of two points share inode %d", st1.Ino)
	}
}

func TestMountedDamagedPointRoot(t *testing.T) {
	src := newFakeSource()
	good := src.point("m", time.Unix(0, 0), []tree.Node{src.file("f", []byte("ok"), 1024)})
	bad := src.point("m", time.Unix(1, 0), nil)
	src.damaged[bad.Root] = true
	root, err := NewAllPointsRoot(src, []Point{good, bad}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, Options{})
	if _, err := os.Lstat(filepath.Join(mnt, "m/1970-01-01T00-00-01Z")); !errors.Is(err, syscall.EIO) {
		t.Errorf("damaged point: %v, want EIO", err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "m/1970-01-01T00-00-00Z/f")); err != nil || string(got) != "ok" {
		t.Errorf("intact point: %q, %v", got, err)
	}
}

// TestMountedReadAheadSiblings: reading a small file whole through the
// mount starts loading the first chunks of the next files in its directory
// (as many as the read-ahead), skipping directories; a 4 KiB read in the
// middle of a large file loads its one chunk and nothing else.
func TestMountedReadAheadSiblings(t *testing.T) {
	src := newFakeSource()
	var entries []tree.Node
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		entries = append(entries, src.file(name, randomBytes(10<<10, uint64(name[0])), 64<<10))
	}
	entries = append(entries, src.dir("bsub", []tree.Node{src.file("inner", []byte("x"), 1024)}, 10))
	big := randomBytes(8*mib, 3)
	entries = append(entries, src.file("zbig", big, mib))
	slices.SortFunc(entries, func(a, b tree.Node) int { return strings.Compare(a.Name, b.Name) })
	root, err := NewPointRoot(src, src.point("m", fixtureTime, entries), Options{ReadAhead: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := mountTest(t, root, Options{})
	first := func(name string) keys.ID {
		for _, e := range entries {
			if e.Name == name {
				return e.Extents[0].ID
			}
		}
		t.Fatalf("no entry %q", name)
		return keys.ID{}
	}
	fd, err := os.Open(filepath.Join(dir, "zbig"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := fd.ReadAt(buf, 3*mib+8192); err != nil || !bytes.Equal(buf, big[3*mib+8192:3*mib+8192+4096]) {
		t.Fatalf("read of zbig: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := src.chunkLoads(); n != 1 {
		t.Errorf("a cold 4 KiB read in the middle of zbig loaded %d chunks, want 1", n)
	}

	if got, err := os.ReadFile(filepath.Join(dir, "b")); err != nil || len(got) != 10<<10 {
		t.Fatalf("read b: %d bytes, %v", len(got), err)
	}
	// After b (bsub is a directory): c, d, e.
	waitFor(t, "c, d and e loaded ahead", func() bool {
		return src.loadCount(first("c")) == 1 && src.loadCount(first("d")) == 1 && src.loadCount(first("e")) == 1
	})
	time.Sleep(50 * time.Millisecond)
	for _, name := range []string{"a", "f", "g"} {
		if n := src.loadCount(first(name)); n != 0 {
			t.Errorf("%s loaded %d times after reading b, want 0", name, n)
		}
	}
}

// TestMountedChunkCacheHoldsFileOfItsShare: a file of 16 MiB, read once
// through a mount bounded at 32 MiB, stays in the chunk cache (17.8 MiB of
// the bound where the chunk buffers lie outside the Go heap; it was 14.9
// MiB, five eighths of the chunks' share, the rest the collector's room):
// random 4 KiB reads then load no chunk. The chunk buffers mapped are
// exactly those the cache and its free list hold.
func TestMountedChunkCacheHoldsFileOfItsShare(t *testing.T) {
	if !chunkBuffersOffHeap {
		t.Skip("chunk buffers on the Go heap on this system")
	}
	src := newFakeSource()
	const chunkSize = mib - sealedRoom // a buffer of exactly 1 MiB (sizeClass)
	data := randomBytes(16*chunkSize, 5)
	root, err := NewPointRoot(src, src.point("m", fixtureTime, []tree.Node{src.file("big", data, chunkSize)}), Options{CacheBytes: 32 * mib})
	if err != nil {
		t.Fatal(err)
	}
	dir := mountTest(t, root, Options{})
	fd, err := os.Open(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if got, err := io.ReadAll(fd); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read big: %d bytes, %v", len(got), err)
	}
	// Drop the kernel's copy: reads go to the mount.
	if err := unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	loaded := src.chunkLoads()
	rng := rand.New(rand.NewPCG(5, 15))
	buf := make([]byte, 4096)
	for range 200 {
		off := rng.Int64N(int64(len(data) - len(buf)))
		if _, err := fd.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Fatalf("read 4 KiB at %d: %v", off, err)
		}
	}
	if n := src.chunkLoads() - loaded; n != 0 {
		t.Errorf("200 random 4 KiB reads of a file read once loaded %d chunks, want 0", n)
	}
	v := root.(*dirNode).pt.v
	if mapped, held := v.free.mappedBytes(), v.chunks.Bytes()+v.free.kept(); mapped != held {
		t.Errorf("%d bytes of chunk buffers mapped, want %d: those cached and kept", mapped, held)
	}
}

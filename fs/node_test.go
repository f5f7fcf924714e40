package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

func TestNewPointRootRejectsBadRoot(t *testing.T) {
	src := newFakeSource()
	file := tree.Node{Name: "root", Type: tree.File, Links: 1}
	dir := tree.Node{Name: "root", Type: tree.Dir, Links: 2}
	other := tree.Node{Name: "other", Type: tree.Dir, Links: 2}
	for name, nodes := range map[string][]tree.Node{
		"file":     {file},
		"two":      {other, dir},
		"misnamed": {other},
		"empty":    nil,
	} {
		p := Point{ID: src.newID(), Root: src.addPart(nodes)}
		if _, err := NewPointRoot(src, p, Options{}); !errors.Is(err, errBadRoot) {
			t.Errorf("%s: err = %v, want errBadRoot", name, err)
		}
	}
	p := Point{ID: src.newID(), Root: src.newID()}
	src.damaged[p.Root] = true
	if _, err := NewPointRoot(src, p, Options{}); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("damaged root: err = %v, want keys.ErrAuth", err)
	}
}

func TestLookupLoadsOnlyThePartHoldingTheName(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	many, _ := lookup(t, root, "many")
	parts := many.(*dirNode).meta.Load().node.Parts
	if len(parts) != 3 {
		t.Fatalf("many has %d parts, want 3", len(parts))
	}

	_, out := lookup(t, many, "f2500")
	if out.Attr.Mode != syscall.S_IFREG|0o644 {
		t.Errorf("f2500 mode = %o", out.Attr.Mode)
	}
	for i, want := range []int{0, 0, 1} {
		if got := f.src.loadCount(parts[i].ID); got != want {
			t.Errorf("part %d loaded %d times, want %d", i, got, want)
		}
	}
	for _, name := range []string{"f3000", "a", "f1000x", "zzz"} {
		var out fuse.EntryOut
		if _, errno := many.(*dirNode).Lookup(context.Background(), name, &out); errno != syscall.ENOENT {
			t.Errorf("lookup %q: errno %v, want ENOENT", name, errno)
		}
	}
	// Loads go through the part cache.
	lookup(t, many, "f2999")
	if got := f.src.loadCount(parts[2].ID); got != 1 {
		t.Errorf("part 2 loaded %d times, want 1", got)
	}
}

func TestReaddirStreamsPartsInOrder(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	manyOps, _ := lookup(t, root, "many")
	many := manyOps.(*dirNode)
	parts := many.meta.Load().node.Parts

	ds, errno := many.Readdir(context.Background())
	if errno != 0 {
		t.Fatal(errno)
	}
	defer ds.Close()
	var names []string
	for ds.HasNext() {
		e, errno := ds.Next()
		if errno != 0 {
			t.Fatal(errno)
		}
		if len(names) == 0 {
			// Only the first part is loaded for the first entry.
			if a, b := f.src.loadCount(parts[1].ID), f.src.loadCount(parts[2].ID); a+b != 0 {
				t.Errorf("after the first entry, later parts were loaded %d and %d times", a, b)
			}
		}
		if e.Off != uint64(len(names)+1) {
			t.Errorf("entry %d has offset %d", len(names), e.Off)
		}
		if e.Mode != syscall.S_IFREG {
			t.Errorf("entry %q mode %o", e.Name, e.Mode)
		}
		if len(names)%997 == 0 {
			_, out := lookup(t, many, e.Name)
			if out.Attr.Ino != e.Ino {
				t.Errorf("entry %q: readdir ino %d, lookup ino %d", e.Name, e.Ino, out.Attr.Ino)
			}
		}
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != strings.Join(f.manyNames, ",") {
		t.Errorf("readdir returned %d names, want the %d entries in order", len(names), len(f.manyNames))
	}

	seeker := ds.(gofs.FileSeekdirer)
	if errno := seeker.Seekdir(context.Background(), 1500); errno != 0 {
		t.Fatal(errno)
	}
	if e, _ := ds.Next(); e.Name != "f1500" || e.Off != 1501 {
		t.Errorf("after seeking to 1500: %v", e)
	}
	if errno := seeker.Seekdir(context.Background(), 3001); errno != syscall.EINVAL {
		t.Errorf("seek past the end: errno %v, want EINVAL", errno)
	}
}

func TestReaddirReportsPartFailureAndRetries(t *testing.T) {
	f := newFixture(t)
	var logs logBuffer
	root := newTestRoot(t, f.src, f.point, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	manyOps, _ := lookup(t, root, "many")
	many := manyOps.(*dirNode)
	bad := many.meta.Load().node.Parts[1].ID
	f.src.mu.Lock()
	f.src.failing[bad] = true
	f.src.mu.Unlock()

	fh, flags, errno := many.OpendirHandle(context.Background(), 0)
	if errno != 0 || flags&fuse.FOPEN_CACHE_DIR == 0 {
		t.Fatalf("OpendirHandle: flags %x, errno %v", flags, errno)
	}
	h := fh.(*dirHandle)
	n := 0
	for {
		e, errno := h.Readdirent(context.Background())
		if errno != 0 {
			if errno != syscall.EIO || n != 1000 {
				t.Fatalf("after %d entries: errno %v, want EIO after 1000", n, errno)
			}
			break
		}
		if e == nil {
			t.Fatal("listing ended without reporting the failing part")
		}
		n++
	}
	if !strings.Contains(logs.String(), "load tree part failed") {
		t.Errorf("log does not report the failure: %s", logs.String())
	}
	f.src.mu.Lock()
	f.src.failing[bad] = false
	f.src.mu.Unlock()
	for {
		e, errno := h.Readdirent(context.Background())
		if errno != 0 {
			t.Fatal(errno)
		}
		if e == nil {
			break
		}
		n++
		// READDIRPLUS lookups of the entry just listed need no search.
		var out fuse.EntryOut
		if _, errno := h.Lookup(context.Background(), e.Name, &out); errno != 0 || out.Attr.Ino != e.Ino {
			t.Fatalf("lookup %q: errno %v, ino %d, want %d", e.Name, errno, out.Attr.Ino, e.Ino)
		}
	}
	if n != 3000 {
		t.Errorf("listed %d entries, want 3000", n)
	}
}

func TestAttributes(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	for _, tc := range []struct {
		path   string
		mode   uint32
		size   uint64
		blocks uint64
		nlink  uint32
		check  func(a fuse.Attr) error
	}{
		{path: "big", mode: syscall.S_IFREG | 0o644, size: uint64(len(f.big)), blocks: (uint64(len(f.big)) + 511) / 512, nlink: 1, check: func(a fuse.Attr) error {
			if a.Uid != 1000 || a.Gid != 1001 {
				return fmt.Errorf("owner %d:%d", a.Uid, a.Gid)
			}
			if a.Mtime != 1_700_000_000 || a.Mtimensec != 123_456_789 || a.Atimensec != 1 || a.Ctimensec != 999_999_999 {
				return fmt.Errorf("times %d.%d %d.%d %d.%d", a.Mtime, a.Mtimensec, a.Atime, a.Atimensec, a.Ctime, a.Ctimensec)
			}
			return nil
		}},
		{path: "sparse", mode: syscall.S_IFREG | 0o600, size: 10 * mib, blocks: (f.sparseLen + 511) / 512, nlink: 1},
		{path: "empty", mode: syscall.S_IFREG | 0o644, nlink: 1},
		{path: "link", mode: syscall.S_IFLNK | 0o777, size: 3, nlink: 1},
		{path: "fifo", mode: syscall.S_IFIFO | 0o640, nlink: 1},
		{path: "null", mode: syscall.S_IFCHR | 0o666, nlink: 1, check: func(a fuse.Attr) error {
			if a.Rdev != 1<<8|3 {
				return fmt.Errorf("rdev %#x", a.Rdev)
			}
			return nil
		}},
		{path: "disk", mode: syscall.S_IFBLK | 0o660, nlink: 1},
		{path: "sock", mode: syscall.S_IFSOCK | 0o755, nlink: 1},
		{path: "suid", mode: syscall.S_IFREG | 0o4755, nlink: 1},
		{path: "hard1", mode: syscall.S_IFREG | 0o644, size: 3000, blocks: 6, nlink: 2},
		{path: "many", mode: syscall.S_IFDIR | 0o755, nlink: 2},
		{path: "old", mode: syscall.S_IFREG | 0o644, size: 3, blocks: 1, nlink: 1, check: func(a fuse.Attr) error {
			if int64(a.Mtime) != -2 || a.Mtimensec != 500_000_000 {
				return fmt.Errorf("mtime %d.%d, want -2.5e8", int64(a.Mtime), a.Mtimensec)
			}
			if a.Atime != 16_725_225_600 || a.Atimensec != 0 {
				return fmt.Errorf("atime %d.%d, want 16725225600 (2500-01-01)", a.Atime, a.Atimensec)
			}
			return nil
		}},
	} {
		node, entry := lookup(t, root, tc.path)
		var out fuse.AttrOut
		if errno := node.(gofs.NodeGetattrer).Getattr(context.Background(), nil, &out); errno != 0 {
			t.Fatalf("%s: getattr: %v", tc.path, errno)
		}
		if out.Attr != entry.Attr {
			t.Errorf("%s: getattr %+v differs from lookup %+v", tc.path, out.Attr, entry.Attr)
		}
		a := out.Attr
		if a.Mode != tc.mode || a.Size != tc.size || a.Blocks != tc.blocks || a.Nlink != tc.nlink || a.Blksize != 4096 {
			t.Errorf("%s: mode %o size %d blocks %d nlink %d blksize %d; want %o %d %d %d 4096",
				tc.path, a.Mode, a.Size, a.Blocks, a.Nlink, a.Blksize, tc.mode, tc.size, tc.blocks, tc.nlink)
		}
		if a.Ino < 2 || a.Ino != node.EmbeddedInode().StableAttr().Ino {
			t.Errorf("%s: ino %d, stable ino %d", tc.path, a.Ino, node.EmbeddedInode().StableAttr().Ino)
		}
		if tc.check != nil {
			if err := tc.check(a); err != nil {
				t.Errorf("%s: %v", tc.path, err)
			}
		}
	}
	link, _ := lookup(t, root, "link")
	if target, errno := link.(gofs.NodeReadlinker).Readlink(context.Background()); errno != 0 || string(target) != "big" {
		t.Errorf("readlink: %q, %v", target, errno)
	}
	for _, path := range []string{"fifo", "null", "disk", "sock"} {
		node, _ := lookup(t, root, path)
		if _, ok := node.(gofs.NodeReader); ok {
			t.Errorf("%s can be read", path)
		}
	}
}

func TestInodeNumbers(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	h1, _ := lookup(t, root, "hard1")
	h2, _ := lookup(t, root, "sub/hard2")
	if a, b := h1.EmbeddedInode().StableAttr().Ino, h2.EmbeddedInode().StableAttr().Ino; a != b {
		t.Errorf("hard links have inode numbers %d and %d", a, b)
	}
	// Numbers are stable across mounts and distinct across points.
	again := newTestRoot(t, f.src, f.point, Options{})
	big1, _ := lookup(t, root, "big")
	big2, _ := lookup(t, again, "big")
	if a, b := big1.EmbeddedInode().StableAttr().Ino, big2.EmbeddedInode().StableAttr().Ino; a != b {
		t.Errorf("big has inode numbers %d and %d in two mounts", a, b)
	}
	other := f.point
	other.ID = f.src.newID()
	big3, _ := lookup(t, newTestRoot(t, f.src, other, Options{}), "big")
	if big1.EmbeddedInode().StableAttr().Ino == big3.EmbeddedInode().StableAttr().Ino {
		t.Error("big has the same inode number in two points")
	}
	for _, h := range []inoHash{0, 1, inoHash(^uint64(0))} {
		if ino := h.ino(); ino < 2 || ino == ^uint64(0) {
			t.Errorf("hash %d gives inode number %d", h, ino)
		}
	}
}

func TestRead(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{ReadAhead: -1})
	big, _ := lookup(t, root, "big")
	sparse, _ := lookup(t, root, "sparse")
	for _, tc := range []struct {
		name    string
		node    gofs.InodeEmbedder
		content []byte
		off     int64
		size    int
	}{
		{"big start", big, f.big, 0, 4096},
		{"big within a chunk", big, f.big, 12345, 100_000},
		{"big across a chunk boundary", big, f.big, mib - 10, 20},
		{"big across three chunks", big, f.big, mib - 1, 2*mib + 2},
		{"big whole", big, f.big, 0, len(f.big)},
		{"big past the end", big, f.big, int64(len(f.big)) - 5, 4096},
		{"big at the end", big, f.big, int64(len(f.big)), 4096},
		{"big beyond the end", big, f.big, int64(len(f.big)) + mib, 4096},
		{"sparse leading hole", sparse, f.sparse, 0, 4096},
		{"sparse hole into data", sparse, f.sparse, mib - 100, 200},
		{"sparse data into hole", sparse, f.sparse, mib + 64<<10 - 100, 200},
		{"sparse spanning two extents", sparse, f.sparse, mib / 2, 5 * mib},
		{"sparse trailing hole", sparse, f.sparse, 9 * mib, 2 * mib},
	} {
		got, errno := readNode(t, tc.node, tc.off, tc.size)
		if errno != 0 {
			t.Errorf("%s: %v", tc.name, errno)
			continue
		}
		start := min(int(tc.off), len(tc.content))
		want := tc.content[start:min(start+tc.size, len(tc.content))]
		if !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes, want %d bytes of content", tc.name, len(got), len(want))
		}
	}
	if _, errno := readNode(t, big, -1, 10); errno != syscall.EINVAL {
		t.Errorf("negative offset: errno %v, want EINVAL", errno)
	}
	// Chunks come from the cache once loaded.
	for i, e := range big.(*fileNode).node.Extents {
		if n := f.src.loadCount(e.ID); n != 1 {
			t.Errorf("chunk %d loaded %d times, want 1", i, n)
		}
	}
}

func TestReadDoesNotLoadTheWholeFile(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{ReadAhead: -1})
	big, _ := lookup(t, root, "big")
	ext := big.(*fileNode).node.Extents
	if _, errno := readNode(t, big, int64(ext[2].Offset)+5, 100); errno != 0 {
		t.Fatal(errno)
	}
	for i, e := range ext {
		want := 0
		if i == 2 {
			want = 1
		}
		if got := f.src.loadCount(e.ID); got != want {
			t.Errorf("chunk %d loaded %d times, want %d", i, got, want)
		}
	}
}

func TestDamagedChunk(t *testing.T) {
	f := newFixture(t)
	var logs logBuffer
	root := newTestRoot(t, f.src, f.point, Options{ReadAhead: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	damaged, _ := lookup(t, root, "damaged")
	if got, errno := readNode(t, damaged, 0, 64<<10); errno != 0 || !bytes.Equal(got, f.damaged[:64<<10]) {
		t.Errorf("the intact first chunk: errno %v", errno)
	}
	for range 3 {
		if _, errno := readNode(t, damaged, 64<<10, 100); errno != syscall.EIO {
			t.Errorf("damaged chunk: errno %v, want EIO", errno)
		}
	}
	if _, errno := readNode(t, damaged, 0, 128<<10); errno != syscall.EIO {
		t.Errorf("range with the damaged chunk: errno %v, want EIO", errno)
	}
	if n := strings.Count(logs.String(), "damaged chunk"); n != 1 {
		t.Errorf("damage logged %d times, want once: %s", n, logs.String())
	}
	id := damaged.(*fileNode).node.Extents[1].ID.String()
	if !strings.Contains(logs.String(), id) || !strings.Contains(logs.String(), "path=/damaged") {
		t.Errorf("log does not name the chunk and the file: %s", logs.String())
	}

	big, _ := lookup(t, root, "big")
	if got, errno := readNode(t, big, 0, 100); errno != 0 || !bytes.Equal(got, f.big[:100]) {
		t.Errorf("another file: errno %v", errno)
	}

	// Unreachable storage is not damage: logged every time.
	f.src.mu.Lock()
	f.src.failing[big.(*fileNode).node.Extents[3].ID] = true
	f.src.mu.Unlock()
	for range 2 {
		if _, errno := readNode(t, big, 3*mib, 100); errno != syscall.EIO {
			t.Errorf("failing chunk: errno %v, want EIO", errno)
		}
	}
	if n := strings.Count(logs.String(), "load chunk failed"); n != 2 {
		t.Errorf("failure logged %d times, want 2: %s", n, logs.String())
	}
}

func TestChunkOfWrongLengthIsDamage(t *testing.T) {
	src := newFakeSource()
	n := src.file("f", []byte("0123456789"), 10)
	n.Extents[0].Length = 9
	n.Size = 9
	var logs logBuffer
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{n}), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f, _ := lookup(t, root, "f")
	if _, errno := readNode(t, f, 0, 9); errno != syscall.EIO {
		t.Errorf("errno %v, want EIO", errno)
	}
	if !strings.Contains(logs.String(), "damaged chunk") {
		t.Errorf("not logged as damage: %s", logs.String())
	}
}

func TestReadAhead(t *testing.T) {
	src := newFakeSource()
	data := randomBytes(20*mib, 9)
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{src.file("f", data, mib)}), Options{ReadAhead: 3})
	node, _ := lookup(t, root, "f")
	ext := node.(*fileNode).node.Extents
	loaded := func(i int) bool { return src.loadCount(ext[i].ID) > 0 }

	// A sequential reader gets the next 3 chunks fetched ahead.
	if _, errno := readNode(t, node, 0, 128<<10); errno != 0 {
		t.Fatal(errno)
	}
	waitFor(t, "chunks 1-3", func() bool { return loaded(1) && loaded(2) && loaded(3) })
	if _, errno := readNode(t, node, 128<<10, 1<<20); errno != 0 {
		t.Fatal(errno)
	}
	waitFor(t, "chunk 4", func() bool { return loaded(4) })
	time.Sleep(20 * time.Millisecond)
	if loaded(5) {
		t.Error("chunk 5 fetched more than 3 chunks ahead")
	}
	for i := 1; i <= 4; i++ {
		if n := src.loadCount(ext[i].ID); n != 1 {
			t.Errorf("chunk %d loaded %d times, want 1", i, n)
		}
	}

	// A random read far away fetches nothing ahead.
	if _, errno := readNode(t, node, 15*mib+10, 100); errno != 0 {
		t.Fatal(errno)
	}
	time.Sleep(20 * time.Millisecond)
	for i := 16; i < 20; i++ {
		if loaded(i) {
			t.Errorf("chunk %d fetched after a random read", i)
		}
	}
}

// TestColdSmallReadLoadsOneChunk: a file's first read, of 4 KiB, loads
// the one chunk it covers and nothing ahead, wherever it lies; a first read
// of 128 KiB from the start is a sequential reader's and reads ahead.
func TestColdSmallReadLoadsOneChunk(t *testing.T) {
	data := randomBytes(12*mib, 11)
	cold := func() (*fakeSource, *fileNode) {
		src := newFakeSource()
		root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{src.file("f", data, mib)}), Options{})
		node, _ := lookup(t, root, "f")
		return src, node.(*fileNode)
	}
	for _, off := range []int64{0, 2*mib + 5000, 7*mib - 4096, 12*mib - 4096} {
		src, fn := cold()
		got, errno := readNode(t, fn, off, 4096)
		if errno != 0 || !bytes.Equal(got, data[off:off+4096]) {
			t.Fatalf("read of 4 KiB at %d: errno %v", off, errno)
		}
		time.Sleep(20 * time.Millisecond)
		waitFor(t, "loads to end", func() bool { return fn.pt.v.chunks.Loads() == 0 })
		if n := src.chunkLoads(); n != 1 {
			t.Errorf("a first read of 4 KiB at %d of a cold file loaded %d chunks, want 1", off, n)
		}
	}
	src, fn := cold()
	if _, errno := readNode(t, fn, 0, 128<<10); errno != 0 {
		t.Fatal(errno)
	}
	waitFor(t, "read-ahead of 4 chunks", func() bool { return src.chunkLoads() == 5 })
}

func TestReadAheadIsBounded(t *testing.T) {
	src := newFakeSource()
	src.delay = 100 * time.Millisecond
	data := randomBytes(40*mib, 10)
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{src.file("f", data, mib)}), Options{ReadAhead: 2})
	node, _ := lookup(t, root, "f")
	fn := node.(*fileNode)
	// Sequential reads racing ahead of slow fetches never have more than
	// 2×ReadAhead of them in flight.
	for off := uint64(0); off < 20*mib; off += mib {
		fn.pt.v.readAheadFor(&fn.seq, &fn.node, off, off+mib)
	}
	waitFor(t, "fetches to finish", func() bool { return fn.pt.v.chunks.Loads() == 0 })
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.maxInflight != 4 {
		t.Errorf("at most %d chunk loads were in flight, want 4", src.maxInflight)
	}
}

func TestLseek(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	sparse, _ := lookup(t, root, "sparse")
	big, _ := lookup(t, root, "big")
	for _, tc := range []struct {
		node   gofs.InodeEmbedder
		off    uint64
		whence uint32
		want   uint64
		errno  syscall.Errno
	}{
		{sparse, 0, unix.SEEK_DATA, mib, 0},
		{sparse, mib + 10, unix.SEEK_DATA, mib + 10, 0},
		{sparse, mib + 64<<10, unix.SEEK_DATA, 5 * mib, 0},
		{sparse, 6 * mib, unix.SEEK_DATA, 0, syscall.ENXIO},
		{sparse, 0, unix.SEEK_HOLE, 0, 0},
		{sparse, mib + 5, unix.SEEK_HOLE, mib + 64<<10, 0},
		{sparse, 10 * mib, unix.SEEK_HOLE, 0, syscall.ENXIO},
		{big, 0, unix.SEEK_HOLE, uint64(len(f.big)), 0},
		{big, 3 * mib, unix.SEEK_DATA, 3 * mib, 0},
	} {
		got, errno := tc.node.(gofs.NodeLseeker).Lseek(context.Background(), nil, tc.off, tc.whence)
		if got != tc.want || errno != tc.errno {
			t.Errorf("lseek(%d, %d): %d, %v; want %d, %v", tc.off, tc.whence, got, errno, tc.want, tc.errno)
		}
	}
}

func TestXattrs(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	ctx := context.Background()
	node, _ := lookup(t, root, "xattrs")
	x := node.(interface {
		gofs.NodeGetxattrer
		gofs.NodeListxattrer
	})

	if n, _ := x.Getxattr(ctx, "user.greeting", nil); n != 11 {
		t.Errorf("size query: %d, want 11", n)
	}
	if _, errno := x.Getxattr(ctx, "user.greeting", make([]byte, 5)); errno != syscall.ERANGE {
		t.Errorf("small buffer: errno %v, want ERANGE", errno)
	}
	buf := make([]byte, 64)
	if n, errno := x.Getxattr(ctx, "user.greeting", buf); errno != 0 || string(buf[:n]) != "hello world" {
		t.Errorf("getxattr: %q, %v", buf[:n], errno)
	}
	if _, errno := x.Getxattr(ctx, "user.missing", buf); errno != syscall.ENODATA {
		t.Errorf("missing: errno %v, want ENODATA", errno)
	}
	want := "user.greeting\x00user.one\x00"
	if n, _ := x.Listxattr(ctx, nil); n != uint32(len(want)) {
		t.Errorf("list size query: %d, want %d", n, len(want))
	}
	if _, errno := x.Listxattr(ctx, make([]byte, 3)); errno != syscall.ERANGE {
		t.Errorf("small list buffer: errno %v, want ERANGE", errno)
	}
	if n, errno := x.Listxattr(ctx, buf); errno != 0 || string(buf[:n]) != want {
		t.Errorf("listxattr: %q, %v", buf[:n], errno)
	}

	for _, path := range []string{"big", "many", "link"} {
		node, _ := lookup(t, root, path)
		x := node.(interface {
			gofs.NodeGetxattrer
			gofs.NodeListxattrer
		})
		if n, errno := x.Listxattr(ctx, buf); n != 0 || errno != 0 {
			t.Errorf("%s: listxattr %d, %v; want empty", path, n, errno)
		}
		if _, errno := x.Getxattr(ctx, "user.one", buf); errno != syscall.ENODATA {
			t.Errorf("%s: getxattr errno %v, want ENODATA", path, errno)
		}
	}
}

func TestOpenIsNotImplemented(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	big, _ := lookup(t, root, "big")
	fh, _, errno := big.(gofs.NodeOpener).Open(context.Background(), syscall.O_RDONLY)
	if fh != nil || errno != syscall.ENOSYS {
		t.Errorf("open: %v, %v; want ENOSYS", fh, errno)
	}
	if errno := big.(gofs.NodeFlusher).Flush(context.Background(), nil); errno != syscall.ENOSYS {
		t.Errorf("flush: %v, want ENOSYS", errno)
	}
}

func TestStatfs(t *testing.T) {
	f := newFixture(t)
	root := newTestRoot(t, f.src, f.point, Options{})
	for _, path := range []string{"big", "many", "link", "fifo"} {
		node, _ := lookup(t, root, path)
		var out fuse.StatfsOut
		if errno := node.(gofs.NodeStatfser).Statfs(context.Background(), &out); errno != 0 || out.Bsize != 4096 || out.NameLen != 255 {
			t.Errorf("%s: statfs %+v, %v", path, out, errno)
		}
	}
}

func TestPartCacheMergesLoads(t *testing.T) {
	src := newFakeSource()
	id := src.addPart([]tree.Node{{Name: "a", Type: tree.File}})
	c := newPartCache(src, 1<<20)
	src.mu.Lock() // hold loads until all callers wait
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if p, err := c.get(context.Background(), id); err != nil || p.Find("a") == nil {
				t.Errorf("get: %v, %v", p, err)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	src.mu.Unlock()
	wg.Wait()
	if n := src.loadCount(id); n != 1 {
		t.Errorf("loaded %d times, want 1", n)
	}

	// A caller that gives up gets its context's error; the part loads for
	// the next caller. (Which waiters keep a load alive is cache/lru's
	// rule, tested there.)
	slow := src.addPart([]tree.Node{{Name: "b", Type: tree.File}})
	src.mu.Lock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, slow); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled get: %v", err)
	}
	src.mu.Unlock()
	if p, err := c.get(context.Background(), slow); err != nil || p.Find("b") == nil {
		t.Errorf("get after cancel: %v, %v", p, err)
	}
}

// TestPartCacheLoadsOnFewGoroutines: tree parts load on at most partLoads
// goroutines however many directories are looked into at once (goroutines
// that stay for the next load, whose stacks have grown).
func TestPartCacheLoadsOnFewGoroutines(t *testing.T) {
	src := newFakeSource()
	c := newPartCache(src, 1<<20)
	var ids []keys.ID
	for i := range 3 * partLoads {
		ids = append(ids, src.addPart([]tree.Node{{Name: fmt.Sprint(i), Type: tree.File}}))
	}
	src.mu.Lock() // hold loads until all callers wait
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if _, err := c.get(context.Background(), id); err != nil {
				t.Errorf("get: %v", err)
			}
		})
	}
	waitFor(t, "loads to start", func() bool { return src.partCalls.Load() >= partLoads })
	time.Sleep(20 * time.Millisecond)
	if n := src.partCalls.Load(); n != partLoads {
		t.Errorf("%d part loads at once, want %d", n, partLoads)
	}
	src.mu.Unlock()
	wg.Wait()
	if n := src.partCalls.Load(); n != int32(len(ids)) {
		t.Errorf("%d part loads, want %d", n, len(ids))
	}
}

// TestPartCacheByteBound: decoded parts are bounded by their bytes, not
// their count: parts of many nodes evict each other sooner.
func TestPartCacheByteBound(t *testing.T) {
	src := newFakeSource()
	nodes := func(n int) []tree.Node {
		ns := make([]tree.Node, n)
		for i := range ns {
			ns[i] = tree.Node{Name: fmt.Sprintf("f%04d", i), Type: tree.File}
		}
		return ns
	}
	big := []keys.ID{src.addPart(nodes(100)), src.addPart(nodes(100)), src.addPart(nodes(100))}
	small := src.addPart(nodes(1))
	one := partBytes(&tree.Part{Nodes: nodes(100)})
	c := newPartCache(src, 2*one+partBytes(&tree.Part{Nodes: nodes(1)}))
	for _, id := range append(big, small) {
		if _, err := c.get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if b := c.lru.Bytes(); b > 2*one+partBytes(&tree.Part{Nodes: nodes(1)}) {
		t.Errorf("%d bytes of parts cached, over the bound", b)
	}
	if _, ok := c.lru.Get(big[0]); ok {
		t.Error("the least recently used large part was kept beyond the bound")
	}
	for _, id := range []keys.ID{big[1], big[2], small} {
		if _, ok := c.lru.Get(id); !ok {
			t.Errorf("part %s evicted within the bound", id.Short())
		}
	}
	if one < 100*nodeBytes {
		t.Errorf("partBytes of 100 nodes = %d, less than their nodes' %d", one, 100*nodeBytes)
	}
}

// TestErrno pins the table from error kind to errno: a caller giving up is
// EINTR, a deadline ETIMEDOUT, every other kind EIO.
func TestErrno(t *testing.T) {
	for k := errkind.Other; k <= errkind.Timeout; k++ {
		want := syscall.EIO
		switch k {
		case errkind.Canceled:
			want = syscall.EINTR
		case errkind.Timeout:
			want = syscall.ETIMEDOUT
		}
		if got := errno(fmt.Errorf("load: %w", errkind.New(k, "x"))); got != want {
			t.Errorf("kind %v: errno %v, want %v", k, got, want)
		}
	}
	for _, tc := range []struct {
		err   error
		errno syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("x: %w", keys.ErrAuth), syscall.EIO},
		{fmt.Errorf("x: %w", tree.ErrFormat), syscall.EIO},
		{errUnreachable, syscall.EIO},
		{fmt.Errorf("x: %w", context.Canceled), syscall.EINTR},
		{context.DeadlineExceeded, syscall.ETIMEDOUT},
	} {
		if got := errno(tc.err); got != tc.errno {
			t.Errorf("errno(%v) = %v, want %v", tc.err, got, tc.errno)
		}
	}
}

// TestIsDamage: what the mount logs once per object as damage is every
// error of kind Damaged, from whichever package, and not an unreachable
// storage or a missing object.
func TestIsDamage(t *testing.T) {
	for _, err := range []error{keys.ErrAuth, keys.ErrOtherKey, repo.ErrDamaged, tree.ErrFormat, errChunkSize, errBadRoot, pack.ErrFormat} {
		if !isDamage(fmt.Errorf("chunk x: %w", err)) {
			t.Errorf("isDamage(%v) = false", err)
		}
	}
	for _, err := range []error{errUnreachable, storage.ErrNotFound, context.Canceled, storage.ErrPermission} {
		if isDamage(fmt.Errorf("chunk x: %w", err)) {
			t.Errorf("isDamage(%v) = true", err)
		}
	}
}

func TestLayout(t *testing.T) {
	src := newFakeSource()
	t1 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	t2 := t1.Add(time.Hour)
	a, b, c, d := src.newID(), src.newID(), src.newID(), src.newID()
	machines, err := layout([]Point{
		{ID: b, Machine: "web", Time: t2},
		{ID: a, Machine: "web", Time: t1},
		{ID: c, Machine: "db", Time: t2},
		{ID: d, Machine: "db", Time: t2.Add(time.Nanosecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range machines {
		for _, p := range m.points {
			got = append(got, m.name+"/"+p.name)
		}
	}
	want := []string{
		"db/2024-01-02T03-04-05Z-" + c.Short(), "db/2024-01-02T03-04-05Z-" + d.Short(),
		"web/2024-01-02T02-04-05Z", "web/2024-01-02T03-04-05Z",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("layout:\n got %v\nwant %v", got, want)
	}
	if latest := machines[0].points[1]; latest.ID != d {
		t.Errorf("db's newest point is %s, want %s", latest.ID.Short(), d.Short())
	}

	for name, dir := range map[string]string{"": "_unnamed", ".": "_.", "..": "_..", "a/b": "a_b", "a\x00": "a_"} {
		ms, err := layout([]Point{{ID: a, Machine: name, Time: t1}})
		if err != nil || len(ms) != 1 || ms[0].name != dir {
			t.Errorf("machine %q: layout %+v, %v; want one directory %q", name, ms, err, dir)
		}
	}
	for _, dup := range [][]Point{
		{{ID: a, Machine: "m", Time: t1}, {ID: a, Machine: "m", Time: t1}},
		{{ID: a, Machine: "m", Time: t1}, {ID: a, Machine: "n", Time: t2}},
	} {
		if _, err := layout(dup); !errors.Is(err, errPoints) {
			t.Errorf("duplicate point: err %v, want errPoints", err)
		}
	}
	// Distinct IDs sharing the first 8 hex digits at the same time cannot
	// be told apart by name.
	e := a
	e[31] ^= 1
	if _, err := layout([]Point{{ID: a, Machine: "m", Time: t1}, {ID: e, Machine: "m", Time: t1}}); !errors.Is(err, errPoints) {
		t.Errorf("points with equal names: err %v, want errPoints", err)
	}
}

func TestCheckMountpoint(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/file"
	full := dir + "/full"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(full+"/x", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, msg string }{
		{dir + "/missing", "mountpoint " + strconv.Quote(dir+"/missing") + " does not exist"},
		{file, "mountpoint " + strconv.Quote(file) + " is not a directory"},
		{full, "mountpoint " + strconv.Quote(full) + " is busy (already mounted or not empty)"},
	} {
		_, err := Mount(tc.dir, &staticDir{}, Options{})
		if !errors.Is(err, ErrMountpoint) || err.Error() != tc.msg {
			t.Errorf("Mount(%s): %v, want %q wrapping ErrMountpoint", tc.dir, err, tc.msg)
		}
	}
	if err := checkMountpoint(dir + "/full/x"); err != nil {
		t.Errorf("empty directory: %v", err)
	}

	defer func(dev string) { fuseDevice = dev }(fuseDevice)
	fuseDevice = dir + "/fuse"
	_, err := Mount(dir+"/full/x", &staticDir{}, Options{})
	if !errors.Is(err, ErrNoFUSE) || err.Error() != "no "+fuseDevice+": FUSE is not available on this machine" {
		t.Errorf("Mount without FUSE: %v", err)
	}
}

// TestMemoryShares: the mount's caches share its one memory bound, and at
// the default the chunk cache holds as much as before the bound covered
// parts and segments too (256 MiB and more).
func TestMemoryShares(t *testing.T) {
	chunks, parts, segments := MemoryShares(defaultCacheBytes)
	if chunks != 272*mib || parts != 32*mib || segments != 16*mib {
		t.Errorf("default shares: chunks %d, parts %d, segments %d", chunks, parts, segments)
	}
	if segments != repo.DefaultSegmentMemory {
		t.Errorf("default segment share %d, but readers that set none get repo.DefaultSegmentMemory = %d", segments, repo.DefaultSegmentMemory)
	}
	for _, total := range []int64{0, 1, 64 * mib, 1<<30 + 7} {
		c, p, s := MemoryShares(total)
		if c+p+s != total || c < 0 || p < 0 || s < 0 {
			t.Errorf("MemoryShares(%d) = %d + %d + %d", total, c, p, s)
		}
	}
}

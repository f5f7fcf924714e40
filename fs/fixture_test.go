package fs

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

const mib = 1 << 20

// fixture is a point holding one of every kind of node.
type fixture struct {
	src       *fakeSource
	point     Point
	big       []byte // content of "big": 5 chunks of 1 MiB and a short one
	sparse    []byte // content of "sparse": two extents in 10 MiB
	sparseLen uint64 // bytes stored for "sparse"
	hard      []byte // content of "hard1" and "sub/hard2"
	damaged   []byte // content of "damaged", whose second chunk is damaged
	xattrs    []tree.Xattr
	manyNames []string // entries of "many", in order
}

var fixtureTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	src := newFakeSource()
	f := &fixture{src: src}

	f.big = randomBytes(5*mib+12345, 1)
	big := src.file("big", f.big, mib)
	big.UID, big.GID = 1000, 1001
	big.MTime, big.ATime, big.CTime = tree.Time{Sec: 1_700_000_000, Nsec: 123_456_789}, tree.Time{Sec: 1_700_000_001, Nsec: 1}, tree.Time{Sec: 1_700_000_002, Nsec: 999_999_999}

	ext1, ext2 := randomBytes(64<<10, 2), randomBytes(100<<10, 3)
	f.sparse = sparseData(10*mib, map[int][]byte{mib: ext1, 5 * mib: ext2})
	f.sparseLen = uint64(len(ext1) + len(ext2))
	sparse := tree.Node{Name: "sparse", Type: tree.File, Mode: 0o600, Size: 10 * mib, Links: 1, Extents: []tree.Extent{
		{Offset: mib, Length: uint32(len(ext1)), ID: src.addChunk(ext1)},
		{Offset: 5 * mib, Length: uint32(len(ext2)), ID: src.addChunk(ext2)},
	}}

	f.hard = randomBytes(3000, 4)
	hard1 := src.file("hard1", f.hard, 1024)
	hard1.Links, hard1.Device, hard1.Inode = 2, 77, 4242
	hard2 := hard1
	hard2.Name = "hard2"

	f.xattrs = []tree.Xattr{{Name: "user.greeting", Value: []byte("hello world")}, {Name: "user.one", Value: []byte("1")}}
	xattrs := src.file("xattrs", []byte("x"), 1024)
	xattrs.Xattrs = f.xattrs

	old := src.file("old", []byte("old"), 1024)
	old.MTime = tree.Time{Sec: -2, Nsec: 500_000_000} // 1969-12-31T23:59:58.5Z
	old.ATime = tree.Time{Sec: 16_725_225_600}        // 2500-01-01, beyond int64 nanoseconds

	f.damaged = randomBytes(3*64<<10, 5)
	damaged := src.file("damaged", f.damaged, 64<<10)
	src.damaged[damaged.Extents[1].ID] = true

	var many []tree.Node
	for i := range 3000 {
		name := fmt.Sprintf("f%04d", i)
		f.manyNames = append(f.manyNames, name)
		many = append(many, tree.Node{Name: name, Type: tree.File, Mode: 0o644, Links: 1})
	}

	f.point = src.point("host", fixtureTime, []tree.Node{
		big, sparse, hard1, xattrs, old, damaged,
		src.file("bad\xffname", []byte("not utf-8"), 1024),
		{Name: "empty", Type: tree.File, Mode: 0o644, Links: 1},
		{Name: "link", Type: tree.Symlink, Mode: 0o777, Links: 1, Target: "big"},
		{Name: "fifo", Type: tree.FIFO, Mode: 0o640, Links: 1},
		{Name: "null", Type: tree.CharDev, Mode: 0o666, Links: 1, Rdev: unix.Mkdev(1, 3)},
		{Name: "disk", Type: tree.BlockDev, Mode: 0o660, Links: 1, Rdev: unix.Mkdev(259, 70000)},
		{Name: "sock", Type: tree.Socket, Mode: 0o755, Links: 1},
		{Name: "suid", Type: tree.File, Mode: 0o4755, Links: 1},
		src.dir("many", many, 1000),
		src.dir("sub", []tree.Node{hard2}, tree.PartEntries),
	})
	return f
}

// newTestRoot returns the root of point p attached to a go-fuse tree that
// is not mounted, so node methods can be called directly.
func newTestRoot(t testing.TB, src Source, p Point, opts Options) *dirNode {
	t.Helper()
	root, err := NewPointRoot(src, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	gofs.NewNodeFS(root, &gofs.Options{})
	return root.(*dirNode)
}

// lookup walks path (slash-separated) from dir by calling Lookup.
func lookup(t testing.TB, dir gofs.InodeEmbedder, path string) (gofs.InodeEmbedder, fuse.EntryOut) {
	t.Helper()
	var out fuse.EntryOut
	node := dir
	for _, name := range strings.Split(path, "/") {
		out = fuse.EntryOut{}
		l, ok := node.(gofs.NodeLookuper)
		if !ok {
			t.Fatalf("lookup %q: %T is not a directory", path, node)
		}
		ch, errno := l.Lookup(context.Background(), name, &out)
		if errno != 0 {
			t.Fatalf("lookup %q: %q: %v", path, name, errno)
		}
		node = ch.Operations()
	}
	return node, out
}

// readNode reads size bytes at off through Read.
func readNode(t testing.TB, n gofs.InodeEmbedder, off int64, size int) ([]byte, syscall.Errno) {
	t.Helper()
	buf := make([]byte, size)
	res, errno := n.(gofs.NodeReader).Read(context.Background(), nil, buf, off)
	if errno != 0 {
		return nil, errno
	}
	data, st := res.Bytes(make([]byte, size))
	res.Done() // as go-fuse once the reply is written
	if !st.Ok() {
		t.Fatalf("read result: %v", st)
	}
	return data, 0
}

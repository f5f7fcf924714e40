package fs

import (
	"fmt"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/repo/tree"
)

// listPlus lists the top level of the point served by raw as the kernel does
// for ls -l or cp -a: OPENDIR, READDIRPLUS until an empty reply,
// RELEASEDIR. It returns the number of entries.
func listPlus(t testing.TB, raw fuse.RawFileSystem, buf []byte) int {
	var open fuse.OpenOut
	if st := raw.OpenDir(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 1}}, &open); !st.Ok() {
		t.Fatalf("OPENDIR: %v", st)
	}
	n := 0
	for off := uint64(0); ; {
		out := fuse.NewDirEntryList(buf, off)
		in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: 1}, Fh: open.Fh, Offset: off, Size: uint32(len(buf))}
		if st := raw.ReadDirPlus(nil, in, out); !st.Ok() {
			t.Fatalf("READDIRPLUS at %d: %v", off, st)
		}
		if out.Offset == off {
			break
		}
		n += int(out.Offset - off)
		off = out.Offset
	}
	raw.ReleaseDir(&fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: 1}, Fh: open.Fh})
	return n
}

// TestReaddirPlusAllocsPerEntry: serving READDIRPLUS of a directory whose
// part is cached (listing an entry and creating its node: the per-file
// work of ls -lR and cp -a, go-fuse's included) allocates about four
// objects per entry: azfs's are the node and its path; go-fuse's are its
// inode registration and the name it keeps. Upstream go-fuse v2.12.1 made
// six more in lockNodes/unlockNodes, which sorted parent and child with
// sort.Slice (its swapper, its closure, and the variadic slice that then
// escaped): 10.2 per entry before the azfs patch of sortNodes.
func TestReaddirPlusAllocsPerEntry(t *testing.T) {
	src := newFakeSource()
	const files = 1000
	nodes := make([]tree.Node, files)
	for i := range nodes {
		nodes[i] = src.file(fmt.Sprintf("file%04d.go", i), []byte("package main\n"), mib)
		nodes[i].User, nodes[i].Group = "root", "root"
	}
	pt := src.point("m", fixtureTime, nodes)
	buf := make([]byte, 1<<20)
	// Each run serves a fresh mount's listing: every entry's node is new.
	list := func() {
		root, err := NewPointRoot(src, pt, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := listPlus(t, gofs.NewNodeFS(root, &gofs.Options{}), buf); n != files {
			t.Fatalf("listed %d entries, want %d", n, files)
		}
	}
	allocs := testing.AllocsPerRun(5, list) / files
	t.Logf("%.2f allocations per entry", allocs)
	if allocs > 4.5 {
		t.Errorf("%.2f allocations per entry of READDIRPLUS, want at most 4.5", allocs)
	}
}

// TestReadAheadSiblingsOnePrefetchPerFile: reading a directory's files in
// listing order, each file's first read starts read-ahead only for the file
// that enters its window (ReadAhead files after it), not for the whole
// window again: with every chunk already cached that is one closure (the
// chunk's loader) per file; it was ReadAhead (4) before siblingsAhead, a
// loader and a look-up in the chunk cache under its lock for each.
func TestReadAheadSiblingsOnePrefetchPerFile(t *testing.T) {
	src := newFakeSource()
	const files = 64
	nodes := make([]tree.Node, files)
	for i := range nodes {
		nodes[i] = src.file(fmt.Sprintf("file%04d.go", i), []byte(fmt.Sprintf("package p%d\n", i)), mib)
	}
	root, err := NewPointRoot(src, src.point("m", fixtureTime, nodes), Options{ReadAhead: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n := listPlus(t, gofs.NewNodeFS(root, &gofs.Options{}), make([]byte, 1<<20)); n != files {
		t.Fatalf("listed %d entries, want %d", n, files)
	}
	fileNodes := make([]*fileNode, files)
	for i, n := range nodes {
		c := root.EmbeddedInode().GetChild(n.Name)
		if c == nil {
			t.Fatalf("no node for %q after the listing", n.Name)
		}
		fileNodes[i] = c.Operations().(*fileNode)
	}
	v := fileNodes[0].pt.v
	inOrder := func() {
		for _, f := range fileNodes {
			f.readAheadSiblings()
		}
	}
	for _, f := range fileNodes { // each file's load done before the next
		f.readAheadSiblings()
		waitFor(t, "the read-ahead loaded", func() bool { return v.chunks.Loads() == 0 })
	}
	if n := src.chunkLoads(); n != files-1 {
		t.Fatalf("read-ahead loaded %d chunks, want %d (every file's but the first's)", n, files-1)
	}
	perFile := testing.AllocsPerRun(5, inOrder) / files
	t.Logf("%.2f allocations per file", perFile)
	if perFile > 1.2 {
		t.Errorf("%.2f allocations per file's read-ahead of its siblings, want at most 1.2 (one prefetch)", perFile)
	}
	if n := src.chunkLoads(); n != files-1 {
		t.Errorf("%d chunk loads, want %d: cached chunks loaded again", n, files-1)
	}
}

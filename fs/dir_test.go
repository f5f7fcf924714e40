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

package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/internal/deeptree"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/storagetest"
	"github.com/azfs/azfs/repo/tree"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

func newVault(t testing.TB, st storage.Storage) *repo.Area {
	t.Helper()
	v, err := repo.Create(context.Background(), st, "correct horse battery staple", cheapKDF)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return v
}

// reopen opens the vault afresh, as the next run of azfs would.
func reopen(t *testing.T, v *repo.Area) *repo.Area {
	t.Helper()
	fresh, err := repo.Open(context.Background(), v.Storage(), v.Keys())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return fresh
}

// loaded is reopen with the index loaded, for reading a point back.
func loaded(t *testing.T, v *repo.Area) *repo.Area {
	t.Helper()
	fresh := reopen(t, v)
	if err := fresh.LoadIndex(context.Background()); err != nil {
		t.Fatalf("LoadIndex: %v", err)
	}
	return fresh
}

// missingPrerequisite skips, except on CI where every test must run.
func missingPrerequisite(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (tests may not skip under CI=true)", msg)
	}
	t.Skip(msg)
}

// lookup walks a point's tree from its root to the absolute path.
func lookup(t *testing.T, v *repo.Area, p *repo.Point, path string) tree.Node {
	t.Helper()
	ctx := context.Background()
	root, err := v.Part(ctx, p.Root)
	if err != nil {
		t.Fatalf("root part: %v", err)
	}
	if len(root.Nodes) != 1 || root.Nodes[0].Name != repo.RootName || root.Nodes[0].Type != tree.Dir {
		t.Fatalf("root part holds %+v, want one directory named %q", root.Nodes, repo.RootName)
	}
	node := root.Nodes[0]
	walked := ""
	for _, name := range strings.Split(strings.Trim(path, "/"), "/") {
		if node.Type != tree.Dir || len(node.Parts) == 0 {
			t.Fatalf("%s: %q is not a directory with entries in the point", path, "/"+walked)
		}
		part, err := v.Part(ctx, node.Parts[node.PartFor(name)].ID)
		if err != nil {
			t.Fatalf("%s: listing of /%s: %v", path, walked, err)
		}
		n := part.Find(name)
		if n == nil {
			t.Fatalf("%s: no %q in /%s", path, name, walked)
		}
		node = *n
		walked = strings.TrimPrefix(walked+"/"+name, "/")
	}
	return node
}

// listing returns the names in a directory node, in order, across its parts.
func listing(t *testing.T, v *repo.Area, dir tree.Node) []string {
	t.Helper()
	var names []string
	for _, ref := range dir.Parts {
		part, err := v.Part(context.Background(), ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(part.Nodes) == 0 || part.Nodes[0].Name != ref.First {
			t.Fatalf("part %s does not start with %q", ref.ID.Short(), ref.First)
		}
		for _, n := range part.Nodes {
			names = append(names, n.Name)
		}
	}
	return names
}

// content rebuilds a file from its extents; holes read as zeros.
func content(t *testing.T, v *repo.Area, n tree.Node) []byte {
	t.Helper()
	buf := make([]byte, n.Size)
	var end uint64
	for i, e := range n.Extents {
		if e.Offset < end || e.Offset+uint64(e.Length) > n.Size {
			t.Fatalf("%q: extent %d (%d+%d) overlaps or lies beyond size %d", n.Name, i, e.Offset, e.Length, n.Size)
		}
		chunk, err := v.Chunk(context.Background(), e.ID)
		if err != nil {
			t.Fatalf("%q: chunk %d: %v", n.Name, i, err)
		}
		if len(chunk) != int(e.Length) {
			t.Fatalf("%q: chunk %d has %d bytes, extent says %d", n.Name, i, len(chunk), e.Length)
		}
		copy(buf[e.Offset:], chunk)
		end = e.Offset + uint64(e.Length)
	}
	return buf
}

// checkMeta compares a node's metadata with the file system's.
func checkMeta(t *testing.T, n tree.Node, path string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if n.Mode != st.Mode&0o7777 || n.UID != st.Uid || n.GID != st.Gid || n.Inode != st.Ino || n.Device != st.Dev ||
		n.Links != uint32(st.Nlink) || n.MTime != tree.UnixTime(st.Mtim.Unix()) || n.CTime != tree.UnixTime(st.Ctim.Unix()) {
		t.Errorf("%s: node mode %o uid %d gid %d inode %d dev %d links %d mtime %d ctime %d; lstat says %o %d %d %d %d %d %d %d",
			path, n.Mode, n.UID, n.GID, n.Inode, n.Device, n.Links, n.MTime, n.CTime,
			st.Mode&0o7777, st.Uid, st.Gid, st.Ino, st.Dev, st.Nlink, st.Mtim.Nano(), st.Ctim.Nano())
	}
}

func TestBackupTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string][]byte{ // regular files with distinct inodes
		"empty":              {},
		"small":              []byte("hello, world\n"),
		"big":                testfiles.RandomBytes(9<<20+12345, 1),
		"hard1":              testfiles.RandomBytes(100<<10, 2),
		"bad\xffname\xfe":    []byte("a name that is not UTF-8"),
		"sub/nested/deep.md": []byte("# deep\n"),
	}
	for name, data := range files {
		testfiles.WriteFile(t, filepath.Join(dir, name), data)
	}
	if err := os.Chmod(filepath.Join(dir, "small"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "hard1"), filepath.Join(dir, "hard2")); err != nil {
		t.Fatal(err)
	}
	// Sparse: 64 MiB with 1 MiB of data at 32 MiB.
	sparseData := testfiles.RandomBytes(1<<20, 3)
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(sparseData, 32<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("small", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")}); err != nil {
		t.Fatal(err)
	}
	unix.Close(sock)
	testfiles.WriteFile(t, filepath.Join(dir, "xattr"), []byte("has an xattr"))
	xattrErr := unix.Setxattr(filepath.Join(dir, "xattr"), "user.azfs", []byte("value\x00\xff"), 0)
	if xattrErr != nil && !errors.Is(xattrErr, unix.ENOTSUP) {
		t.Fatalf("setxattr: %v", xattrErr)
	}

	v := newVault(t, mem.New())
	var mu sync.Mutex
	var reported []string
	p, err := backup.Run(ctx, v, backup.Options{
		Paths: []string{dir}, Machine: "m", Hostname: "h", Workers: 2,
		OnError: func(path string, err error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, path+": "+err.Error())
		},
	})
	if err != nil {
		t.Fatalf("Run: %v (reported: %v)", err, reported)
	}
	if p.Partial || len(reported) > 0 {
		t.Fatalf("clean run is partial (%v) or reported errors: %v", p.Partial, reported)
	}
	v = loaded(t, v)
	points, err := v.Points(ctx)
	if err != nil || len(points) != 1 || points[0].ID != p.ID {
		t.Fatalf("Points = %d, %v; want the committed point", len(points), err)
	}
	if p.Machine != "m" || p.Hostname != "h" || len(p.Paths) != 1 || p.Paths[0] != dir {
		t.Errorf("point machine %q host %q paths %v", p.Machine, p.Hostname, p.Paths)
	}

	// Statistics: files, plus hard2, sparse and xattr.
	regular := uint64(len(files)) + 3
	var logical, read uint64
	for _, data := range files {
		logical += uint64(len(data))
		read += uint64(len(data))
	}
	// hard2 counts in the logical size but is not read again; of sparse
	// only the data is read.
	logical += uint64(len(files["hard1"])) + 64<<20 + uint64(len("has an xattr"))
	read += 1<<20 + uint64(len("has an xattr"))
	s := p.Stats
	wantDirs := uint64(strings.Count(dir, "/")+1) + 2 // "/" and every ancestor, dir, sub, nested
	if s.Files != regular || s.Dirs != wantDirs || s.Others != 3 || s.Errors != 0 {
		t.Errorf("stats files %d dirs %d others %d errors %d; want %d %d 3 0", s.Files, s.Dirs, s.Others, s.Errors, regular, wantDirs)
	}
	// The second hard link shares the first's content: read and counted once.
	if s.FilesNew != regular-1 || s.FilesChanged != 0 || s.FilesUnchanged != 0 {
		t.Errorf("stats new %d changed %d unchanged %d; want %d 0 0", s.FilesNew, s.FilesChanged, s.FilesUnchanged, regular-1)
	}
	if s.Bytes != logical || s.BytesRead != read {
		t.Errorf("stats bytes %d read %d; want %d %d (holes are not read)", s.Bytes, s.BytesRead, logical, read)
	}
	if s.BytesStored == 0 || s.BytesStored > read+(1<<20) {
		t.Errorf("stats bytes stored %d for %d bytes read", s.BytesStored, read)
	}

	// The ancestors of dir hold only the way to it.
	parent := lookup(t, v, p, filepath.Dir(dir))
	if got := listing(t, v, parent); len(got) != 1 || got[0] != filepath.Base(dir) || parent.Entries != 1 {
		t.Errorf("parent of the backed-up directory lists %q (%d entries), want only %q", got, parent.Entries, filepath.Base(dir))
	}
	top := lookup(t, v, p, dir)
	checkMeta(t, top, dir)
	wantNames := []string{"bad\xffname\xfe", "big", "empty", "fifo", "hard1", "hard2", "link", "small", "sock", "sparse", "sub", "xattr"}
	if got := listing(t, v, top); strings.Join(got, "|") != strings.Join(wantNames, "|") || top.Entries != uint64(len(wantNames)) {
		t.Errorf("listing = %q (%d entries), want %q", got, top.Entries, wantNames)
	}

	t.Run("regular files", func(t *testing.T) {
		for name, data := range files {
			path := filepath.Join(dir, name)
			n := lookup(t, v, p, path)
			checkMeta(t, n, path)
			if n.Type != tree.File || n.Size != uint64(len(data)) {
				t.Errorf("%q: type %s size %d, want file of %d", name, n.Type, n.Size, len(data))
			}
			if got := content(t, v, n); !bytes.Equal(got, data) {
				t.Errorf("%q: content differs", name)
			}
		}
		if n := lookup(t, v, p, filepath.Join(dir, "empty")); len(n.Extents) != 0 {
			t.Errorf("empty file has %d extents", len(n.Extents))
		}
		if n := lookup(t, v, p, filepath.Join(dir, "small")); n.Mode != 0o640 {
			t.Errorf("small: mode %o, want 640", n.Mode)
		}
	})
	t.Run("multi-chunk file", func(t *testing.T) {
		n := lookup(t, v, p, filepath.Join(dir, "big"))
		if len(n.Extents) < 3 {
			t.Fatalf("9 MiB file in %d chunks, want at least 3 (max chunk 4 MiB)", len(n.Extents))
		}
		var off uint64
		for i, e := range n.Extents {
			if e.Offset != off || e.Length == 0 || int(e.Length) > v.Config().Chunker.Max {
				t.Errorf("extent %d = %d+%d, want contiguous from %d within the chunk size bounds", i, e.Offset, e.Length, off)
			}
			off += uint64(e.Length)
		}
		if off != n.Size {
			t.Errorf("extents end at %d, size %d", off, n.Size)
		}
	})
	t.Run("sparse file", func(t *testing.T) {
		n := lookup(t, v, p, filepath.Join(dir, "sparse"))
		if n.Size != 64<<20 {
			t.Errorf("size %d, want 64 MiB", n.Size)
		}
		if n.StoredBytes() != 1<<20 {
			t.Errorf("extents hold %d bytes, want only the 1 MiB of data", n.StoredBytes())
		}
		for i, e := range n.Extents {
			if e.Offset < 32<<20 || e.Offset+uint64(e.Length) > 33<<20 {
				t.Errorf("extent %d = %d+%d lies outside the data at [32 MiB, 33 MiB)", i, e.Offset, e.Length)
			}
		}
		got := content(t, v, n)
		if !bytes.Equal(got[32<<20:33<<20], sparseData) {
			t.Errorf("data region differs")
		}
		zeros := make([]byte, 32<<20)
		if !bytes.Equal(got[:32<<20], zeros) || !bytes.Equal(got[33<<20:], zeros[:31<<20]) {
			t.Errorf("holes do not read as zeros")
		}
	})
	t.Run("hard links", func(t *testing.T) {
		a := lookup(t, v, p, filepath.Join(dir, "hard1"))
		b := lookup(t, v, p, filepath.Join(dir, "hard2"))
		if a.Inode != b.Inode || a.Links != 2 || b.Links != 2 {
			t.Errorf("links: inodes %d/%d, link counts %d/%d", a.Inode, b.Inode, a.Links, b.Links)
		}
		if len(a.Extents) == 0 || !equalExtents(a.Extents, b.Extents) || a.Size != b.Size {
			t.Errorf("hard links differ: %d bytes in %+v, %d bytes in %+v", a.Size, a.Extents, b.Size, b.Extents)
		}
		if !bytes.Equal(content(t, v, b), files["hard1"]) {
			t.Errorf("second link's content differs")
		}
	})
	t.Run("symlink", func(t *testing.T) {
		n := lookup(t, v, p, filepath.Join(dir, "link"))
		checkMeta(t, n, filepath.Join(dir, "link"))
		if n.Type != tree.Symlink || n.Target != "small" || n.Size != 5 || len(n.Extents) != 0 {
			t.Errorf("link = type %s target %q size %d extents %d", n.Type, n.Target, n.Size, len(n.Extents))
		}
	})
	t.Run("fifo and socket", func(t *testing.T) {
		for name, typ := range map[string]tree.Type{"fifo": tree.FIFO, "sock": tree.Socket} {
			n := lookup(t, v, p, filepath.Join(dir, name))
			checkMeta(t, n, filepath.Join(dir, name))
			if n.Type != typ || len(n.Extents) != 0 || n.Size != 0 {
				t.Errorf("%s: type %s, %d extents, size %d; want %s without content", name, n.Type, len(n.Extents), n.Size, typ)
			}
		}
	})
	t.Run("xattr", func(t *testing.T) {
		if errors.Is(xattrErr, unix.ENOTSUP) {
			missingPrerequisite(t, "the temporary directory's file system does not support user xattrs (setxattr: ENOTSUP)")
		}
		n := lookup(t, v, p, filepath.Join(dir, "xattr"))
		found := false
		for _, x := range n.Xattrs {
			if x.Name == "user.azfs" {
				found = true
				if string(x.Value) != "value\x00\xff" {
					t.Errorf("xattr value %q, want %q", x.Value, "value\x00\xff")
				}
			}
		}
		if !found {
			t.Errorf("xattrs = %+v, want user.azfs", n.Xattrs)
		}
		if p.Stats.Xattrs == 0 {
			t.Errorf("stats count no entries with xattrs")
		}
		if !bytes.Equal(content(t, v, n), []byte("has an xattr")) {
			t.Errorf("content differs")
		}
	})
	t.Run("subdirectories", func(t *testing.T) {
		for _, sub := range []string{"sub", "sub/nested"} {
			n := lookup(t, v, p, filepath.Join(dir, sub))
			checkMeta(t, n, filepath.Join(dir, sub))
			if n.Type != tree.Dir || n.Entries != 1 {
				t.Errorf("%s: type %s with %d entries", sub, n.Type, n.Entries)
			}
		}
	})
}

func equalExtents(a, b []tree.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBackupFileCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	big := testfiles.RandomBytes(6<<20, 10)
	testfiles.WriteFile(t, filepath.Join(dir, "a"), []byte("small file"))
	testfiles.WriteFile(t, filepath.Join(dir, "b"), big)
	testfiles.WriteFile(t, filepath.Join(dir, "c"), nil)
	testfiles.WriteFile(t, filepath.Join(dir, "sub", "d"), testfiles.RandomBytes(100<<10, 11))
	total := uint64(len("small file") + len(big) + 100<<10)

	cache, err := filecache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	v := newVault(t, mem.New())
	run := func() *repo.Point {
		t.Helper()
		p, err := backup.Run(ctx, reopen(t, v), backup.Options{Paths: []string{dir}, Files: cache, Machine: "m"})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return p
	}
	bExtents := func(p *repo.Point) []tree.Extent { return lookup(t, loaded(t, v), p, filepath.Join(dir, "b")).Extents }

	first := run()
	if s := first.Stats; s.Files != 4 || s.FilesNew != 4 || s.FilesUnchanged != 0 || s.BytesRead != total {
		t.Fatalf("first run: files %d new %d unchanged %d read %d; want 4 4 0 %d", s.Files, s.FilesNew, s.FilesUnchanged, s.BytesRead, total)
	}

	second := run()
	if s := second.Stats; s.FilesUnchanged != s.Files || s.Files != 4 || s.FilesNew != 0 || s.FilesChanged != 0 || s.BytesRead != 0 {
		t.Fatalf("second run: files %d unchanged %d new %d changed %d read %d; want every file unchanged and nothing read",
			s.Files, s.FilesUnchanged, s.FilesNew, s.FilesChanged, s.BytesRead)
	}
	if s := second.Stats; s.BytesStored > 64<<10 {
		t.Errorf("second run stored %d bytes; only directory listings may change", s.BytesStored)
	}
	if !equalExtents(bExtents(first), bExtents(second)) {
		t.Errorf("unchanged file has other extents in the second point")
	}

	// Append to b: only b is read, and only its new tail chunks stored.
	f, err := os.OpenFile(filepath.Join(dir, "b"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tail := testfiles.RandomBytes(1000, 12)
	if _, err := f.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	third := run()
	s := third.Stats
	if s.FilesChanged != 1 || s.FilesUnchanged != 3 || s.FilesNew != 0 || s.BytesRead != uint64(len(big)+len(tail)) {
		t.Fatalf("third run: changed %d unchanged %d new %d read %d; want 1 3 0 %d", s.FilesChanged, s.FilesUnchanged, s.FilesNew, s.BytesRead, len(big)+len(tail))
	}
	old := make(map[keys.ID]bool)
	for _, e := range bExtents(second) {
		old[e.ID] = true
	}
	ext := bExtents(third)
	var fresh uint64
	for i, e := range ext {
		if !old[e.ID] {
			fresh += uint64(e.Length)
		} else if i > 0 && !old[ext[i-1].ID] {
			t.Errorf("an unchanged chunk follows a new one: only the tail should change")
		}
	}
	if !old[ext[0].ID] || fresh == 0 || fresh >= uint64(len(big)) {
		t.Errorf("%d of %d bytes in new chunks; want only the tail chunks new", fresh, len(big)+len(tail))
	}
	if s.BytesStored < fresh || s.BytesStored > fresh+64<<10 {
		t.Errorf("third run stored %d bytes for %d bytes of new chunks", s.BytesStored, fresh)
	}
	r := loaded(t, v)
	if got := content(t, r, lookup(t, r, third, filepath.Join(dir, "b"))); !bytes.Equal(got, append(big, tail...)) {
		t.Errorf("appended file's content differs")
	}
}

// TestBackupPartial: entries that cannot be backed up are reported and left
// out, and the point is still committed, marked partial.
func TestBackupPartial(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(dir, "ok.txt"), []byte("fine"))
	// A directory that cannot be listed: reported, kept empty.
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "hidden"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(locked, 0o755)

	paths := []string{dir}
	// A file that lstat shows as regular but that cannot be opened for
	// reading, even by root: a write-only sysctl.
	unreadable := ""
	for _, p := range []string{"/proc/sys/vm/compact_memory", "/proc/sys/vm/drop_caches"} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o444 == 0 {
			if f, err := os.Open(p); err != nil {
				unreadable = p
				paths = append(paths, p)
				break
			} else {
				f.Close()
			}
		}
	}
	if unreadable == "" && os.Geteuid() == 0 {
		missingPrerequisite(t, "root lists every directory, and no write-only sysctl file is there to fail")
	}

	v := newVault(t, mem.New())
	var mu sync.Mutex
	reported := make(map[string]error)
	p, err := backup.Run(ctx, v, backup.Options{Paths: paths, Machine: "m", OnError: func(path string, err error) {
		mu.Lock()
		defer mu.Unlock()
		reported[path] = err
	}})
	if !errors.Is(err, backup.ErrPartial) {
		t.Fatalf("Run = %v, want an error wrapping ErrPartial", err)
	}
	if p == nil || !p.Partial || p.Stats.Errors == 0 || p.Stats.Errors != uint64(len(reported)) {
		t.Fatalf("point = %+v; want a partial point counting the %d reported errors", p, len(reported))
	}
	points, err := reopen(t, v).Points(ctx)
	if err != nil || len(points) != 1 || points[0].ID != p.ID || !points[0].Partial {
		t.Fatalf("Points = %v, %v; want the committed partial point", points, err)
	}

	v = loaded(t, v)
	if n := lookup(t, v, p, filepath.Join(dir, "ok.txt")); !bytes.Equal(content(t, v, n), []byte("fine")) {
		t.Errorf("ok.txt content differs")
	}
	t.Run("unlistable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			// root lists a directory of mode 0 all the same.
			if n := lookup(t, v, p, locked); n.Entries != 1 {
				t.Errorf("locked directory has %d entries in the point, want 1 (root reads it)", n.Entries)
			}
			return
		}
		if err := reported[locked]; !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s: reported %v, want a permission error", locked, err)
		}
		if n := lookup(t, v, p, locked); n.Type != tree.Dir || n.Entries != 0 {
			t.Errorf("unlistable directory: type %s with %d entries, want an empty directory", n.Type, n.Entries)
		}
	})

	t.Run("unreadable file", func(t *testing.T) {
		if unreadable == "" {
			missingPrerequisite(t, "no write-only sysctl file to serve as an unreadable regular file")
		}
		err, ok := reported[unreadable]
		if !ok || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("%s: reported %v, want a permission error", unreadable, err)
		}
		parent := lookup(t, v, p, filepath.Dir(unreadable))
		for _, name := range listing(t, v, parent) {
			if name == filepath.Base(unreadable) {
				t.Errorf("the unreadable file is in the point")
			}
		}
	})
}

// TestBackupStorageFailure: when packs cannot be stored, no point is
// committed.
func TestBackupStorageFailure(t *testing.T) {
	dir := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(dir, "a"), testfiles.RandomBytes(1<<20, 1))
	testfiles.WriteFile(t, filepath.Join(dir, "b"), []byte("b"))
	base := mem.New()
	newVault(t, base)
	failing := &storagetest.FailingSaves{Storage: base, Fail: func(name string) bool { return strings.HasPrefix(name, "data/") }}
	ks, err := repo.Unlock(context.Background(), base, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	v, err := repo.Open(context.Background(), failing, ks)
	if err != nil {
		t.Fatal(err)
	}
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m"})
	if !errors.Is(err, storagetest.ErrInjected) || errors.Is(err, backup.ErrPartial) || p != nil {
		t.Fatalf("Run = %v, %v; want no point and the storage error", p, err)
	}
	var objects []string
	_ = base.List(context.Background(), "points/", func(fi storage.Info) error { objects = append(objects, fi.Name); return nil })
	if len(objects) != 0 {
		t.Errorf("points committed despite the failure: %v", objects)
	}
}

// TestBackupExclude: excluded entries are left out however the walk meets
// them (by path, through another hard link), and a named path that is or
// lies inside one is refused before anything is stored.
func TestBackupExclude(t *testing.T) {
	dir := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(dir, "keep", "a"), []byte("a"))
	testfiles.WriteFile(t, filepath.Join(dir, "vault", "config"), []byte("not backed up"))
	testfiles.WriteFile(t, filepath.Join(dir, "secret"), []byte("keyring"))
	if err := os.Link(filepath.Join(dir, "secret"), filepath.Join(dir, "keep", "secret-link")); err != nil {
		t.Fatal(err)
	}
	exclude := []string{filepath.Join(dir, "vault"), filepath.Join(dir, "secret")}
	v := newVault(t, mem.New())
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Exclude: exclude})
	if err != nil {
		t.Fatal(err)
	}
	v = loaded(t, v)
	if got := listing(t, v, lookup(t, v, p, dir)); len(got) != 1 || got[0] != "keep" {
		t.Errorf("listing = %q, want only keep", got)
	}
	if got := listing(t, v, lookup(t, v, p, filepath.Join(dir, "keep"))); !slices.Equal(got, []string{"a"}) {
		t.Errorf("keep holds %q, want only a (no hard link of an excluded file)", got)
	}
	for _, named := range []string{filepath.Join(dir, "vault"), filepath.Join(dir, "vault", "config"), filepath.Join(dir, "keep", "secret-link")} {
		p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{named}, Exclude: exclude})
		if p != nil || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cannot back up %q", named)) {
			t.Errorf("Run(%s) = %v, %v; want it refused", named, p, err)
		}
	}
}

func TestRunRefusesBadPaths(t *testing.T) {
	v := newVault(t, mem.New())
	for name, paths := range map[string][]string{
		"none":    nil,
		"missing": {filepath.Join(t.TempDir(), "missing")},
	} {
		if p, err := backup.Run(context.Background(), v, backup.Options{Paths: paths}); err == nil || p != nil {
			t.Errorf("%s: Run = %v, %v; want an error", name, p, err)
		}
	}
}

// TestBackupLargeDirectory: a directory beyond tree.PartEntries entries is
// stored in several parts, found entry by entry through PartFor.
func TestBackupLargeDirectory(t *testing.T) {
	dir := t.TempDir()
	const n = 2*tree.PartEntries + 100
	var want []string
	for i := range n {
		name := strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("0", i%3) + "-" + string(rune('A'+i/26%26)) + string(rune('a'+i/676))
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	v := newVault(t, mem.New())
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	v = loaded(t, v)
	node := lookup(t, v, p, dir)
	if len(node.Parts) < 3 || node.Entries != n {
		t.Fatalf("directory of %d entries: %d parts, %d entries recorded", n, len(node.Parts), node.Entries)
	}
	if got := listing(t, v, node); !slices.Equal(got, want) {
		t.Fatalf("listing across parts differs from the directory (%d names, want %d)", len(got), len(want))
	}
	for _, name := range []string{want[0], want[tree.PartEntries-1], want[tree.PartEntries], want[n/2], want[n-1]} {
		if got := lookup(t, v, p, filepath.Join(dir, name)); got.Name != name || got.Type != tree.File {
			t.Errorf("lookup(%q) = %q %s", name, got.Name, got.Type)
		}
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestBackupDeepTree (finding 10): entries whose paths are longer than
// PATH_MAX were dropped with their whole subtree (ENAMETOOLONG, a partial
// point). The walker reaches them by name in their open parent.
func TestBackupDeepTree(t *testing.T) {
	dir := t.TempDir()
	const levels = 30
	deepest, err := deeptree.Build(dir, levels)
	if err != nil {
		t.Fatal(err)
	}
	if len(deepest) <= unix.PathMax+1000 {
		t.Fatalf("the tree is only %d bytes deep", len(deepest))
	}
	v := newVault(t, mem.New())
	fds := openFDs(t)
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m",
		OnError: func(path string, err error) { t.Errorf("OnError(%.80q..., %v)", path, err) },
	})
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d file descriptors open after the run, %d before: directories left open", after, fds)
	}
	if p.Stats.Files != levels || p.Stats.Dirs < levels || p.Stats.Others != 1 {
		t.Errorf("stats %+v, want %d files, a symlink", p.Stats, levels)
	}
	v = loaded(t, v)
	path := dir
	for level := 1; level <= levels; level++ {
		path += "/" + deeptree.Level(level)
		if got := content(t, v, lookup(t, v, p, path+"/f")); !bytes.Equal(got, deeptree.Content(level)) {
			t.Errorf("level %d: f holds %q", level, got)
		}
	}
	if f := lookup(t, v, p, deepest+"/f"); len(f.Xattrs) != 1 || f.Xattrs[0].Name != deeptree.XattrName || string(f.Xattrs[0].Value) != deeptree.XattrValue {
		t.Errorf("deepest f: xattrs %+v, want user.deep=bottom", f.Xattrs)
	}
	if l := lookup(t, v, p, deepest+"/l"); l.Type != tree.Symlink || l.Target != "f" {
		t.Errorf("deepest l: %s -> %q, want a symlink to f", l.Type, l.Target)
	}
}

// TestBackupVanished: entries deleted between the listing of their
// directory and their reading (by other processes, as on a live server)
// are counted as vanished, not reported as errors: the point is whole.
func TestBackupVanished(t *testing.T) {
	dir := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(dir, "kept.txt"), []byte("kept"))
	testfiles.WriteFile(t, filepath.Join(dir, "gone.txt"), []byte("gone"))
	testfiles.WriteFile(t, filepath.Join(dir, "gonedir", "inner.txt"), []byte("inner"))
	defer backup.SetListHook(func(path string) {
		if path != dir {
			return
		}
		if err := os.Remove(filepath.Join(dir, "gone.txt")); err != nil {
			t.Error(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "gonedir")); err != nil {
			t.Error(err)
		}
	})()
	var mu sync.Mutex
	var vanished []string
	v := newVault(t, mem.New())
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m",
		OnError:    func(p string, err error) { t.Errorf("OnError(%q, %v)", p, err) },
		OnVanished: func(p string) { mu.Lock(); defer mu.Unlock(); vanished = append(vanished, p) },
	})
	if err != nil || p.Partial || p.Stats.Errors != 0 {
		t.Fatalf("Run = %v (partial %v, %d errors), want a whole point", err, p != nil && p.Partial, p.Stats.Errors)
	}
	slices.Sort(vanished)
	if want := []string{filepath.Join(dir, "gone.txt"), filepath.Join(dir, "gonedir")}; !slices.Equal(vanished, want) || p.Stats.Vanished != 2 {
		t.Fatalf("vanished %q (stat %d), want %q", vanished, p.Stats.Vanished, want)
	}
	r := loaded(t, v)
	if got := listing(t, r, lookup(t, r, p, dir)); !slices.Equal(got, []string{"kept.txt"}) {
		t.Fatalf("the point lists %q, want only kept.txt", got)
	}
}

// TestBackupCompression: Options.Compression reaches the writer: the
// small compression stores fewer bytes of text than the fast one, and both
// read back.
func TestBackupCompression(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 2000)
	for i := range words {
		words[i] = fmt.Sprintf("%x", rng.Uint64()>>uint(rng.IntN(48)))
	}
	var text strings.Builder
	for text.Len() < 3<<20 {
		text.WriteString(words[rng.IntN(len(words))])
		text.WriteByte(" \n"[rng.IntN(2)])
	}
	testfiles.WriteFile(t, filepath.Join(dir, "words.txt"), []byte(text.String()))
	stored := map[pack.Compression]uint64{}
	for _, c := range []pack.Compression{pack.CompressFast, pack.CompressSmall} {
		v := newVault(t, mem.New())
		p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		v = loaded(t, v)
		if got := content(t, v, lookup(t, v, p, filepath.Join(dir, "words.txt"))); string(got) != text.String() {
			t.Fatalf("%s: the file reads back as %d bytes, want its %d", c, len(got), text.Len())
		}
		stored[c] = p.Stats.BytesStored
	}
	if stored[pack.CompressSmall] >= stored[pack.CompressFast] {
		t.Errorf("stored %d bytes with small compression, %d with fast: want fewer with small", stored[pack.CompressSmall], stored[pack.CompressFast])
	}
	t.Logf("3 MiB of words: %d bytes stored with small compression, %d with fast", stored[pack.CompressSmall], stored[pack.CompressFast])
}

// TestBackupAllocsPerByte: what a first backup allocates grows by a small
// fraction of the bytes it reads, however often the garbage collector runs
// (every few milliseconds here): chunk, payload and pack buffers are reused
// from free lists, not made again for every chunk or pack as when sync.Pools
// held them (about a byte per byte read).
func TestBackupAllocsPerByte(t *testing.T) {
	ctx := context.Background()
	allocated := func(size int) uint64 {
		src := t.TempDir()
		for i := range size / (8 << 20) {
			testfiles.WriteFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), testfiles.RandomBytes(8<<20, uint64(size+i)))
		}
		st, err := local.Create(filepath.Join(t.TempDir(), "vault"))
		if err != nil {
			t.Fatal(err)
		}
		v := newVault(t, st)
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					runtime.GC()
				}
			}
		}()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"})
		runtime.ReadMemStats(&after)
		close(stop)
		<-stopped
		if err != nil {
			t.Fatal(err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	const small, large = 64 << 20, 192 << 20
	a, b := allocated(small), allocated(large)
	perByte := (float64(b) - float64(a)) / (large - small)
	t.Logf("allocated %d MB backing up %d MiB, %d MB backing up %d MiB: %.3f bytes per byte more", a>>20, small>>20, b>>20, large>>20, perByte)
	if perByte > 0.4 {
		t.Errorf("a first backup allocates %.3f bytes per byte read more; want at most 0.4", perByte)
	}
}

// TestBackupDurableOrder: a run's point is saved only once the index that
// names its packs is durable, and that index only once every pack it
// names is: a crash at any moment leaves no point whose data is missing.
// The packs left at the end upload together (RecordingSaves waits for 3).
func TestBackupDurableOrder(t *testing.T) {
	dir := t.TempDir()
	for i := range 40 {
		testfiles.WriteFile(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), testfiles.RandomBytes(1<<20, uint64(i)))
	}
	isPack := func(name string) bool { return strings.HasPrefix(name, "data/") }
	isIndex := func(name string) bool { return strings.HasPrefix(name, repo.IndexPrefix) }
	isPoint := func(name string) bool { return strings.HasPrefix(name, repo.PointsPrefix) }
	st := &storagetest.RecordingSaves{Storage: mem.New(), Match: isPack, Want: 3, Patience: 10 * time.Second}
	v := newVault(t, st)
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m", Uploads: 1})
	if err != nil {
		t.Fatal(err)
	}
	events := st.Events()
	var packs, indexes int
	pending := map[string]bool{}
	for _, e := range events {
		switch {
		case !e.Done && (isIndex(e.Name) || isPoint(e.Name)):
			for name := range pending {
				if isPack(name) || isIndex(name) && isPoint(e.Name) {
					t.Errorf("%s saved while %s, which it depends on, was being saved", e.Name, name)
				}
			}
			if isIndex(e.Name) && packs == 0 || isPoint(e.Name) && indexes == 0 {
				t.Errorf("%s saved before what it depends on", e.Name)
			}
		case e.Done && isPack(e.Name):
			packs++
		case e.Done && isIndex(e.Name):
			indexes++
		}
		pending[e.Name] = !e.Done
		if e.Done {
			delete(pending, e.Name)
		}
	}
	if packs < 3 || indexes == 0 {
		t.Errorf("%d packs and %d index files saved, want at least 3 and 1", packs, indexes)
	}
	if got := st.MostAtOnce(); got < 3 {
		t.Errorf("at most %d pack uploads under way at once at the end of the run, want 3", got)
	}
	if _, err := loaded(t, v).Part(context.Background(), p.Root); err != nil {
		t.Fatal(err)
	}
}

// beforeSave calls before with each name a Save is given, then saves.
type beforeSave struct {
	storage.Storage
	before func(name string)
}

func (s *beforeSave) Save(ctx context.Context, name string, data []byte) error {
	s.before(name)
	return s.Storage.Save(ctx, name, data)
}

// TestBackupFileCacheBesideCommit: the file cache's records are written,
// and FilesDone called (once, after them: the caller may close the cache
// there), while the run stores its last packs, index and point, not after
// the point: the point's Save waits for both, at most 10 s, so that a slow
// machine does not fail it.
func TestBackupFileCacheBesideCommit(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a")
	testfiles.WriteFile(t, file, testfiles.RandomBytes(1<<20, 1))
	cache, err := filecache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	var recorded, done atomic.Int32 // records present when FilesDone ran; FilesDone calls
	var atPoint bool
	st := &beforeSave{Storage: mem.New(), before: func(name string) {
		if !strings.HasPrefix(name, repo.PointsPrefix) {
			return
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, ok := cache.Get(file); ok && done.Load() > 0 {
				atPoint = true
				return
			}
		}
	}}
	v := newVault(t, st)
	opts := backup.Options{Paths: []string{dir}, Files: cache, Machine: "m", FilesDone: func() {
		if _, ok := cache.Get(file); ok {
			recorded.Add(1)
		}
		done.Add(1)
	}}
	if _, err := backup.Run(context.Background(), v, opts); err != nil {
		t.Fatal(err)
	}
	if !atPoint {
		t.Error("the file cache's record was not written, or FilesDone not called, when the point was saved")
	}
	if done.Load() != 1 || recorded.Load() != 1 {
		t.Errorf("FilesDone called %d times, %d of them after the record was written; want once, after", done.Load(), recorded.Load())
	}
}

// TestBackupReturnsMemory: a run gives the memory its buffers held back to
// the operating system before it returns (one forced collection, which
// releases every free page), so that the process's exit does not spend
// tens of milliseconds freeing it and an agent between backups does not
// keep it.
func TestBackupReturnsMemory(t *testing.T) {
	dir := t.TempDir()
	for i := range 40 {
		testfiles.WriteFile(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), testfiles.RandomBytes(1<<20, uint64(i)))
	}
	v := newVault(t, mem.New())
	samples := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(samples)
	forced := samples[0].Value.Uint64()
	if _, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	metrics.Read(samples)
	if got := samples[0].Value.Uint64() - forced; got < 1 {
		t.Errorf("%d collections forced during the run, want the one that returns its memory", got)
	}
	if free := samples[1].Value.Uint64(); free > pack.TargetSize {
		t.Errorf("%d MiB of free heap not returned to the system after the run, want less than a pack's %d", free>>20, pack.TargetSize>>20)
	}
}

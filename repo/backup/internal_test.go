package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/repo/tree"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// mustOpenParent opens the directory holding path and returns it with the
// name of path in it.
func mustOpenParent(t *testing.T, path string) (*dir, string) {
	t.Helper()
	d, at, err := openParent(path)
	if err != nil {
		t.Fatal(err)
	}
	return d, at
}

// TestReadFileErrors covers the read errors that make fileWorker report a
// file and leave it out of the point.
func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	b := &backuper{}
	for _, tc := range []struct {
		name  string
		path  string
		inode uint64
		check func(error) bool
	}{
		{"a directory where a file was", dir, inode(t, dir), func(err error) bool { return strings.Contains(err.Error(), "replaced during backup") }},
		{"a file replaced by another inode", file, inode(t, file) + 1, func(err error) bool { return strings.Contains(err.Error(), "replaced during backup") }},
		{"a file that vanished", filepath.Join(dir, "gone"), 1, func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
		{"a symlink where a file was", filepath.Join(dir, "link"), inode(t, file), func(err error) bool { return errors.Is(err, syscall.ELOOP) }},
	} {
		job := fileJob{path: tc.path, fut: &future{node: tree.Node{Type: tree.File, Inode: tc.inode}}}
		job.dir, job.at = mustOpenParent(t, tc.path)
		err := b.readFile(context.Background(), job, nil, nil)
		job.dir.release()
		if err == nil || !tc.check(err) {
			t.Errorf("%s: readFile = %v", tc.name, err)
		}
		if n := len(job.fut.node.Extents); n != 0 {
			t.Errorf("%s: failed read left %d extents", tc.name, n)
		}
	}
}

func TestDataRegions(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, size int64, writes map[int64]int) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for off, n := range writes {
			if _, err := f.WriteAt([]byte(strings.Repeat("x", n)), off); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		name   string
		size   int64
		writes map[int64]int
		want   []region
	}{
		{"all hole", 8 << 20, nil, nil},
		{"data in the middle", 64 << 20, map[int64]int{32 << 20: 1 << 20}, []region{{32 << 20, 1 << 20}}},
		{"data at both ends", 16 << 20, map[int64]int{0: 64 << 10, 16<<20 - 64<<10: 64 << 10}, []region{{0, 64 << 10}, {16<<20 - 64<<10, 64 << 10}}},
		{"dense", 1 << 20, map[int64]int{0: 1 << 20}, []region{{0, 1 << 20}}},
	} {
		f := mk(strings.ReplaceAll(tc.name, " ", "-"), tc.size, tc.writes)
		got, err := dataRegions(f, uint64(tc.size))
		if (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) && os.Getenv("CI") != "true" {
			t.Skipf("SEEK_DATA/SEEK_HOLE unsupported by the temporary directory's file system: %v", err)
		}
		if err != nil {
			t.Fatalf("%s: dataRegions: %v", tc.name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: dataRegions = %v, want %v", tc.name, got, tc.want)
		}
		// The file offset is back at the start for the reader.
		if off, err := f.Seek(0, 1); err != nil || off != 0 {
			t.Errorf("%s: offset after dataRegions = %d, %v", tc.name, off, err)
		}
	}
}

func TestCleanPaths(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"a/b/c", "ab", "x"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"sorted", []string{j("x"), j("a")}, []string{j("a"), j("x")}},
		{"nested dropped", []string{j("a/b/c"), j("a"), j("a/b")}, []string{j("a")}},
		{"prefix is not a parent", []string{j("ab"), j("a")}, []string{j("a"), j("ab")}},
		{"duplicates", []string{j("x"), j("x") + "/", j("a/../x")}, []string{j("x")}},
		{"root swallows all", []string{j("x"), "/"}, []string{"/"}},
		{"relative", []string{"."}, []string{wd}},
	} {
		got, err := cleanPaths(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: cleanPaths(%q) = %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
	if _, err := cleanPaths(nil); err == nil {
		t.Errorf("cleanPaths(nil) succeeded")
	}
	if _, err := cleanPaths([]string{j("x"), j("missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("cleanPaths with a missing path: err = %v, want one naming it", err)
	}
}

// TestUnchangedFileNotRewritten: a file the cache knows unchanged is taken
// from its record, which is not written again (a database write per file
// would make the second backup of millions of small files as slow as the
// first). TestBackupFileCache covers files that changed.
func TestUnchangedFileNotRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "empty")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := filecache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	b := &backuper{names: newNames(), opts: Options{Files: cache}, batch: cache.NewBatch()}
	defer b.batch.Cancel()
	d, at := mustOpenParent(t, path)
	defer d.release()
	node, err := b.lstat(d, at, path, "empty")
	if err != nil {
		t.Fatal(err)
	}
	// What the previous run remembered (an empty file has no extents).
	prev := cache.NewBatch()
	if err := prev.Put(path, &filecache.Record{Size: node.Size, MTime: cacheStamp(node.MTime), CTime: cacheStamp(node.CTime), Inode: node.Inode, Device: node.Device}); err != nil {
		t.Fatal(err)
	}
	if err := prev.Flush(); err != nil {
		t.Fatal(err)
	}

	job := fileJob{dir: d, at: at, path: path, fut: &future{node: node}}
	if err := b.backupFile(context.Background(), job, nil, nil); err != nil {
		t.Fatal(err)
	}
	if u, p := b.stats.unchanged.Load(), b.stats.cachePuts.Load(); u != 1 || p != 0 {
		t.Errorf("unchanged file: %d unchanged, %d cache writes; want 1, 0", u, p)
	}
	if _, ok := cache.Get(path); !ok {
		t.Error("the unchanged file's record is gone")
	}
}

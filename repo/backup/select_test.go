package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/storage/mem"
)

// pointPaths lists every path below dir in the point, in walk order.
func pointPaths(t *testing.T, v *repo.Area, p *repo.Point, dir string) []string {
	t.Helper()
	var out []string
	var walk func(path string)
	walk = func(path string) {
		for _, name := range listing(t, v, lookup(t, v, p, path)) {
			child := filepath.Join(path, name)
			out = append(out, child[len(dir)+1:])
			if len(lookup(t, v, p, child).Parts) > 0 {
				walk(child)
			}
		}
	}
	walk(dir)
	return out
}

// TestBackupSelection: what the selection leaves out is absent from the
// point, with no error and no partial point: patterns (with a re-include
// and a case-insensitive list), tags (a cache directory keeps only its
// CACHEDIR.TAG; one with another signature is kept whole), a size limit.
// The progress scan counts what the walk backs up.
func TestBackupSelection(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{
		"app/main.go": 1, "app/main.o": 1, "app/node_modules/x/y.js": 1, "app/node_modules/keep/k.js": 1,
		"logs/a.log": 1, "logs/B.LOG": 1, "big.iso": 5000, "small.txt": 10,
		"cache/CACHEDIR.TAG": 0, "cache/blob": 1, "notcache/CACHEDIR.TAG": 0, "notcache/blob": 1,
		"private/.nobackup": 1, "private/secret": 1,
	} {
		testfiles.WriteFile(t, filepath.Join(dir, name), make([]byte, size))
	}
	testfiles.WriteFile(t, filepath.Join(dir, "cache/CACHEDIR.TAG"), []byte(selection.CacheTag.Content+"\n# a cache\n"))
	testfiles.WriteFile(t, filepath.Join(dir, "notcache/CACHEDIR.TAG"), []byte("Signature: 0123"))

	sel := &selection.Selection{LargerThan: 4096, Tags: []selection.Tag{selection.CacheTag, {Name: ".nobackup"}}}
	for _, p := range []string{"*.o", "node_modules/*", "!node_modules/keep"} {
		if err := sel.Exclude.Add(p, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := sel.IExclude.Add(filepath.Join(dir, "logs", "*.log"), true); err != nil {
		t.Fatal(err)
	}
	v := newVault(t, mem.New())
	prog := &backup.Progress{}
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Select: sel, Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	v = loaded(t, v)
	got := pointPaths(t, v, p, dir)
	want := []string{
		"app", "app/main.go", "app/node_modules", "app/node_modules/keep", "app/node_modules/keep/k.js",
		"cache", "cache/CACHEDIR.TAG", "logs", "notcache", "notcache/CACHEDIR.TAG", "notcache/blob",
		"private", "private/.nobackup", "small.txt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("point holds\n%q\nwant\n%q", got, want)
	}
	if p.Partial || p.Stats.Errors != 0 {
		t.Errorf("point partial (%d errors): leaving out is not an error", p.Stats.Errors)
	}
	if prog.TotalFiles.Load() != p.Stats.Files {
		t.Errorf("the progress scan counted %d files, the walk backed up %d", prog.TotalFiles.Load(), p.Stats.Files)
	}
}

// TestBackupFileSystems: a tmpfs mounted below a named path is entered by
// default and kept as an empty directory with OneFileSystem; a proc mount
// is kept empty by default, entered with Include "proc".
func TestBackupFileSystems(t *testing.T) {
	if os.Geteuid() != 0 {
		missingPrerequisite(t, "mounting a tmpfs and a proc needs root")
	}
	dir := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(dir, "a"), []byte("a"))
	for _, m := range []struct{ at, fstype string }{{"tmp", "tmpfs"}, {"proc", "proc"}} {
		at := filepath.Join(dir, m.at)
		if err := os.Mkdir(at, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(m.fstype, at, m.fstype, 0, ""); err != nil {
			t.Fatalf("mount %s: %v", m.fstype, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(at, unix.MNT_DETACH) })
	}
	testfiles.WriteFile(t, filepath.Join(dir, "tmp", "t"), []byte("t"))
	run := func(fs selection.FileSystems) []string {
		v := newVault(t, mem.New())
		p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Select: &selection.Selection{FileSystems: fs}})
		if err != nil && !(len(fs.Include) > 0 && errors.Is(err, backup.ErrPartial)) {
			t.Fatal(err) // some of /proc cannot be read
		}
		v = loaded(t, v)
		var top []string
		for _, name := range listing(t, v, lookup(t, v, p, dir)) {
			top = append(top, name)
			if name != "a" && len(lookup(t, v, p, filepath.Join(dir, name)).Parts) > 0 {
				top = append(top, name+"/…")
			}
		}
		return top
	}
	for _, tc := range []struct {
		name string
		fs   selection.FileSystems
		want []string
	}{
		{"default", selection.FileSystems{}, []string{"a", "proc", "tmp", "tmp/…"}},
		{"one file system", selection.FileSystems{OneFileSystem: true}, []string{"a", "proc", "tmp"}},
		{"include proc", selection.FileSystems{Include: []string{"proc"}}, []string{"a", "proc", "proc/…", "tmp", "tmp/…"}},
	} {
		if got := run(tc.fs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: top level %q, want %q", tc.name, got, tc.want)
		}
	}
}

// BenchmarkBackupPatterns backs up 4,000 files of 16 KiB (every file read,
// no file cache) into memory with no patterns and with the 20 patterns of
// a server's exclude file, none of which matches: compare the two ns/op
// (the bar is 5%).
func BenchmarkBackupPatterns(b *testing.B) {
	dir := b.TempDir()
	for d := range 40 {
		for f := range 100 {
			path := filepath.Join(dir, "d"+strconv.Itoa(d), "sub", "file"+strconv.Itoa(f)+".dat")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(path, testfiles.RandomBytes(16<<10, uint64(d*100+f)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	with := &selection.Selection{}
	for _, p := range []string{
		"*.tmp", "*.swp", "*~", "*.o", "*.pyc", "node_modules", ".cache", "__pycache__",
		"/var/cache", "/var/tmp", "/home/*/Downloads", "/home/*/.local/share/Trash",
		"**/target/debug", "*.[oa]", "core.[0-9]*", "/srv/**/logs/*.gz", "Thumbs.db",
		".DS_Store", "/root/.ccache", "lost+found",
	} {
		if err := with.Exclude.Add(p, false); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		sel  *selection.Selection
	}{{"patterns=0", nil}, {"patterns=20", with}} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVault(b, mem.New())
			for b.Loop() {
				p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Select: bc.sel})
				if err != nil || p.Stats.Files != 4000 {
					b.Fatalf("backup: %v", err)
				}
			}
		})
	}
}

package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBackupSelection (issue 13, selection): `azfs backup` of a tree with
// a tmpfs mounted inside, a cache directory, files an exclude glob
// matches, a FUSE mount of azmount inside, plus a --files-from list.
// What is left out is absent from the point, with exit 0 and no
// "skipped" line; azmount's own mount is never entered, the tmpfs only
// without -x; mount points not entered are empty directories.
func TestBackupSelection(t *testing.T) {
	requireFUSE(t)
	requireRoot(t) // the tmpfs
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	mkdir(t, filepath.Join(src, "sub"))
	mkdir(t, filepath.Join(src, "cache"))
	writeFile(t, filepath.Join(src, "keep.txt"), []byte("keep"), 0o644)
	writeFile(t, filepath.Join(src, "drop.tmp"), []byte("drop"), 0o644)
	writeFile(t, filepath.Join(src, "sub", "also.TMP"), []byte("drop, any case"), 0o644)
	writeFile(t, filepath.Join(src, "sub", "kept"), []byte("kept"), 0o644)
	writeFile(t, filepath.Join(src, "cache", "CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"), 0o644)
	writeFile(t, filepath.Join(src, "cache", "blob"), []byte("cached"), 0o644)
	other := mkdir(t, filepath.Join(e.dir, "other"))
	writeFile(t, filepath.Join(other, "listed one"), []byte("listed"), 0o644)
	writeFile(t, filepath.Join(other, "unlisted"), []byte("unlisted"), 0o644)
	list := filepath.Join(e.dir, "list")
	writeFile(t, list, []byte("# what else to back up\n\n"+filepath.Join(other, "listed*")+"\n"), 0o644)

	tmp := mkdir(t, filepath.Join(src, "tmpfs"))
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(tmp, unix.MNT_DETACH) })
	writeFile(t, filepath.Join(tmp, "in-tmpfs"), []byte("tmpfs"), 0o644)
	e.backup(filepath.Join(src, "keep.txt")) // a point for azmount to show
	e.mount(mkdir(t, filepath.Join(src, "azmount")), "--point", "latest")

	backup := func(args ...string) []string {
		t.Helper()
		r := e.azfs(append([]string{"backup", "--json", "--exclude", "*.tmp", "--iexclude", "*.tmp", "--exclude-caches", "--files-from", list}, args...)...)
		if r.code != 0 || strings.Contains(r.stderr, "skipped") {
			t.Fatalf("backup %q: want exit 0 and nothing skipped, got:\n%s", args, r)
		}
		point := parseBackup(t, r).Point
		mnt := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
		m := e.mount(mnt, "--point", point[:12])
		defer m.cleanup()
		var got []string
		root := filepath.Join(mnt, e.dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if rel, _ := filepath.Rel(root, path); rel != "." {
				got = append(got, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{
		"other", "other/listed one",
		"src", "src/azmount", "src/cache", "src/cache/CACHEDIR.TAG", "src/keep.txt",
		"src/sub", "src/sub/kept", "src/tmpfs", "src/tmpfs/in-tmpfs",
	}
	if got := backup(src); !slices.Equal(got, want) {
		t.Errorf("default: the point holds\n%q\nwant\n%q", got, want)
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "src/tmpfs/in-tmpfs" })
	if got := backup("-x", src); !slices.Equal(got, want) {
		t.Errorf("-x: the point holds\n%q\nwant\n%q", got, want)
	}

	// Bad selections are refused with one line, exit 2, before a point.
	for _, args := range [][]string{
		{"--exclude", "/a/[", src},
		{"--exclude-file", filepath.Join(e.dir, "missing"), src},
		{"--exclude-larger-than", "lots", src},
		{"--exclude-if-present", "a/b", src},
		{"--files-from", filepath.Join(e.dir, "missing")},
	} {
		r := e.azfs(append([]string{"backup"}, args...)...)
		checkOneLineError(t, r, "azfs: ")
		if r.code != 2 {
			t.Errorf("backup %q: exit %d, want 2", args, r.code)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "azmount", e.dir)); err != nil {
		t.Errorf("azmount's mount inside the tree: %v", err)
	}
}

package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

// TestConformanceWithoutOpenat2 runs the conformance suite on the path
// walk used where the kernel has no openat2.
func TestConformanceWithoutOpenat2(t *testing.T) {
	local.WalkWithoutOpenat2(t)
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return newDir(t, t.TempDir())
	})
}

// TestSymlinksNotFollowed is finding 11 of issue 11: the local backend
// followed symbolic links to directories inside the vault, so that whoever
// could write the vault directory made azfs (root, for backups) write,
// read and delete elsewhere. Every operation refuses a link it meets, with
// an error naming the link and its target, and touches nothing outside;
// listings skip links. Both the openat2 path and the walk without it.
func TestSymlinksNotFollowed(t *testing.T) {
	for _, walk := range []bool{false, true} {
		t.Run("walk="+strconv.FormatBool(walk), func(t *testing.T) {
			if walk {
				local.WalkWithoutOpenat2(t)
			}
			testSymlinksNotFollowed(t)
		})
	}
}

func testSymlinksNotFollowed(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	outside := t.TempDir()
	d := newDir(t, root)
	if err := d.Save(ctx, "data/00/real", []byte("in the vault")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	writeTestFile(t, victim, "outside the vault")
	// data/ab is a link to a directory outside; data/cd/obj a link to a
	// file outside; keys a link to the outside directory at the top.
	symlink(t, outside, filepath.Join(root, "data", "ab"))
	mkdirTest(t, filepath.Join(root, "data", "cd"))
	symlink(t, victim, filepath.Join(root, "data", "cd", "obj"))
	symlink(t, outside, filepath.Join(root, "keys"))

	refused := func(what string, err error, link, target string) {
		t.Helper()
		want := strconv.Quote(link) + " is a symbolic link to " + strconv.Quote(target)
		if !errors.Is(err, syscall.ELOOP) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error wrapping ELOOP saying %s", what, err, want)
		}
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists) {
			t.Errorf("%s: %v is ErrNotFound or ErrExists, which callers take for an answer", what, err)
		}
	}
	refused("Save through data/ab", d.Save(ctx, "data/ab/new", []byte("planted")), "data/ab", outside)
	refused("Save through keys", d.Save(ctx, "keys/new", []byte("planted")), "keys", outside)
	_, err := d.Load(ctx, "data/ab/victim", 0, -1)
	refused("Load through data/ab", err, "data/ab", outside)
	_, err = d.Load(ctx, "data/cd/obj", 0, -1)
	refused("Load of a link", err, "data/cd/obj", victim)
	_, err = d.Stat(ctx, "data/ab/victim")
	refused("Stat through data/ab", err, "data/ab", outside)
	_, err = d.Stat(ctx, "data/cd/obj")
	refused("Stat of a link", err, "data/cd/obj", victim)
	refused("Delete through data/ab", d.Delete(ctx, "data/ab/victim"), "data/ab", outside)
	refused("Delete of a link", d.Delete(ctx, "data/cd/obj"), "data/cd/obj", victim)
	refused("List below data/ab", d.List(ctx, "data/ab/", func(storage.Info) error { return nil }), "data/ab", outside)

	var listed []string
	if err := d.List(ctx, "", func(fi storage.Info) error { listed = append(listed, fi.Name); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if strings.Join(listed, " ") != "data/00/real" {
		t.Errorf("List = %q, want only data/00/real: links are skipped", listed)
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "victim" {
		t.Errorf("outside the vault now holds %v, want only victim", entries)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "outside the vault" {
		t.Errorf("victim outside the vault: %q, %v", b, err)
	}
}

// TestRootMayBeSymlink: the vault directory the user names may itself be
// a link; only links below it are refused.
func TestRootMayBeSymlink(t *testing.T) {
	ctx := context.Background()
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "vault")
	symlink(t, real, link)
	d := newDir(t, link)
	if err := d.Save(ctx, "data/ab/obj", []byte("x")); err != nil {
		t.Fatalf("Save in a vault named through a link: %v", err)
	}
	if b, err := d.Load(ctx, "data/ab/obj", 0, -1); err != nil || string(b) != "x" {
		t.Errorf("Load = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(real, "data", "ab", "obj")); err != nil {
		t.Errorf("the object is not in the directory the link names: %v", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkdirTest(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

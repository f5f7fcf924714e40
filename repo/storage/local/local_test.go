package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return newDir(t, t.TempDir())
	})
}

func newDir(t *testing.T, dir string) *local.Dir {
	t.Helper()
	d, err := local.Create(dir)
	if err != nil {
		t.Fatalf("Create(%q): %v", dir, err)
	}
	return d
}

// tempFiles returns the paths of all temporary files below root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return found
}

func TestOpenCreate(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()

	missing := filepath.Join(base, "missing")
	_, err := local.Open(missing)
	if !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want an error wrapping storage.ErrNotFound and fs.ErrNotExist", err)
	}
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(missing) error %q does not name the directory", err)
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Open(file); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Open(file) = %v, want ENOTDIR", err)
	}
	if _, err := local.Create(file); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Create(file) = %v, want ENOTDIR", err)
	}
	if _, err := local.Create(filepath.Join(file, "below")); err == nil {
		t.Error("Create below a file succeeded")
	}

	vault := filepath.Join(base, "a", "b", "vault")
	d := newDir(t, vault)
	fi, err := os.Stat(vault)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); !fi.IsDir() || perm != 0o700 {
		t.Errorf("Create made %v, want a directory with mode 0700", fi.Mode())
	}
	if err := d.Save(ctx, "config", []byte("cfg")); err != nil {
		t.Fatal(err)
	}

	// Create on an existing, non-empty directory and Open both see the
	// same vault.
	for _, open := range []func(string) (*local.Dir, error){local.Create, local.Open} {
		d2, err := open(vault)
		if err != nil {
			t.Fatalf("reopening %s: %v", vault, err)
		}
		if got, err := d2.Load(ctx, "config", 0, -1); err != nil || string(got) != "cfg" {
			t.Errorf("Load(config) after reopening = %q, %v; want \"cfg\"", got, err)
		}
	}
}

func TestModes(t *testing.T) {
	root := t.TempDir()
	d := newDir(t, root)
	if err := d.Save(context.Background(), "data/ab/abcdef", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{
		"data":           fs.ModeDir | 0o700,
		"data/ab":        fs.ModeDir | 0o700,
		"data/ab/abcdef": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	for i := range 5 {
		if err := d.Save(ctx, fmt.Sprintf("data/%02x/obj", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Losers of a race fail at link time and must clean up too.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { _ = d.Save(ctx, "index/contended", []byte{byte(i)}) })
	}
	wg.Wait()
	if err := d.Save(ctx, "data/00/obj", []byte("again")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("second Save = %v, want ErrExists", err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestListSkipsForeignFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	if err := d.Save(ctx, "data/ab/real", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crashed Save, editor droppings and a symlink.
	for _, path := range []string{"data/ab/.tmp-123", ".tmp-456", ".git/config", "data/.hidden/obj"} {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("real", filepath.Join(root, "data/ab/link")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := d.List(ctx, "", func(info storage.Info) error {
		got = append(got, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "data/ab/real" {
		t.Errorf("List = %q, want only data/ab/real", got)
	}
}

// TestSaveFailsCleanly makes Save fail before anything is written by putting
// a file where a parent directory should be; this works even as root.
func TestSaveFailsCleanly(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	if err := os.WriteFile(filepath.Join(root, "data"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := d.Save(ctx, "data/ab/obj", []byte("x"))
	var serr *storage.Error
	if !errors.As(err, &serr) || serr.Op != "save" || serr.Name != "data/ab/obj" || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Save below a file = %v, want a save data/ab/obj error wrapping ENOTDIR", err)
	}
	if errors.Is(err, storage.ErrExists) {
		t.Errorf("Save below a file reported ErrExists: %v", err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestSaveReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root bypasses permission checks, so the chmod below would not
		// make Save fail. TestSaveFailsCleanly and TestENOSPC cover the
		// failure paths instead.
		t.Skip("permission checks do not apply to root")
	}
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	if err := d.Save(ctx, "data/ab/first", []byte("x")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "data", "ab")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) }) // so that t.TempDir can remove it
	err := d.Save(ctx, "data/ab/second", []byte("y"))
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Save into a read-only directory = %v, want a permission error", err)
	}
	if _, err := d.Stat(ctx, "data/ab/second"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after failed Save = %v, want ErrNotFound", err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

// TestENOSPC fills a 1 MiB tmpfs. Mounting needs root (or CAP_SYS_ADMIN);
// without it the test is skipped, except on CI where it must run.
func TestENOSPC(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", root).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to test ENOSPC: %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", root, err, bytes.TrimSpace(out))
		}
	})

	d := newDir(t, root)
	if err := d.Save(ctx, "data/ab/small", make([]byte, 100<<10)); err != nil {
		t.Fatalf("Save of 100 KiB into 1 MiB: %v", err)
	}
	const name = "data/ab/big"
	err := d.Save(ctx, name, make([]byte, 2<<20))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Save of 2 MiB into 1 MiB = %v, want an error wrapping ENOSPC", err)
	}
	var serr *storage.Error
	if !errors.As(err, &serr) || serr.Op != "save" || serr.Name != name {
		t.Errorf("error %v does not record operation save and name %s", err, name)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %q does not say the disk is full", err)
	}
	if _, err := d.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after ENOSPC = %v, want ErrNotFound", err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
	// The partial temporary file's space was given back.
	if err := d.Save(ctx, "data/ab/after", make([]byte, 600<<10)); err != nil {
		t.Errorf("Save of 600 KiB after the failure: %v", err)
	}
}

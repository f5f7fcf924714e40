package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/azfs/azfs/repo/storage"
)

// openBelow returns how many of this process's descriptors are open on
// files below dir.
func openBelow(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list open files: %v", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// TestLoadKeepsFilesOpen: Load reads an object again from the file it
// opened before, keeps a bounded number of files open, and Close closes
// them all; Delete closes the object's file.
func TestLoadKeepsFilesOpen(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	const objects = 100
	name := func(i int) string { return fmt.Sprintf("data/%02x/obj%d", i%7, i) }
	for i := range objects {
		if err := d.Save(ctx, name(i), []byte(fmt.Sprintf("content %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Load(ctx, name(0), 0, -1); err != nil {
		t.Fatal(err)
	}
	if n := openBelow(t, root); n != 1 {
		t.Fatalf("after one Load, %d files open below the vault, want 1", n)
	}
	if b, err := d.Load(ctx, name(0), 8, 1); err != nil || string(b) != "0" {
		t.Fatalf("Load from the kept file = %q, %v; want %q", b, err, "0")
	}
	for i := range objects {
		b, err := d.Load(ctx, name(i), 0, -1)
		if err != nil || i > 0 && string(b) != fmt.Sprintf("content %d", i) {
			t.Fatalf("Load(%s) = %q, %v", name(i), b, err)
		}
	}
	if n := openBelow(t, root); n == 0 || n > 32 {
		t.Fatalf("after %d Loads, %d files open below the vault, want 1..32", objects, n)
	}
	last := name(objects - 1)
	before := openBelow(t, root)
	if err := d.Delete(ctx, last); err != nil {
		t.Fatal(err)
	}
	if n := openBelow(t, root); n != before-1 {
		t.Errorf("Delete left %d files open, want %d", n, before-1)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openBelow(t, root); n != 0 {
		t.Errorf("after Close, %d files open below the vault, want 0", n)
	}
	// Still usable.
	if b, err := d.Load(ctx, name(0), 0, -1); err != nil || string(b) != "content 0" {
		t.Errorf("Load after Close = %q, %v; want %q", b, err, "content 0")
	}
}

// TestLoadSeesOutsideChanges: a kept file answers as opening the object
// would when another process changed the vault behind this one's back
// (the heal loop's damage, a prune run elsewhere): a truncated object is
// read at its new size, a deleted one is not found, a replaced one reads
// its new content.
func TestLoadSeesOutsideChanges(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	for _, n := range []string{"data/a", "data/b", "data/c"} {
		if err := d.Save(ctx, n, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Load(ctx, n, 0, -1); err != nil { // kept open
			t.Fatal(err)
		}
	}
	path := func(n string) string { return filepath.Join(root, filepath.FromSlash(n)) }
	if err := os.Truncate(path("data/a"), 4); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Load(ctx, "data/a", 0, -1); err != nil || string(b) != "0123" {
		t.Errorf("Load of a truncated object = %q, %v; want %q", b, err, "0123")
	}
	if _, err := d.Load(ctx, "data/a", 6, 2); !errors.Is(err, storage.ErrRange) {
		t.Errorf("Load beyond a truncated object's end: %v, want ErrRange", err)
	}
	if err := os.Remove(path("data/b")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(ctx, "data/b", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Load of a deleted object: %v, want ErrNotFound", err)
	}
	if err := os.WriteFile(path("data/c")+".new", []byte("replaced"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path("data/c")+".new", path("data/c")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Load(ctx, "data/c", 0, -1); err != nil || string(b) != "replaced" {
		t.Errorf("Load of a replaced object = %q, %v; want %q", b, err, "replaced")
	}
}

// TestLoadConcurrentWhileClosing: Loads of many objects at once, more than
// are kept open, while others close the kept files, all read right (a Load
// whose file is closed under it opens the object again).
func TestLoadConcurrentWhileClosing(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newDir(t, root)
	const objects = 80
	want := make([][]byte, objects)
	for i := range objects {
		want[i] = bytes.Repeat([]byte{byte(i)}, 1000+i)
		if err := d.Save(ctx, fmt.Sprintf("data/%02x/o%d", i%5, i), want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for k := range 400 {
				i := (g*31 + k*7) % objects
				if g == 0 && k%50 == 0 {
					d.Close()
				}
				b, err := d.Load(ctx, fmt.Sprintf("data/%02x/o%d", i%5, i), 10, 500)
				if err != nil || !bytes.Equal(b, want[i][10:510]) {
					errs <- fmt.Errorf("Load(o%d) = %d bytes, %v", i, len(b), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d.Close()
	if n := openBelow(t, root); n != 0 {
		t.Errorf("after Close, %d files open below the vault, want 0", n)
	}
}

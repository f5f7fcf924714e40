package ext4_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/ext4"
	"github.com/azfs/azfs/diskimage/imagetest"
)

// open makes an ext4 image of src with mkfs.ext4 (extra options before the
// path) and opens it.
func open(t *testing.T, src string, sizeMiB int, mkfsArgs ...string) *ext4.FS {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	if len(mkfsArgs) == 0 {
		imagetest.Ext4(t, img, src, sizeMiB)
	} else {
		imagetest.Require(t, "mkfs.ext4")
		args := append([]string{"-q", "-F", "-d", src}, mkfsArgs...)
		imagetest.Run(t, "", "mkfs.ext4", append(args, img, itoa(sizeMiB)+"M")...)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fs, err := ext4.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestReadsMkfsDefaults reads what mkfs.ext4 -d makes with its default
// features (extents, flex_bg, 64bit, metadata_csum, htree directories).
func TestReadsMkfsDefaults(t *testing.T) {
	src := t.TempDir()
	imagetest.Source(t, src, false, 3000)
	fs := open(t, src, 64)
	// mkfs.ext4 -d stores whole seconds (the inodes' extra time fields
	// are zero), so nanoseconds cannot be compared.
	imagetest.CompareTree(t, src, fs, imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9})

	root, _ := fs.Root()
	if _, err := fs.Lookup(&root, "no-such-file"); !errors.Is(err, ext4.ErrNotFound) {
		t.Fatalf("lookup of a missing name: %v", err)
	}
	many, err := fs.Lookup(&root, "many")
	if err != nil {
		t.Fatal(err)
	}
	f, err := fs.Lookup(&many, "file-2999")
	if err != nil || f.Size != 4 {
		t.Fatalf("lookup in an htree directory: %+v, %v", f, err)
	}
	// A listing resumed from a cursor goes on where it stopped.
	var first []string
	var cursor int64
	fs.ReadDir(&many, 0, func(n diskimage.Node, next int64) bool {
		first = append(first, n.Name)
		cursor = next
		return len(first) < 100
	})
	rest := 0
	fs.ReadDir(&many, cursor, func(n diskimage.Node, _ int64) bool {
		rest++
		return true
	})
	if len(first)+rest != 3000 {
		t.Fatalf("listing in two steps gave %d+%d entries", len(first), rest)
	}
}

// TestReadsExt2BlockMaps reads a file system without extents (ext2's block
// maps, with indirect blocks) and with 1 KiB blocks.
func TestReadsExt2BlockMaps(t *testing.T) {
	src := t.TempDir()
	imagetest.Source(t, src, false, 10)
	fs := open(t, src, 32, "-t", "ext2", "-b", "1024", "-E", "root_owner=0:0")
	imagetest.CompareTree(t, src, fs, imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9})
}

// TestRefusesUnreadFeatures: a file system with meta_bg is refused at
// open, an inode with inline_data when it is read; both errors wrap
// ErrUnsupported and name the feature as mkfs.ext4 -O names it.
func TestRefusesUnreadFeatures(t *testing.T) {
	imagetest.Require(t, "mkfs.ext4")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "small"), []byte("inline\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "meta_bg.img")
	imagetest.Run(t, "", "mkfs.ext4", "-q", "-F", "-O", "meta_bg,^resize_inode", "-d", src, img, "16M")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ext4.Open(f, 16<<20); !errors.Is(err, ext4.ErrUnsupported) || !strings.Contains(err.Error(), "meta_bg") {
		t.Fatalf("meta_bg: %v, want ErrUnsupported naming meta_bg", err)
	}

	fs := open(t, src, 16, "-O", "inline_data")
	root, err := fs.Root()
	if err != nil {
		t.Fatal(err)
	}
	small, err := fs.Lookup(&root, "small")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadAt(&small, make([]byte, 7), 0); !errors.Is(err, ext4.ErrUnsupported) || !strings.Contains(err.Error(), "inline_data") {
		t.Fatalf("a file of inline data: %v, want ErrUnsupported naming inline_data", err)
	}
}

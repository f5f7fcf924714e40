package fat_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/diskimage/fat"
	"github.com/azfs/azfs/diskimage/imagetest"
)

// TestReadsMkfsVfat reads what mkfs.vfat and mcopy make: FAT12, FAT16 (the
// default below 512 MiB) and FAT32, with long names and a directory of
// many files.
func TestReadsMkfsVfat(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sizeMiB, bits int
	}{
		{"fat12", 8, 12},
		{"default-fat16", 64, 0},
		{"fat32", 64, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			imagetest.Source(t, src, true, 300)
			img := filepath.Join(t.TempDir(), "fat.img")
			imagetest.FAT(t, img, src, tc.sizeMiB, tc.bits)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			fs, err := fat.Open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			imagetest.CompareTree(t, src, fs, imagetest.Compare{MtimeGranularity: 2e9})
			root, _ := fs.Root()
			if n, err := fs.Lookup(&root, "HELLO.TXT"); err != nil || n.Name != "hello.txt" {
				t.Fatalf("case-insensitive lookup: %+v, %v", n, err)
			}
			if _, err := fs.Lookup(&root, "nope"); !errors.Is(err, fat.ErrNotFound) {
				t.Fatalf("lookup of a missing name: %v", err)
			}
		})
	}
}

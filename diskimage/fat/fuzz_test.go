package fat_test

import (
	"io"
	"testing"

	"github.com/azfs/azfs/diskimage/fat"
	"github.com/azfs/azfs/diskimage/imagetest"
)

// FuzzFS reads arbitrary bytes as a FAT image and walks all of it: it fails
// only with ErrFormat, never panics or loops. The seed in testdata is a
// FAT12 file system made by mkfs.vfat and mcopy.
func FuzzFS(f *testing.F) {
	imagetest.FuzzTree(f, func(r io.ReaderAt, size int64) (imagetest.Tree, error) {
		return fat.Open(r, size)
	}, fat.ErrFormat)
}

package ext4_test

import (
	"io"
	"testing"

	"github.com/azfs/azfs/diskimage/ext4"
	"github.com/azfs/azfs/diskimage/imagetest"
)

// FuzzFS reads arbitrary bytes as an ext4 image and walks all of it: it
// fails only with ErrFormat or ErrUnsupported, never panics or loops. The
// seeds in testdata are small file systems made by mkfs.ext4 -d (ext4 with
// 1 KiB blocks, ext2).
func FuzzFS(f *testing.F) {
	imagetest.FuzzTree(f, func(r io.ReaderAt, size int64) (imagetest.Tree, error) {
		return ext4.Open(r, size)
	}, ext4.ErrFormat, ext4.ErrUnsupported)
}

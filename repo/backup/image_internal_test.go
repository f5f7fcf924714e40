package backup

import (
	"os"
	"path/filepath"
	"testing"
)

func TestImageBlock(t *testing.T) {
	for _, c := range []struct {
		size, block uint64
		maxChunk    int
	}{
		{1 << 20, 16 << 10, 4 << 20},
		{16 << 30, 16 << 10, 4 << 20},
		{16<<30 + 1, 32 << 10, 4 << 20},
		{100 << 30, 128 << 10, 4 << 20},
		{1 << 40, 1 << 20, 4 << 20},
		{10 << 40, 4 << 20, 4 << 20},
		{1 << 40, 64 << 10, 100 << 10}, // never beyond the vault's chunk maximum
		{1 << 30, 1 << 10, 1 << 10},
	} {
		if got := imageBlock(c.size, c.maxChunk); got != c.block {
			t.Errorf("imageBlock(%d, %d) = %d, want %d", c.size, c.maxChunk, got, c.block)
		}
	}
}

// TestRecognise: every signature makes a file of 1 MiB an image; a file
// without one, or smaller, is not.
func TestRecognise(t *testing.T) {
	dir := t.TempDir()
	file := func(size int, off int, mark string) *os.File {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + 1)
		}
		copy(b[off:], mark)
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, s := range signatures {
		img, ok, err := recognise(file(minImageSize, s.off, s.mark), minImageSize, false, 4<<20)
		if err != nil || !ok || img.VHD || img.Block != minImageBlock || img.DataSize != minImageSize {
			t.Errorf("%q at %d: recognise = %+v, %v, %v; want an image in 16 KiB blocks", s.mark, s.off, img, ok, err)
		}
		if _, ok, err := recognise(file(minImageSize-1, s.off, s.mark), minImageSize-1, false, 4<<20); ok || err != nil {
			t.Errorf("%q at %d in a file under 1 MiB: an image (%v)", s.mark, s.off, err)
		}
	}
	if _, ok, err := recognise(file(minImageSize, 0, ""), minImageSize, false, 4<<20); ok || err != nil {
		t.Errorf("a file without a signature: an image (%v)", err)
	}
	// A file that shrank since its size was taken (truncated while the
	// backup runs) is cut as any file, whose read then sees the change.
	if _, ok, err := recognise(file(minImageSize, 510, "\x55\xaa"), 2*minImageSize, false, 4<<20); ok || err != nil {
		t.Errorf("a file shorter than its size: recognise = %v, %v; want no image and no error", ok, err)
	}
	if img, ok, err := recognise(file(4096, 0, ""), 4096, true, 4<<20); !ok || err != nil || !img.Device {
		t.Errorf("a device: recognise = %+v, %v, %v; want an image", img, ok, err)
	}
}

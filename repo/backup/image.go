package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/vhd"
)

// Disk images (block devices read with Options.ReadDevices, and regular
// files that look like one) are cut into fixed, offset-aligned blocks
// instead of content-defined chunks: a disk is written in place, never
// shifted, so a block that changes is the only one that changes, where
// FastCDC's 1 MiB chunks cost a whole chunk for each small write. Blocks
// that hold only zeros are holes, like those of sparse files.
//
// The block is the smallest power of two from minImageBlock up to the
// vault's chunk maximum that cuts the image into at most maxImageBlocks
// blocks: 16 KiB up to a 16 GiB image, larger blocks for larger ones, so
// that an image's node (about 36 bytes per extent, within the 64 MiB a
// tree part may hold), its file cache record and the index entries of its
// blocks stay bounded. 16 KiB, not a file system's 4 KiB: every block is a
// blob, and each costs its list entry in every changed image's node, its
// index entry and, when read through a mount, a fetch and an open of its
// own; 4 KiB blocks store about 1.9% of a 4 GiB image after 1% of it
// changed whatever the pattern, but read through a mount at a third of the
// speed of 1 MiB chunks, while 16 KiB blocks store 1.2% after writes in
// runs (4% after scattered 4 KiB writes) and read at about the speed of
// ordinary files; 8 KiB blocks store 2.45% and 1.4%, and read at 0.46x
// (bench/images.sh, README "Disk images").
const (
	minImageBlock  = 16 << 10
	maxImageBlocks = 1 << 20
	// minImageSize is the smallest regular file examined for an image
	// signature; smaller ones are chunked as any file.
	minImageSize = 1 << 20
)

// Image is how a file or device was recognised as a disk image.
type Image struct {
	Device bool   // a block device read with Options.ReadDevices
	VHD    bool   // a fixed VHD: DataSize bytes of disk, then its footer
	Size   uint64 // of the file or device
	// DataSize is the size of the raw disk: Size, or Size minus the VHD
	// footer.
	DataSize uint64
	Block    uint64 // the block it is cut into
}

// imageBlock returns the block an image of size bytes is cut into, for a
// vault whose chunks are at most maxChunk bytes.
func imageBlock(size uint64, maxChunk int) uint64 {
	block := uint64(min(minImageBlock, maxChunk))
	for block*2 <= uint64(maxChunk) && size > block*maxImageBlocks {
		block *= 2
	}
	return block
}

// recognise returns how the open file f, of size bytes, is cut: as an
// image (ok) or, when it is a regular file that does not look like one,
// by the chunker.
func recognise(f *os.File, size uint64, device bool, maxChunk int) (img Image, ok bool, err error) {
	if !device && size < minImageSize {
		return Image{}, false, nil
	}
	img = Image{Device: device, Size: size, DataSize: size}
	_, err = vhd.ReadFixed(f, int64(size))
	switch {
	case err == nil:
		img.VHD, img.DataSize = true, size-vhd.FooterSize
	case errors.Is(err, io.EOF):
		// The file ends before its size: it shrank since it was looked
		// at. It is cut as any file, whose read sees the change.
		return Image{}, false, nil
	case !errors.Is(err, vhd.ErrNotVHD) && !errors.Is(err, vhd.ErrFormat) && !errors.Is(err, vhd.ErrNotFixed):
		return Image{}, false, err
	case !device:
		if ok, err := hasImageSignature(f); !ok || err != nil {
			return Image{}, false, err
		}
	}
	img.Block = imageBlock(img.DataSize, maxChunk)
	return img, true, nil
}

// signatures are the marks of a disk, a volume or a file system at its
// start: an MBR (or FAT, NTFS boot sector), a GPT header (512- and
// 4096-byte sectors), LUKS, an LVM physical volume, ext2/3/4, XFS, btrfs.
var signatures = []struct {
	off  int
	mark string
}{
	{510, "\x55\xaa"},
	{512, "EFI PART"},
	{4096, "EFI PART"},
	{0, "LUKS\xba\xbe"},
	{512, "LABELONE"},
	{1080, "\x53\xef"},
	{0, "XFSB"},
	{65600, "_BHRfS_M"},
}

// signatureSpan is how many leading bytes hasImageSignature reads.
const signatureSpan = 65600 + 8

// hasImageSignature reports whether the file f starts like a disk, a
// volume or a file system.
func hasImageSignature(f *os.File) (bool, error) {
	head := make([]byte, signatureSpan)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false, err
	}
	head = head[:n]
	for _, s := range signatures {
		if len(head) >= s.off+len(s.mark) && string(head[s.off:s.off+len(s.mark)]) == s.mark {
			return true, nil
		}
	}
	return false, nil
}

// deviceSize returns the size of the block device open as f.
func deviceSize(f *os.File) (uint64, error) {
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return 0, &os.PathError{Op: "ioctl BLKGETSIZE64", Path: f.Name(), Err: errno}
	}
	return size, nil
}

// zeros is compared against to find blocks that hold only zeros.
var zeros [64 << 10]byte

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// readBlock reads the block [off, off+n) of f into buf, which it grows as
// needed, and returns it; a block cut short by the end of the file is
// returned as far as the file goes.
func readBlock(f *os.File, buf []byte, off, n uint64) ([]byte, error) {
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := f.ReadAt(buf, int64(off))
	if err != nil && err != io.EOF {
		return buf[:got], fmt.Errorf("read at %d: %w", off, err)
	}
	return buf[:got], nil
}

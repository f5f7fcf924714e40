// Package vhd recognises fixed VHD disk images: the format Azure exports
// and Hyper-V and qemu write, which is the raw disk followed by a 512-byte
// footer ("Virtual Hard Disk Image Format Specification", Microsoft, 2006).
// Only the footer is parsed; dynamic and differencing disks, whose data is
// laid out in blocks behind a table, are recognised as VHDs but not as
// fixed.
package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FooterSize is the length of a VHD footer, the last bytes of a fixed VHD.
const FooterSize = 512

// DiskType is the kind of a VHD; the values are those of the format.
type DiskType uint32

// Disk types.
const (
	Fixed        DiskType = 2
	Dynamic      DiskType = 3
	Differencing DiskType = 4
)

func (t DiskType) String() string {
	switch t {
	case Fixed:
		return "fixed"
	case Dynamic:
		return "dynamic"
	case Differencing:
		return "differencing"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Footer is what a VHD footer says of its disk.
type Footer struct {
	Type     DiskType
	DiskSize uint64 // the disk's size in bytes ("current size")
	Creator  string // creator application, four bytes ("qemu", "win ", "vpc ")
	UniqueID [16]byte
}

var (
	// ErrNotVHD is returned for bytes that are not a VHD footer: no
	// "conectix" cookie.
	ErrNotVHD = errors.New("not a VHD footer")
	// ErrFormat is returned for a footer whose cookie is right but whose
	// checksum or fields are not.
	ErrFormat = errors.New("damaged VHD footer")
	// ErrNotFixed is returned by ReadFixed for a VHD that is not a fixed
	// disk of the file's size.
	ErrNotFixed = errors.New("not a fixed VHD")
)

const cookie = "conectix"

// Offsets of the footer's fields (all big-endian).
const (
	offFormatVersion = 12
	offCreatorApp    = 28
	offCurrentSize   = 48
	offDiskType      = 60
	offChecksum      = 64
	offUniqueID      = 68
)

// ParseFooter parses a 512-byte VHD footer. It checks the cookie, the
// checksum (the ones' complement of the sum of every other byte), the
// format version (1.x) and the disk type.
func ParseFooter(b []byte) (Footer, error) {
	if len(b) != FooterSize || !bytes.Equal(b[:len(cookie)], []byte(cookie)) {
		return Footer{}, ErrNotVHD
	}
	var sum uint32
	for i, c := range b {
		if i < offChecksum || i >= offChecksum+4 {
			sum += uint32(c)
		}
	}
	if got := binary.BigEndian.Uint32(b[offChecksum:]); got != ^sum {
		return Footer{}, fmt.Errorf("%w: checksum %#08x, the bytes sum to %#08x", ErrFormat, got, ^sum)
	}
	if v := binary.BigEndian.Uint32(b[offFormatVersion:]); v>>16 != 1 {
		return Footer{}, fmt.Errorf("%w: format version %#08x", ErrFormat, v)
	}
	f := Footer{
		Type:     DiskType(binary.BigEndian.Uint32(b[offDiskType:])),
		DiskSize: binary.BigEndian.Uint64(b[offCurrentSize:]),
		Creator:  string(b[offCreatorApp : offCreatorApp+4]),
	}
	copy(f.UniqueID[:], b[offUniqueID:])
	switch f.Type {
	case Fixed, Dynamic, Differencing:
	default:
		return Footer{}, fmt.Errorf("%w: disk type %d", ErrFormat, uint32(f.Type))
	}
	return f, nil
}

// ReadFixed reads the footer at the end of r, whose size is size, and
// returns it if r is a fixed VHD: a valid footer of type fixed whose disk
// size is size minus the footer. Otherwise it returns an error wrapping
// ErrNotVHD, ErrFormat or ErrNotFixed, or the read's error.
func ReadFixed(r io.ReaderAt, size int64) (Footer, error) {
	if size < FooterSize {
		return Footer{}, ErrNotVHD
	}
	var b [FooterSize]byte
	if _, err := r.ReadAt(b[:], size-FooterSize); err != nil {
		return Footer{}, fmt.Errorf("read VHD footer: %w", err)
	}
	f, err := ParseFooter(b[:])
	if err != nil {
		return Footer{}, err
	}
	if f.Type != Fixed {
		return Footer{}, fmt.Errorf("%w: a %s disk", ErrNotFixed, f.Type)
	}
	if f.DiskSize != uint64(size-FooterSize) {
		return Footer{}, fmt.Errorf("%w: the footer gives a %d-byte disk, the data is %d bytes", ErrNotFixed, f.DiskSize, size-FooterSize)
	}
	return f, nil
}

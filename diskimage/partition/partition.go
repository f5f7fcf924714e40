// Package partition reads the partition table of a disk image, GPT or MBR,
// from an io.ReaderAt, with github.com/diskfs/go-diskfs's table readers.
// Partitions are numbered as Linux numbers them (p1, p2, …): a GPT entry's
// place in the entry array, an MBR primary entry's place in the MBR, and
// the logical partitions of an MBR extended partition from 5 on, in the
// order of its chain of extended boot records (EBRs, which go-diskfs does
// not read: readLogicals does). The extended partition itself, which
// holds only that chain, is not listed.
package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// ErrFormat is wrapped by the errors about a malformed partition table.
var ErrFormat = errors.New("malformed partition table")

// Partition is one partition of a table.
type Partition struct {
	// Number is the partition's number, from 1.
	Number int
	// Start and Size are the partition's place in the disk, in bytes.
	Start, Size int64
	// Name is the GPT partition name (empty for MBR).
	Name string
	// Type is the GPT partition type GUID in lower case, or the MBR type as two hex
	// digits.
	Type string
}

// Table is a disk's partition table.
type Table struct {
	// Scheme is "gpt" or "mbr".
	Scheme     string
	Partitions []Partition
}

// gptSignature starts a GPT header, at the disk's second logical sector.
var gptSignature = []byte("EFI PART")

// IsGPT reports whether head, a disk's first 8 KiB or more, holds a GPT
// header for 512- or 4096-byte logical sectors.
func IsGPT(head []byte) bool {
	return gptSectorSize(head) != 0
}

// gptSectorSize returns the logical sector size whose second sector in
// head starts with a GPT header, or 0.
func gptSectorSize(head []byte) int {
	for _, ss := range []int{512, 4096} {
		if len(head) >= 2*ss && bytes.HasPrefix(head[ss:], gptSignature) {
			return ss
		}
	}
	return 0
}

// IsMBR reports whether head, a disk's first 512 bytes or more, holds an
// MBR partition table: the boot signature and at least one used entry
// whose status byte is valid. (A FAT boot sector has the signature too:
// tell it apart first.)
func IsMBR(head []byte) bool {
	if len(head) < 512 || head[510] != 0x55 || head[511] != 0xaa {
		return false
	}
	used := 0
	for i := range 4 {
		e := head[446+16*i:][:16]
		if e[0] != 0 && e[0] != 0x80 {
			return false
		}
		if e[4] != 0 && binary.LittleEndian.Uint32(e[12:]) != 0 {
			used++
		}
	}
	return used > 0
}

// Read reads the partition table of r, a disk of size bytes: GPT when the
// disk has a GPT header, else MBR. Partitions that end beyond the disk are
// an error.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	head := make([]byte, 8192)
	if n, err := r.ReadAt(head, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == min(size, int64(len(head)))) {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	head = head[:min(size, int64(len(head)))]
	var t *Table
	var err error
	if ss := gptSectorSize(head); ss != 0 {
		t, err = readGPT(r, size, head, ss)
	} else if IsMBR(head) {
		t, err = readMBR(r, size)
	} else {
		return nil, fmt.Errorf("%w: neither GPT nor MBR", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range t.Partitions {
		if p.Start < 0 || p.Size < 0 || p.Start > size || p.Size > size-p.Start {
			return nil, fmt.Errorf("%w: partition %d (%d bytes at %d) beyond the disk's %d bytes", ErrFormat, p.Number, p.Size, p.Start, size)
		}
	}
	return t, nil
}

// gptEntrySize is the only GPT entry size go-diskfs reads, and all tools
// write; maxGPTEntries bounds the entry array (128 is the norm).
const (
	gptEntrySize  = 128
	maxGPTEntries = 4096
)

// readGPT reads a GPT with ss-byte logical sectors. It checks the header's
// entry size and count before go-diskfs reads the entry array: go-diskfs
// would loop forever on an entry size of 0 and allocate whatever the
// count asks.
func readGPT(r io.ReaderAt, size int64, head []byte, ss int) (*Table, error) {
	h := head[ss:]
	count, entrySize := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	if entrySize != gptEntrySize || count > maxGPTEntries {
		return nil, fmt.Errorf("%w: GPT with %d entries of %d bytes", ErrFormat, count, entrySize)
	}
	gt, err := gpt.Read(&diskFile{io.NewSectionReader(r, 0, size)}, ss, ss)
	if err != nil {
		return nil, fmt.Errorf("%w: GPT: %w", ErrFormat, err)
	}
	t := &Table{Scheme: "gpt"}
	for _, p := range gt.Partitions {
		if p.End < p.Start || p.End >= uint64(size)/uint64(ss) {
			return nil, fmt.Errorf("%w: GPT partition %d spans sectors %d-%d of %d", ErrFormat, p.Index, p.Start, p.End, size/int64(ss))
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: p.Index,
			Start:  int64(p.Start) * int64(ss),
			Size:   int64(p.End-p.Start+1) * int64(ss),
			Name:   p.Name,
			Type:   strings.ToLower(string(p.Type)),
		})
	}
	return t, nil
}

// readMBR reads an MBR's primary entries and the logical partitions of
// its first extended partition.
func readMBR(r io.ReaderAt, size int64) (*Table, error) {
	mt, err := mbr.Read(&diskFile{io.NewSectionReader(r, 0, size)}, 512, 512)
	if err != nil {
		return nil, fmt.Errorf("%w: MBR: %w", ErrFormat, err)
	}
	t := &Table{Scheme: "mbr"}
	var extended *Partition
	for _, p := range mt.Partitions {
		if p.Type == mbr.Empty || p.Size == 0 {
			continue
		}
		part := Partition{
			Number: p.Index,
			Start:  int64(p.Start) * mbrSector,
			Size:   int64(p.Size) * mbrSector,
			Type:   fmt.Sprintf("%02x", byte(p.Type)),
		}
		if isExtended(byte(p.Type)) {
			// Linux reads the first extended partition only.
			if extended == nil {
				extended = &part
			}
			continue
		}
		t.Partitions = append(t.Partitions, part)
	}
	if extended != nil {
		logicals, err := readLogicals(r, size, *extended)
		if err != nil {
			return nil, err
		}
		t.Partitions = append(t.Partitions, logicals...)
	}
	return t, nil
}

const (
	// mbrSector is the unit of MBR and EBR entries.
	mbrSector = 512
	// firstLogical is the number of the first logical partition.
	firstLogical = 5
	// maxLogicals bounds the logical partitions (Linux numbers
	// partitions up to 255), maxEBRs an EBR chain (one looping back).
	maxLogicals = 255 - firstLogical + 1
	maxEBRs     = 2 * maxLogicals
)

// isExtended reports whether an MBR partition type is an extended
// partition's (DOS, Windows LBA, Linux), as Linux's is_extended_partition.
func isExtended(typ byte) bool {
	return typ == 0x05 || typ == 0x0f || typ == 0x85
}

// readLogicals reads the chain of EBRs of extended partition ext, on a
// disk of size bytes: each EBR, a sector with an MBR's layout, holds
// logical partitions placed relative to itself and the link to the next
// EBR placed relative to ext. The chain ends at an EBR without a link or
// without the boot signature (as Linux ends it); a link out of ext, a
// logical partition out of ext or a chain longer than maxEBRs (one that
// loops) is an error.
func readLogicals(r io.ReaderAt, size int64, ext Partition) ([]Partition, error) {
	var logicals []Partition
	ebr := ext.Start
	sector := make([]byte, mbrSector)
	for read := 0; ; read++ {
		if read == maxEBRs {
			return nil, fmt.Errorf("%w: a chain of more than %d extended boot records", ErrFormat, maxEBRs)
		}
		if ebr+mbrSector > size {
			return nil, fmt.Errorf("%w: extended boot record at sector %d beyond the disk", ErrFormat, ebr/mbrSector)
		}
		if _, err := r.ReadAt(sector, ebr); err != nil {
			return nil, fmt.Errorf("read extended boot record at sector %d: %w", ebr/mbrSector, err)
		}
		if sector[510] != 0x55 || sector[511] != 0xaa {
			return logicals, nil
		}
		next := int64(-1)
		for i := range 4 {
			e := sector[446+16*i:][:16]
			typ := e[4]
			start := int64(binary.LittleEndian.Uint32(e[8:])) * mbrSector
			n := int64(binary.LittleEndian.Uint32(e[12:])) * mbrSector
			switch {
			case typ == 0 || n == 0:
			case isExtended(typ):
				if next < 0 {
					next = ext.Start + start
				}
			default:
				if len(logicals) == maxLogicals {
					return nil, fmt.Errorf("%w: more than %d logical partitions", ErrFormat, maxLogicals)
				}
				p := Partition{Number: firstLogical + len(logicals), Start: ebr + start, Size: n, Type: fmt.Sprintf("%02x", typ)}
				if p.Start < ext.Start || p.Size > ext.Start+ext.Size-p.Start {
					return nil, fmt.Errorf("%w: logical partition %d (%d bytes at %d) beyond its extended partition", ErrFormat, p.Number, p.Size, p.Start)
				}
				logicals = append(logicals, p)
			}
		}
		if next < 0 {
			return logicals, nil
		}
		if next < ext.Start || next >= ext.Start+ext.Size {
			return nil, fmt.Errorf("%w: extended boot record at sector %d beyond its extended partition", ErrFormat, next/mbrSector)
		}
		ebr = next
	}
}

// diskFile is the file go-diskfs's table readers take, over a section
// reader: they read and seek, never write.
type diskFile struct {
	*io.SectionReader
}

func (f *diskFile) Stat() (iofs.FileInfo, error) { return diskInfo{size: f.Size()}, nil }
func (f *diskFile) Close() error                 { return nil }

// diskInfo is the little a disk file's Stat reports: its size.
type diskInfo struct{ size int64 }

func (i diskInfo) Name() string        { return "disk" }
func (i diskInfo) Size() int64         { return i.size }
func (i diskInfo) Mode() iofs.FileMode { return 0o400 }
func (i diskInfo) ModTime() time.Time  { return time.Time{} }
func (i diskInfo) IsDir() bool         { return false }
func (i diskInfo) Sys() any            { return nil }

// Package diskimage recognises what a disk image holds, from its first
// bytes, and defines the file system node its file system readers share.
//
// Its subpackages read images without root, loop devices or device-mapper:
// partition (GPT and MBR tables), luks (LUKS1 and LUKS2 volumes, decrypted
// in Go), ext4 and fat (read-only file system trees).
package diskimage

import (
	"bytes"
	"encoding/binary"

	"github.com/azfs/azfs/diskimage/luks"
	"github.com/azfs/azfs/diskimage/partition"
)

// Names of what an azfs mount shows beside and inside a disk image.
const (
	// ContentsSuffix names the directory beside a disk image that shows
	// what it holds: "disk.img" gets "disk.img.contents".
	ContentsSuffix = ".contents"
	// DecryptedName is an unlocked LUKS volume's decrypted content, in
	// the volume's contents directory.
	DecryptedName = "decrypted"
	// PartLabelDir holds a symlink per named GPT partition in a
	// partitioned disk's contents directory, as /dev/disk/by-partlabel.
	PartLabelDir = "by-partlabel"
)

// HeadSize is how many bytes from the start of an image Detect needs.
const HeadSize = 8192

// Kind is what an image holds.
type Kind int

const (
	// Unknown is anything else: a file system Detect does not know, or
	// not an image.
	Unknown Kind = iota
	// PartitionTable is a GPT or MBR partitioned disk.
	PartitionTable
	// LUKS is a LUKS1 or LUKS2 encrypted volume.
	LUKS
	// Ext4 is an ext2, ext3 or ext4 file system.
	Ext4
	// FAT is a FAT12, FAT16 or FAT32 file system.
	FAT
)

func (k Kind) String() string {
	switch k {
	case PartitionTable:
		return "partition table"
	case LUKS:
		return "LUKS volume"
	case Ext4:
		return "ext4 file system"
	case FAT:
		return "FAT file system"
	}
	return "unknown"
}

// Detect tells what an image holds from head, its first HeadSize bytes
// (or all of it, if shorter).
func Detect(head []byte) Kind {
	switch {
	case luks.Is(head):
		return LUKS
	case partition.IsGPT(head):
		return PartitionTable
	case IsExt4(head):
		return Ext4
	case IsFAT(head):
		return FAT
	case partition.IsMBR(head):
		return PartitionTable
	}
	return Unknown
}

// ext4Magic is the superblock's s_magic, at 1024+0x38.
const ext4Magic = 0xef53

// IsExt4 reports whether head holds an ext2/3/4 superblock.
func IsExt4(head []byte) bool {
	return len(head) >= 2048 && binary.LittleEndian.Uint16(head[1024+0x38:]) == ext4Magic
}

// IsFAT reports whether head starts with a FAT boot sector: a jump
// instruction, a power-of-two sector size from 512 to 4096 and cluster
// size, reserved sectors, and one or two FATs.
func IsFAT(head []byte) bool {
	if len(head) < 512 || head[510] != 0x55 || head[511] != 0xaa {
		return false
	}
	if !(head[0] == 0xeb && head[2] == 0x90) && head[0] != 0xe9 {
		return false
	}
	bps := binary.LittleEndian.Uint16(head[11:])
	spc := head[13]
	reserved := binary.LittleEndian.Uint16(head[14:])
	fats := head[16]
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || fats > 2 {
		return false
	}
	// NTFS and exFAT boot sectors pass the above with zeroed fields in
	// places; their OEM names tell them apart.
	return !bytes.HasPrefix(head[3:], []byte("NTFS")) && !bytes.HasPrefix(head[3:], []byte("EXFAT"))
}

// Node is a file, directory, symlink or special file in a file system
// image, with its attributes as stat(2) reports them.
type Node struct {
	// Name is the node's name in its directory ("" for the root).
	Name string
	// ID identifies the node to the file system that returned it (ext4:
	// the inode number; FAT: where its directory entry is).
	ID uint64
	// Mode holds the S_IFMT type bits and the permission bits.
	Mode     uint32
	UID, GID uint32
	Size     uint64
	Links    uint32
	// Rdev is a device node's device number, as stat(2) encodes it.
	Rdev                uint64
	Atime, Mtime, Ctime Time
	// First is where the node's data starts, for file systems whose ID
	// does not say (FAT: the first cluster).
	First uint64
}

// Time is a time stamp in seconds and nanoseconds since the epoch.
type Time struct {
	Sec  int64
	Nsec uint32
}

// Package ext4 reads ext2, ext3 and ext4 file systems read-only from an
// io.ReaderAt: directories (linear and htree, which a linear scan reads
// too), regular files (extent trees and ext2/3 block maps), symlinks and
// special files, with modes, owners and nanosecond times.
//
// github.com/diskfs/go-diskfs's ext4 reader (v1.9.4) was tried first on
// mkfs.ext4's default output and not used: its FileInfo.Mode carries no
// permission bits (a 0644 file reads ----------), its times drop the
// nanoseconds kept in the inode's extra fields, and its API takes paths,
// so every lookup walks and re-reads each directory from the root.
//
// Not supported (ErrUnsupported, whose errors name the feature as
// mkfs.ext4 -O names it): inline_data (a mkfs.ext4 option, off by
// default; refused for the inodes that hold their data inline), and, for
// the whole file system, meta_bg, encrypt (fscrypt), compression, dirdata
// and journal_dev (an external journal, not a file system). The journal is not replayed: an
// image of a file system that was not unmounted cleanly reads as it was on
// disk, as the kernel's ro,noload mount reads it. The package holds no
// block of the file system in memory beyond the one a call is reading
// (and where each group's inode table is): caching is the reader's
// business.
package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/internal/imageio"
)

var (
	// ErrFormat is wrapped by the errors about a malformed file system.
	ErrFormat = errors.New("malformed ext4 file system")
	// ErrUnsupported is wrapped by the errors about a feature this
	// package does not read.
	ErrUnsupported = errors.New("unsupported ext4 feature")
	// ErrNotFound is returned by Lookup for a name the directory does
	// not hold. It wraps io/fs.ErrNotExist.
	ErrNotFound = fmt.Errorf("ext4 directory: %w", iofs.ErrNotExist)
)

// Superblock feature flags this package looks at.
const (
	incompatMetaBG     = 0x10
	incompatExtents    = 0x40
	incompat64Bit      = 0x80
	incompatInlineData = 0x8000
	incompatFiletype   = 0x2
)

// unreadIncompat names the incompatible features this package refuses a
// file system for, as mkfs.ext4 -O names them: it cannot find or read
// the file system's metadata or files with them. (inline_data is refused
// per inode, by the reads that meet an inode holding its data.)
var unreadIncompat = []struct {
	flag uint32
	name string
}{
	{0x1, "compression"},
	{0x8, "journal_dev"},
	{incompatMetaBG, "meta_bg"},
	{0x1000, "dirdata"},
	{0x10000, "encrypt"},
}

// unreadFeatures returns the names of the features in incompat that this
// package does not read, comma-separated, or "".
func unreadFeatures(incompat uint32) string {
	var names []string
	for _, f := range unreadIncompat {
		if incompat&f.flag != 0 {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, ",")
}

// Inode flags this package looks at.
const (
	flagExtents    = 0x80000
	flagInlineData = 0x10000000
)

// rootIno is the root directory's inode number.
const rootIno = 2

// FS is an ext4 file system. It is safe for concurrent use.
type FS struct {
	r              io.ReaderAt
	size           int64
	blockSize      int64
	inodesPerGroup uint32
	inodeSize      int64
	descSize       int64
	groups         uint64
	gdtBlock       int64 // the block the group descriptor table starts at
	incompat       uint32
	// tables caches each group's inode table block (0: not read yet),
	// so that an inode costs one read, not two; nil for file systems of
	// more than maxCachedGroups groups.
	tables []atomic.Uint64
}

// maxCachedGroups bounds FS.tables (8 bytes a group: a 16 TiB file system
// of 4 KiB blocks has 131,072 groups).
const maxCachedGroups = 1 << 20

// Open reads the superblock of the file system in r, size bytes long.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	sb := make([]byte, 1024)
	if err := readAt(r, sb, 1024); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xef53 {
		return nil, fmt.Errorf("%w: no superblock magic", ErrFormat)
	}
	logBlock := binary.LittleEndian.Uint32(sb[0x18:])
	if logBlock > 6 {
		return nil, fmt.Errorf("%w: block size 2^%d KiB", ErrFormat, logBlock)
	}
	fs := &FS{
		r:              r,
		size:           size,
		blockSize:      1024 << logBlock,
		inodesPerGroup: binary.LittleEndian.Uint32(sb[0x28:]),
		inodeSize:      128,
		descSize:       32,
		incompat:       binary.LittleEndian.Uint32(sb[0x60:]),
	}
	if binary.LittleEndian.Uint32(sb[0x4c:]) >= 1 {
		fs.inodeSize = int64(binary.LittleEndian.Uint16(sb[0x58:]))
	}
	if fs.incompat&incompat64Bit != 0 {
		fs.descSize = int64(binary.LittleEndian.Uint16(sb[0xfe:]))
	}
	blocks := uint64(binary.LittleEndian.Uint32(sb[0x04:]))
	if fs.incompat&incompat64Bit != 0 {
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	perGroup := uint64(binary.LittleEndian.Uint32(sb[0x20:]))
	firstData := uint64(binary.LittleEndian.Uint32(sb[0x14:]))
	switch {
	case fs.inodeSize < 128 || fs.inodeSize > fs.blockSize || fs.inodeSize&(fs.inodeSize-1) != 0:
		return nil, fmt.Errorf("%w: inode size %d", ErrFormat, fs.inodeSize)
	case fs.descSize < 32 || fs.descSize > 1024 || fs.descSize&(fs.descSize-1) != 0:
		return nil, fmt.Errorf("%w: group descriptor size %d", ErrFormat, fs.descSize)
	case fs.inodesPerGroup == 0 || perGroup == 0 || blocks <= firstData:
		return nil, fmt.Errorf("%w: %d blocks, %d per group, %d inodes per group", ErrFormat, blocks, perGroup, fs.inodesPerGroup)
	}
	if f := unreadFeatures(fs.incompat); f != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, f)
	}
	fs.groups = (blocks - firstData + perGroup - 1) / perGroup
	fs.gdtBlock = int64(firstData) + 1
	if fs.groups <= maxCachedGroups {
		fs.tables = make([]atomic.Uint64, fs.groups)
	}
	return fs, nil
}

// inode is a decoded inode.
type inode struct {
	diskimage.Node
	flags uint32
	block [60]byte // i_block: extent tree root, block map or symlink target
}

// readInode reads inode ino.
func (fs *FS) readInode(ino uint64) (*inode, error) {
	if ino == 0 || ino > fs.groups*uint64(fs.inodesPerGroup) {
		return nil, fmt.Errorf("%w: inode %d out of range", ErrFormat, ino)
	}
	group := (ino - 1) / uint64(fs.inodesPerGroup)
	index := (ino - 1) % uint64(fs.inodesPerGroup)
	table, err := fs.inodeTable(group)
	if err != nil {
		return nil, err
	}
	b := make([]byte, fs.inodeSize)
	off := int64(table)*fs.blockSize + int64(index)*fs.inodeSize
	if table >= uint64(fs.size/fs.blockSize) || off < 0 {
		return nil, fmt.Errorf("%w: inode table of group %d at block %d", ErrFormat, group, table)
	}
	if err := readAt(fs.r, b, off); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	return decodeInode(ino, b), nil
}

// inodeTable returns the first block of group's inode table, from its
// group descriptor.
func (fs *FS) inodeTable(group uint64) (uint64, error) {
	if fs.tables != nil {
		if t := fs.tables[group].Load(); t != 0 {
			return t, nil
		}
	}
	desc := make([]byte, fs.descSize)
	if err := readAt(fs.r, desc, fs.gdtBlock*fs.blockSize+int64(group)*fs.descSize); err != nil {
		return 0, fmt.Errorf("read group descriptor %d: %w", group, err)
	}
	table := uint64(binary.LittleEndian.Uint32(desc[0x08:]))
	if fs.descSize >= 64 {
		table |= uint64(binary.LittleEndian.Uint32(desc[0x28:])) << 32
	}
	if fs.tables != nil {
		fs.tables[group].Store(table)
	}
	return table, nil
}

// decodeInode decodes inode ino from its bytes b (at least 128).
func decodeInode(ino uint64, b []byte) *inode {
	le := binary.LittleEndian
	in := &inode{flags: le.Uint32(b[0x20:])}
	copy(in.block[:], b[0x28:0x64])
	n := &in.Node
	n.ID = ino
	n.Mode = uint32(le.Uint16(b[0x00:]))
	n.UID = uint32(le.Uint16(b[0x02:])) | uint32(le.Uint16(b[0x78:]))<<16
	n.GID = uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7a:]))<<16
	n.Size = uint64(le.Uint32(b[0x04:])) | uint64(le.Uint32(b[0x6c:]))<<32
	n.Links = uint32(le.Uint16(b[0x1a:]))
	extra := 0
	if len(b) > 0x82 {
		extra = int(le.Uint16(b[0x80:]))
	}
	// A time's extra field (present when i_extra_isize covers it) holds
	// two more bits of seconds and the nanoseconds.
	stamp := func(at, extraAt int) diskimage.Time {
		t := diskimage.Time{Sec: int64(int32(le.Uint32(b[at:])))}
		if extraAt+4 <= 0x80+extra && extraAt+4 <= len(b) {
			x := le.Uint32(b[extraAt:])
			t.Sec += int64(x&3) << 32
			t.Nsec = min(x>>2, 999999999)
		}
		return t
	}
	n.Atime = stamp(0x08, 0x8c)
	n.Ctime = stamp(0x0c, 0x84)
	n.Mtime = stamp(0x10, 0x88)
	if t := n.Mode & syscall.S_IFMT; t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		if old := le.Uint32(in.block[0:]); old != 0 {
			n.Rdev = mkdev(uint64(old>>8&0xff), uint64(old&0xff))
		} else {
			dev := le.Uint32(in.block[4:])
			n.Rdev = mkdev(uint64(dev>>8&0xfff), uint64(dev&0xff|dev>>12&0xfff00))
		}
	}
	return in
}

// mkdev encodes a device number as Linux's stat(2) does (glibc's
// makedev).
func mkdev(major, minor uint64) uint64 {
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

// Root returns the root directory.
func (fs *FS) Root() (diskimage.Node, error) {
	in, err := fs.readInode(rootIno)
	if err != nil {
		return diskimage.Node{}, err
	}
	if in.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return diskimage.Node{}, fmt.Errorf("%w: root inode is not a directory", ErrFormat)
	}
	return in.Node, nil
}

// ReadAt reads len(p) bytes of file f at off. Holes and unwritten extents
// read as zeros.
func (fs *FS) ReadAt(f *diskimage.Node, p []byte, off int64) (int, error) {
	in, err := fs.readInode(f.ID)
	if err != nil {
		return 0, err
	}
	return fs.readData(in, p, off)
}

// readData reads len(p) bytes of in's data at off.
func (fs *FS) readData(in *inode, p []byte, off int64) (int, error) {
	if in.flags&flagInlineData != 0 {
		return 0, fmt.Errorf("%w: inline_data (inode %d keeps its data in the inode)", ErrUnsupported, in.ID)
	}
	if off < 0 {
		return 0, fmt.Errorf("ext4: read at %d: negative offset", off)
	}
	if uint64(off) >= in.Size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := in.Size - uint64(off); uint64(len(p)) > rest {
		p = p[:rest]
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lblk := uint64(pos / fs.blockSize)
		run, err := fs.mapBlocks(in, lblk)
		if err != nil {
			return done, err
		}
		within := pos % fs.blockSize
		n := int(min(int64(min(run.count, maxRun))*fs.blockSize-within, int64(len(p)-done)))
		dst := p[done : done+n]
		if run.phys == 0 {
			clear(dst)
		} else {
			at := int64(run.phys)*fs.blockSize + within
			if run.phys >= uint64(fs.size/fs.blockSize) {
				return done, fmt.Errorf("%w: inode %d: block %d beyond the file system", ErrFormat, in.ID, run.phys)
			}
			if err := readAt(fs.r, dst, at); err != nil {
				return done, fmt.Errorf("read inode %d's data: %w", in.ID, err)
			}
		}
		done += n
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// maxRun bounds the blocks one step of readData covers, so that a hole's
// length never overflows a byte count.
const maxRun = 1 << 20

// run is a range of a file's logical blocks: count blocks from phys on
// disk, or a hole (phys 0).
type run struct {
	phys  uint64
	count uint64
}

// mapBlocks returns the run of in's blocks that starts at logical block
// lblk.
func (fs *FS) mapBlocks(in *inode, lblk uint64) (run, error) {
	if in.flags&flagExtents != 0 {
		return fs.mapExtents(in, lblk)
	}
	return fs.mapIndirect(in, lblk)
}

// maxDepth bounds an extent tree's depth (ext4 allows 5).
const maxDepth = 5

// mapExtents walks in's extent tree to logical block lblk.
func (fs *FS) mapExtents(in *inode, lblk uint64) (run, error) {
	node := in.block[:]
	for level := 0; ; level++ {
		le := binary.LittleEndian
		if len(node) < 12 || le.Uint16(node) != 0xf30a {
			return run{}, fmt.Errorf("%w: inode %d: bad extent header", ErrFormat, in.ID)
		}
		entries := int(le.Uint16(node[2:]))
		depth := le.Uint16(node[6:])
		if 12+entries*12 > len(node) || level > maxDepth {
			return run{}, fmt.Errorf("%w: inode %d: extent node of %d entries at depth %d", ErrFormat, in.ID, entries, depth)
		}
		if depth == 0 {
			// Leaf: find the extent holding lblk, or the hole up to
			// the next one.
			next := uint64(1<<32) - 1
			for i := range entries {
				e := node[12+12*i:]
				start := uint64(le.Uint32(e))
				length := uint64(le.Uint16(e[4:]))
				unwritten := length > 32768
				if unwritten {
					length -= 32768
				}
				phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
				if lblk >= start && lblk < start+length {
					if unwritten {
						return run{count: start + length - lblk}, nil
					}
					return run{phys: phys + lblk - start, count: start + length - lblk}, nil
				}
				if start > lblk {
					next = min(next, start)
				}
			}
			if next <= lblk {
				return run{count: maxRun}, nil
			}
			return run{count: next - lblk}, nil
		}
		// Index: descend into the last entry starting at or before lblk.
		child := -1
		for i := range entries {
			if uint64(le.Uint32(node[12+12*i:])) <= lblk {
				child = i
			}
		}
		if child < 0 {
			if entries == 0 {
				return run{count: 1}, nil
			}
			// Before the first extent: a hole up to it.
			first := uint64(le.Uint32(node[12:]))
			return run{count: first - lblk}, nil
		}
		e := node[12+12*child:]
		leaf := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		if leaf >= uint64(fs.size/fs.blockSize) {
			return run{}, fmt.Errorf("%w: inode %d: extent node at block %d beyond the file system", ErrFormat, in.ID, leaf)
		}
		node = make([]byte, fs.blockSize)
		if err := readAt(fs.r, node, int64(leaf)*fs.blockSize); err != nil {
			return run{}, fmt.Errorf("read inode %d's extent tree: %w", in.ID, err)
		}
	}
}

// mapIndirect maps logical block lblk through an ext2/3 block map: 12
// direct blocks, then single, double and triple indirect blocks.
func (fs *FS) mapIndirect(in *inode, lblk uint64) (run, error) {
	le := binary.LittleEndian
	perBlock := uint64(fs.blockSize / 4)
	if lblk < 12 {
		return run{phys: uint64(le.Uint32(in.block[4*lblk:])), count: 1}, nil
	}
	lblk -= 12
	span := uint64(1)
	for level := 1; level <= 3; level++ {
		span *= perBlock
		if lblk < span {
			blk := uint64(le.Uint32(in.block[4*(11+level):]))
			for l := level; l > 0; l-- {
				if blk == 0 {
					return run{count: 1}, nil
				}
				span /= perBlock
				b := make([]byte, 4)
				if blk >= uint64(fs.size/fs.blockSize) {
					return run{}, fmt.Errorf("%w: inode %d: block map at block %d beyond the file system", ErrFormat, in.ID, blk)
				}
				if err := readAt(fs.r, b, int64(blk)*fs.blockSize+int64(lblk/span)*4); err != nil {
					return run{}, fmt.Errorf("read inode %d's block map: %w", in.ID, err)
				}
				lblk %= span
				blk = uint64(le.Uint32(b))
			}
			return run{phys: blk, count: 1}, nil
		}
		lblk -= span
	}
	return run{}, fmt.Errorf("%w: inode %d: block beyond a block map's reach", ErrFormat, in.ID)
}

// Readlink returns symlink l's target.
func (fs *FS) Readlink(l *diskimage.Node) (string, error) {
	in, err := fs.readInode(l.ID)
	if err != nil {
		return "", err
	}
	if in.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		return "", fmt.Errorf("%w: inode %d is not a symlink", ErrFormat, in.ID)
	}
	if in.Size > 4096 {
		return "", fmt.Errorf("%w: symlink inode %d of %d bytes", ErrFormat, in.ID, in.Size)
	}
	// A fast symlink keeps its target in i_block.
	if in.flags&(flagExtents|flagInlineData) == 0 && in.Size < 60 {
		return string(in.block[:in.Size]), nil
	}
	b := make([]byte, in.Size)
	if _, err := fs.readData(in, b, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b), nil
}

// ReadDir calls fn for each entry of directory dir, except "." and "..",
// from cursor on (0: the first entry), until fn returns false. Each call
// gets the cursor of the entry after it.
func (fs *FS) ReadDir(dir *diskimage.Node, cursor int64, fn func(n diskimage.Node, next int64) bool) error {
	in, err := fs.readInode(dir.ID)
	if err != nil {
		return err
	}
	if in.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return fmt.Errorf("%w: inode %d is not a directory", ErrFormat, in.ID)
	}
	return fs.scanDir(in, cursor, func(name string, ino uint64, next int64) (bool, error) {
		child, err := fs.readInode(ino)
		if err != nil {
			return false, err
		}
		child.Name = name
		return fn(child.Node, next), nil
	})
}

// Lookup returns the entry called name in directory dir, or ErrNotFound.
func (fs *FS) Lookup(dir *diskimage.Node, name string) (diskimage.Node, error) {
	in, err := fs.readInode(dir.ID)
	if err != nil {
		return diskimage.Node{}, err
	}
	if in.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return diskimage.Node{}, fmt.Errorf("%w: inode %d is not a directory", ErrFormat, in.ID)
	}
	var found uint64
	err = fs.scanDir(in, 0, func(n string, ino uint64, _ int64) (bool, error) {
		if n == name {
			found = ino
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return diskimage.Node{}, err
	}
	if found == 0 {
		return diskimage.Node{}, ErrNotFound
	}
	child, err := fs.readInode(found)
	if err != nil {
		return diskimage.Node{}, err
	}
	child.Name = name
	return child.Node, nil
}

// maxDirBytes bounds the directory size scanDir accepts (ext4's largedir
// limit is 4 GiB; 2 GiB of entries is some 20 million names).
const maxDirBytes = 2 << 30

// scanDir calls fn with the name and inode number of each used entry of
// directory in, but "." and "..", from byte position cursor on, reading
// one block at a time, until fn returns false or an error.
func (fs *FS) scanDir(in *inode, cursor int64, fn func(name string, ino uint64, next int64) (bool, error)) error {
	if in.Size > maxDirBytes {
		return fmt.Errorf("%w: directory inode %d of %d bytes", ErrFormat, in.ID, in.Size)
	}
	size := int64(in.Size)
	if cursor < 0 || cursor > size {
		return fmt.Errorf("%w: directory cursor %d", ErrFormat, cursor)
	}
	block := make([]byte, fs.blockSize)
	for blk := cursor / fs.blockSize; blk*fs.blockSize < size; blk++ {
		if _, err := fs.readData(in, block, blk*fs.blockSize); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		off := int64(0)
		if blk == cursor/fs.blockSize {
			off = cursor % fs.blockSize
		}
		for off+8 <= fs.blockSize {
			ino := uint64(binary.LittleEndian.Uint32(block[off:]))
			recLen := int64(binary.LittleEndian.Uint16(block[off+4:]))
			nameLen := int64(block[off+6])
			if fs.incompat&incompatFiletype == 0 {
				nameLen |= int64(block[off+7]) << 8
			}
			if recLen < 8 || recLen%4 != 0 || off+recLen > fs.blockSize || 8+nameLen > recLen {
				return fmt.Errorf("%w: directory inode %d: bad entry at %d", ErrFormat, in.ID, blk*fs.blockSize+off)
			}
			name := string(block[off+8 : off+8+nameLen])
			off += recLen
			// Inode 0: an unused entry, an htree index block or the
			// metadata_csum tail.
			if ino == 0 || name == "." || name == ".." {
				continue
			}
			more, err := fn(name, ino, blk*fs.blockSize+off)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// readAt fills b from r at off; running into the end means a malformed
// image.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	return imageio.ReadAt(r, b, off, ErrFormat)
}

// Package fat reads FAT12, FAT16 and FAT32 file systems read-only from an
// io.ReaderAt, with VFAT long names.
//
// github.com/diskfs/go-diskfs's FAT reader (v1.9.4) reads FAT32 only: it
// refuses what mkfs.vfat makes by default on volumes under 512 MiB
// (FAT16; "invalid FAT32 version found"), hence this small reader.
//
// FAT keeps no owners, permissions or time zone: files read as 0644 (0444
// when read-only), directories as 0755, owned by root, and the local time
// stamps as UTC (what mtools writes with TZ=UTC).
package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf16"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/internal/imageio"
)

var (
	// ErrFormat is wrapped by the errors about a malformed file system.
	ErrFormat = errors.New("malformed FAT file system")
	// ErrNotFound is returned by Lookup for a name the directory does
	// not hold. It wraps io/fs.ErrNotExist.
	ErrNotFound = fmt.Errorf("FAT directory: %w", iofs.ErrNotExist)
	// errChainEnd reports a cluster chain shorter than a read needs.
	errChainEnd = fmt.Errorf("%w: cluster chain ends early", ErrFormat)
)

// FS is a FAT file system. It is safe for concurrent use.
type FS struct {
	r           io.ReaderAt
	bits        int   // 12, 16 or 32
	clusterSize int64 // bytes
	fatOffset   int64 // the first FAT
	rootOffset  int64 // FAT12/16: the fixed root directory
	rootSize    int64 // its length
	rootCluster uint64
	dataOffset  int64 // cluster 2
	clusters    uint64

	mu sync.Mutex
	// pos remembers where in their chains the last reads of a few files
	// stopped, so that a sequential reader does not walk each chain
	// from its start at every read.
	pos map[uint64]chainPos
}

// chainPos is a place in a cluster chain: its index-th cluster is cluster.
type chainPos struct {
	index, cluster uint64
}

// maxChainPositions bounds FS.pos.
const maxChainPositions = 64

// Open reads the boot sector of the FAT file system in r, size bytes long.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	b := make([]byte, 512)
	if err := readAt(r, b, 0); err != nil {
		return nil, fmt.Errorf("read FAT boot sector: %w", err)
	}
	if !diskimage.IsFAT(b) {
		return nil, fmt.Errorf("%w: no FAT boot sector", ErrFormat)
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(b[11:]))
	spc := int64(b[13])
	reserved := int64(le.Uint16(b[14:]))
	fats := int64(b[16])
	rootEntries := int64(le.Uint16(b[17:]))
	total := int64(le.Uint16(b[19:]))
	if total == 0 {
		total = int64(le.Uint32(b[32:]))
	}
	fatSize := int64(le.Uint16(b[22:]))
	if fatSize == 0 {
		fatSize = int64(le.Uint32(b[36:]))
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	firstData := reserved + fats*fatSize + rootSectors
	if fatSize == 0 || total <= firstData || total*bps > size {
		return nil, fmt.Errorf("%w: %d sectors, %d in FATs, data from %d, in %d bytes", ErrFormat, total, fatSize, firstData, size)
	}
	fs := &FS{
		r:           r,
		clusterSize: bps * spc,
		fatOffset:   reserved * bps,
		rootOffset:  (reserved + fats*fatSize) * bps,
		rootSize:    rootSectors * bps,
		dataOffset:  firstData * bps,
		clusters:    uint64((total - firstData) / spc),
		pos:         make(map[uint64]chainPos),
	}
	switch {
	case fs.clusters < 4085:
		fs.bits = 12
	case fs.clusters < 65525:
		fs.bits = 16
	default:
		fs.bits = 32
		fs.rootCluster = uint64(le.Uint32(b[44:]))
		if !fs.valid(fs.rootCluster) {
			return nil, fmt.Errorf("%w: root directory at cluster %d", ErrFormat, fs.rootCluster)
		}
	}
	if fs.fatOffset+fatSize*bps > size || uint64(fatSize*bps*8/int64(fs.bits)) < fs.clusters+2 {
		return nil, fmt.Errorf("%w: FAT of %d sectors for %d clusters", ErrFormat, fatSize, fs.clusters)
	}
	return fs, nil
}

// valid reports whether c is a data cluster number.
func (fs *FS) valid(c uint64) bool {
	return c >= 2 && c < fs.clusters+2
}

// next returns the cluster after c in its chain, or 0 at the chain's end.
func (fs *FS) next(c uint64) (uint64, error) {
	var b [4]byte
	off, width := int64(c*4), 4
	switch fs.bits {
	case 12:
		off, width = int64(c+c/2), 2
	case 16:
		off, width = int64(c*2), 2
	}
	if err := readAt(fs.r, b[:width], fs.fatOffset+off); err != nil {
		return 0, fmt.Errorf("read FAT: %w", err)
	}
	var n, eoc uint64
	switch fs.bits {
	case 12:
		v := uint64(binary.LittleEndian.Uint16(b[:]))
		if c%2 == 1 {
			v >>= 4
		}
		n, eoc = v&0xfff, 0xff8
	case 16:
		n, eoc = uint64(binary.LittleEndian.Uint16(b[:])), 0xfff8
	default:
		n, eoc = uint64(binary.LittleEndian.Uint32(b[:]))&0x0fffffff, 0x0ffffff8
	}
	if n >= eoc {
		return 0, nil
	}
	if !fs.valid(n) {
		return 0, fmt.Errorf("%w: cluster %d links to %d", ErrFormat, c, n)
	}
	return n, nil
}

// seek returns the index-th cluster of the chain starting at first,
// starting from the position remembered for the chain when it is not
// past index.
func (fs *FS) seek(first, index uint64) (uint64, error) {
	cur := chainPos{0, first}
	fs.mu.Lock()
	if p, ok := fs.pos[first]; ok && p.index <= index {
		cur = p
	}
	fs.mu.Unlock()
	for cur.index < index {
		if cur.index > fs.clusters {
			return 0, fmt.Errorf("%w: cluster chain from %d loops", ErrFormat, first)
		}
		n, err := fs.next(cur.cluster)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("%w: the chain from cluster %d has %d clusters", errChainEnd, first, cur.index+1)
		}
		cur = chainPos{cur.index + 1, n}
	}
	fs.mu.Lock()
	if len(fs.pos) >= maxChainPositions {
		clear(fs.pos)
	}
	fs.pos[first] = cur
	fs.mu.Unlock()
	return cur.cluster, nil
}

// readChain reads len(p) bytes at off of the data in the cluster chain
// starting at first, coalescing contiguous clusters into one read.
func (fs *FS) readChain(first uint64, p []byte, off int64) error {
	if !fs.valid(first) {
		return fmt.Errorf("%w: chain starts at cluster %d", ErrFormat, first)
	}
	index := uint64(off / fs.clusterSize)
	c, err := fs.seek(first, index)
	if err != nil {
		return err
	}
	within := off % fs.clusterSize
	for len(p) > 0 {
		// Extend the run while the chain is contiguous and p wants more.
		runLen := int64(1)
		last := c
		for runLen*fs.clusterSize-within < int64(len(p)) {
			n, err := fs.next(last)
			if err != nil {
				return err
			}
			if n != last+1 {
				break
			}
			last = n
			runLen++
		}
		n := min(runLen*fs.clusterSize-within, int64(len(p)))
		if err := readAt(fs.r, p[:n], fs.dataOffset+int64(c-2)*fs.clusterSize+within); err != nil {
			return fmt.Errorf("read clusters %d-%d: %w", c, last, err)
		}
		p = p[n:]
		index += uint64(runLen)
		within = 0
		if len(p) == 0 {
			break
		}
		if c, err = fs.seek(first, index); err != nil {
			return err
		}
	}
	return nil
}

// Root returns the root directory.
func (fs *FS) Root() (diskimage.Node, error) {
	return diskimage.Node{Mode: syscall.S_IFDIR | 0o755, Links: 2, First: fs.rootCluster}, nil
}

// ReadAt reads len(p) bytes of file f at off.
func (fs *FS) ReadAt(f *diskimage.Node, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("fat: read at %d: negative offset", off)
	}
	if uint64(off) >= f.Size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := f.Size - uint64(off); uint64(len(p)) > rest {
		p = p[:rest]
	}
	if err := fs.readChain(f.First, p, off); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// Readlink fails: FAT has no symlinks.
func (fs *FS) Readlink(l *diskimage.Node) (string, error) {
	return "", fmt.Errorf("%w: FAT has no symlinks", ErrFormat)
}

// Lookup returns the entry called name in directory dir, or ErrNotFound.
// Names compare case-insensitively, as FAT compares them.
func (fs *FS) Lookup(dir *diskimage.Node, name string) (diskimage.Node, error) {
	var found *diskimage.Node
	err := fs.ReadDir(dir, 0, func(n diskimage.Node, _ int64) bool {
		if strings.EqualFold(n.Name, name) {
			found = &n
			return false
		}
		return true
	})
	if err != nil {
		return diskimage.Node{}, err
	}
	if found == nil {
		return diskimage.Node{}, ErrNotFound
	}
	return *found, nil
}

// Attribute bits of a directory entry.
const (
	attrReadOnly = 0x01
	attrVolume   = 0x08
	attrDir      = 0x10
	attrLFN      = 0x0f
)

// maxDirBytes bounds a directory (FAT allows 65536 entries of 32 bytes).
const maxDirBytes = 65536 * 32

// ReadDir calls fn for each entry of directory dir, except "." and "..",
// from cursor on (0: the first entry), until fn returns false. Each call
// gets the cursor of the entry after it.
func (fs *FS) ReadDir(dir *diskimage.Node, cursor int64, fn func(n diskimage.Node, next int64) bool) error {
	if dir.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return fmt.Errorf("%w: not a directory", ErrFormat)
	}
	chunk := fs.clusterSize
	fixedRoot := dir.First == 0
	if fixedRoot {
		chunk = fs.rootSize
	}
	if cursor < 0 || cursor%32 != 0 || cursor > maxDirBytes {
		return fmt.Errorf("%w: directory cursor %d", ErrFormat, cursor)
	}
	buf := make([]byte, chunk)
	var lfn []uint16
	var lfnSum byte
	for pos := cursor - cursor%chunk; pos < maxDirBytes; pos += chunk {
		if fixedRoot {
			if pos >= fs.rootSize {
				return nil
			}
			if err := readAt(fs.r, buf, fs.rootOffset); err != nil {
				return fmt.Errorf("read root directory: %w", err)
			}
		} else {
			c, err := fs.seek(dir.First, uint64(pos/chunk))
			if errors.Is(err, errChainEnd) && pos > 0 {
				return nil // the directory's last cluster was full
			}
			if err != nil {
				return err
			}
			if err := readAt(fs.r, buf, fs.dataOffset+int64(c-2)*fs.clusterSize); err != nil {
				return fmt.Errorf("read directory: %w", err)
			}
		}
		start := int64(0)
		if pos <= cursor {
			start = cursor - pos
		}
		for off := start; off < chunk; off += 32 {
			e := buf[off : off+32]
			switch {
			case e[0] == 0:
				return nil
			case e[0] == 0xe5:
				lfn = nil
				continue
			case e[11]&0x3f == attrLFN:
				lfn, lfnSum = addLFN(lfn, lfnSum, e)
				continue
			case e[11]&attrVolume != 0:
				lfn = nil
				continue
			}
			n := fs.entry(e, lfn, lfnSum, uint64(fs.dataOffset+pos+off))
			lfn = nil
			if n.Name == "." || n.Name == ".." {
				continue
			}
			if !fn(n, pos+off+32) {
				return nil
			}
		}
	}
	return nil
}

// addLFN adds long name entry e to the parts collected so far, in order
// from the last part (stored first) to the first.
func addLFN(parts []uint16, sum byte, e []byte) ([]uint16, byte) {
	if e[0]&0x40 != 0 {
		parts, sum = nil, e[13]
	} else if parts == nil || e[13] != sum {
		return nil, 0
	}
	var chars []uint16
	for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
		for i := r[0]; i < r[1]; i += 2 {
			chars = append(chars, binary.LittleEndian.Uint16(e[i:]))
		}
	}
	return append(chars, parts...), sum
}

// entry decodes short directory entry e, whose long name parts (if any)
// are lfn with checksum lfnSum, found at byte pos of the volume.
func (fs *FS) entry(e []byte, lfn []uint16, lfnSum byte, pos uint64) diskimage.Node {
	le := binary.LittleEndian
	n := diskimage.Node{ID: pos, Links: 1}
	n.Name = shortName(e)
	if lfn != nil && checksum(e[:11]) == lfnSum {
		for i, c := range lfn {
			if c == 0 {
				lfn = lfn[:i]
				break
			}
		}
		n.Name = string(utf16.Decode(lfn))
	}
	n.First = uint64(le.Uint16(e[26:]))
	if fs.bits == 32 {
		n.First |= uint64(le.Uint16(e[20:])) << 16
	}
	if e[11]&attrDir != 0 {
		n.Mode = syscall.S_IFDIR | 0o755
		n.Links = 2
	} else {
		n.Mode = syscall.S_IFREG | 0o644
		if e[11]&attrReadOnly != 0 {
			n.Mode &^= 0o222
		}
		n.Size = uint64(le.Uint32(e[28:]))
	}
	n.Mtime = stamp(le.Uint16(e[24:]), le.Uint16(e[22:]))
	n.Ctime = n.Mtime
	n.Atime = stamp(le.Uint16(e[18:]), 0)
	return n
}

// shortName returns an 8.3 name as Linux shows it, lower-cased where the
// entry's case flags say so.
func shortName(e []byte) string {
	base := []byte(strings.TrimRight(string(e[:8]), " "))
	ext := []byte(strings.TrimRight(string(e[8:11]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xe5
	}
	lower := func(b []byte) string { return strings.ToLower(string(b)) }
	name := string(base)
	if e[12]&0x08 != 0 {
		name = lower(base)
	}
	if len(ext) > 0 {
		x := string(ext)
		if e[12]&0x10 != 0 {
			x = lower(ext)
		}
		name += "." + x
	}
	return name
}

// checksum is the long name checksum of an 11-byte short name.
func checksum(name []byte) byte {
	var sum byte
	for _, c := range name {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// stamp converts a FAT date and time, read as UTC, to a time stamp.
func stamp(date, tm uint16) diskimage.Time {
	if date == 0 {
		return diskimage.Time{}
	}
	t := time.Date(1980+int(date>>9), time.Month(date>>5&0xf), int(date&0x1f),
		int(tm>>11), int(tm>>5&0x3f), int(tm&0x1f)*2, 0, time.UTC)
	return diskimage.Time{Sec: t.Unix()}
}

// readAt fills b from r at off; running into the end means a malformed
// image.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	return imageio.ReadAt(r, b, off, ErrFormat)
}

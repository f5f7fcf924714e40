// Package tree defines the metadata of a backed-up file system tree and its
// binary encoding.
//
// A directory's entries are stored as one or more tree parts (sealed objects of
// kind tree), each holding up to PartEntries nodes sorted by name. The directory's
// node lists its parts together with the first name in each, so a lookup in a
// directory of millions of entries loads one part and a listing streams them.
package tree

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
)

// Type is the type of a node.
type Type uint8

// Node types; the values are part of the format.
const (
	File     Type = 1
	Dir      Type = 2
	Symlink  Type = 3
	CharDev  Type = 4
	BlockDev Type = 5
	FIFO     Type = 6
	Socket   Type = 7
)

func (t Type) String() string {
	switch t {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case CharDev:
		return "chardev"
	case BlockDev:
		return "blockdev"
	case FIFO:
		return "fifo"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Extent is a run of file content stored as one chunk. Offsets between
// extents that are not covered are holes (sparse regions) and read as zeros.
type Extent struct {
	Offset uint64  // offset in the file
	Length uint32  // plaintext length of the chunk
	ID     keys.ID // the chunk
}

// Xattr is an extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// PartRef names one part of a directory listing.
type PartRef struct {
	First string  // name of the first entry in the part
	ID    keys.ID // the tree part
}

// Time is a time as the kernel keeps it: seconds since the Unix epoch
// (negative before 1970) and nanoseconds in [0, 1e9). Unlike int64
// nanoseconds, which end in 1678 and 2262, it holds any time a file system
// can.
type Time struct {
	Sec  int64
	Nsec uint32
}

// UnixTime returns the Time sec seconds plus nsec nanoseconds after the
// epoch; nsec may be out of [0, 1e9) or negative.
func UnixTime(sec, nsec int64) Time {
	sec += nsec / 1e9
	nsec %= 1e9
	if nsec < 0 {
		sec--
		nsec += 1e9
	}
	return Time{Sec: sec, Nsec: uint32(nsec)}
}

// Time returns t as a time.Time.
func (t Time) Time() time.Time { return time.Unix(t.Sec, int64(t.Nsec)) }

// Node is one file system entry with its metadata. Name, User, Group and
// Target hold arbitrary bytes (not necessarily UTF-8).
type Node struct {
	Name                string
	Type                Type
	Mode                uint32 // permission bits plus setuid, setgid and sticky (07777)
	UID                 uint32
	GID                 uint32
	User                string
	Group               string
	MTime, ATime, CTime Time
	Size                uint64 // file size in bytes (logical, holes included)
	Inode               uint64 // inode number at backup time
	Device              uint64 // device at backup time
	Links               uint32 // hard link count at backup time
	Rdev                uint64 // device number of device nodes
	Target              string // symlink target
	Xattrs              []Xattr
	Extents             []Extent  // file content, sorted by offset, not overlapping
	Parts               []PartRef // directory listing parts, in name order
	Entries             uint64    // number of entries of a directory
	// Changed marks a file that kept changing while it was read: its
	// content is what the last read saw, and may mix old and new data.
	Changed bool
}

// FileMode returns the node's type and permissions as an fs.FileMode.
func (n *Node) FileMode() fs.FileMode {
	m := fs.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case Dir:
		m |= fs.ModeDir
	case Symlink:
		m |= fs.ModeSymlink
	case CharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case BlockDev:
		m |= fs.ModeDevice
	case FIFO:
		m |= fs.ModeNamedPipe
	case Socket:
		m |= fs.ModeSocket
	}
	return m
}

// StatType returns the S_IFMT bits stat(2) reports for a node of type t
// (S_IFREG for a type this version does not know, which DecodePart refuses).
func (t Type) StatType() uint32 {
	switch t {
	case Dir:
		return syscall.S_IFDIR
	case Symlink:
		return syscall.S_IFLNK
	case CharDev:
		return syscall.S_IFCHR
	case BlockDev:
		return syscall.S_IFBLK
	case FIFO:
		return syscall.S_IFIFO
	case Socket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// StoredBytes returns how many bytes of content the node's extents hold; for a
// sparse file it is less than Size.
func (n *Node) StoredBytes() uint64 {
	var s uint64
	for _, e := range n.Extents {
		s += uint64(e.Length)
	}
	return s
}

// FindExtent returns the index of the first extent that ends after off, or
// len(n.Extents) if there is none.
func (n *Node) FindExtent(off uint64) int {
	i, _ := slices.BinarySearchFunc(n.Extents, off, func(e Extent, off uint64) int {
		if e.Offset+uint64(e.Length) <= off {
			return -1
		}
		return 1
	})
	return i
}

// PartFor returns the index of the part that would hold name.
func (n *Node) PartFor(name string) int {
	i, found := slices.BinarySearchFunc(n.Parts, name, func(p PartRef, name string) int {
		return cmp.Compare(p.First, name)
	})
	if found || i == 0 {
		return i
	}
	return i - 1
}

// Writers close a tree part when it holds PartEntries nodes or about
// PartBytes of encoding, whichever comes first.
const (
	PartEntries = 1024
	PartBytes   = 4 << 20
)

// SizeHint estimates the node's encoded size, for bounding parts.
func (n *Node) SizeHint() int {
	s := 64 + len(n.Name) + len(n.User) + len(n.Group) + len(n.Target) + 44*len(n.Extents)
	for _, x := range n.Xattrs {
		s += 8 + len(x.Name) + len(x.Value)
	}
	for _, p := range n.Parts {
		s += 40 + len(p.First)
	}
	return s
}

// Part is one part of a directory listing: nodes sorted by name.
type Part struct {
	Nodes []Node
}

// Find returns the node called name, or nil.
func (p *Part) Find(name string) *Node {
	i, found := slices.BinarySearchFunc(p.Nodes, name, func(n Node, name string) int {
		return cmp.Compare(n.Name, name)
	})
	if !found {
		return nil
	}
	return &p.Nodes[i]
}

// Encoding of a part (all integers are unsigned LEB128 varints unless noted):
//
//	magic "AZT2"
//	count
//	count × node:
//	  name (bytes), type (1 byte), flags (varint), mode, uid, gid,
//	  mtime, atime, ctime (each zig-zag varint seconds, then nanoseconds),
//	  size, inode, device, links,
//	  then, when their flag is set: user, group (bytes); rdev; target (bytes);
//	  xattrs (count, then name bytes, value bytes each);
//	  extents (count, then per extent: gap from the previous extent's end,
//	           length, 32-byte ID);
//	  parts (count, then first-name bytes, 32-byte ID each) and entries.
//
// "bytes" is a varint length followed by that many bytes. Parts written
// before "AZT2" start with "AZT1" and hold each time as one zig-zag varint
// of nanoseconds; DecodePart reads both, Encode writes "AZT2".
const (
	partMagic   = "AZT2"
	partMagicV1 = "AZT1"
)

const (
	flagOwnerNames = 1 << iota
	flagRdev
	flagTarget
	flagXattrs
	flagExtents
	flagParts
	flagChanged
	flagsKnownV1 = flagOwnerNames | flagRdev | flagTarget | flagXattrs | flagExtents | flagParts
	flagsKnown   = flagsKnownV1 | flagChanged
)

// ErrFormat reports tree bytes that do not decode.
var ErrFormat = errkind.New(errkind.Damaged, "malformed tree")

// Encode appends the encoding of p to dst. Nodes must be sorted by name with
// no duplicates.
func (p *Part) Encode(dst []byte) ([]byte, error) {
	if !slices.IsSortedFunc(p.Nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) }) {
		return nil, fmt.Errorf("encode tree part: %w: nodes not sorted by name", ErrFormat)
	}
	dst = append(dst, partMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(p.Nodes)))
	for i := range p.Nodes {
		if i > 0 && p.Nodes[i].Name == p.Nodes[i-1].Name {
			return nil, fmt.Errorf("encode tree part: %w: duplicate name %q", ErrFormat, p.Nodes[i].Name)
		}
		dst = p.Nodes[i].appendTo(dst)
	}
	return dst, nil
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func (n *Node) appendTo(dst []byte) []byte {
	var flags uint64
	if n.User != "" || n.Group != "" {
		flags |= flagOwnerNames
	}
	if n.Rdev != 0 {
		flags |= flagRdev
	}
	if n.Target != "" {
		flags |= flagTarget
	}
	if len(n.Xattrs) > 0 {
		flags |= flagXattrs
	}
	if len(n.Extents) > 0 {
		flags |= flagExtents
	}
	if len(n.Parts) > 0 || n.Entries > 0 {
		flags |= flagParts
	}
	if n.Changed {
		flags |= flagChanged
	}
	dst = appendBytes(dst, n.Name)
	dst = append(dst, byte(n.Type))
	dst = binary.AppendUvarint(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(n.Mode))
	dst = binary.AppendUvarint(dst, uint64(n.UID))
	dst = binary.AppendUvarint(dst, uint64(n.GID))
	for _, t := range [...]Time{n.MTime, n.ATime, n.CTime} {
		dst = binary.AppendVarint(dst, t.Sec)
		dst = binary.AppendUvarint(dst, uint64(t.Nsec))
	}
	dst = binary.AppendUvarint(dst, n.Size)
	dst = binary.AppendUvarint(dst, n.Inode)
	dst = binary.AppendUvarint(dst, n.Device)
	dst = binary.AppendUvarint(dst, uint64(n.Links))
	if flags&flagOwnerNames != 0 {
		dst = appendBytes(dst, n.User)
		dst = appendBytes(dst, n.Group)
	}
	if flags&flagRdev != 0 {
		dst = binary.AppendUvarint(dst, n.Rdev)
	}
	if flags&flagTarget != 0 {
		dst = appendBytes(dst, n.Target)
	}
	if flags&flagXattrs != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(n.Xattrs)))
		for _, x := range n.Xattrs {
			dst = appendBytes(dst, x.Name)
			dst = appendBytes(dst, string(x.Value))
		}
	}
	if flags&flagExtents != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(n.Extents)))
		var end uint64
		for _, e := range n.Extents {
			dst = binary.AppendUvarint(dst, e.Offset-end)
			dst = binary.AppendUvarint(dst, uint64(e.Length))
			dst = append(dst, e.ID[:]...)
			end = e.Offset + uint64(e.Length)
		}
	}
	if flags&flagParts != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(n.Parts)))
		for _, p := range n.Parts {
			dst = appendBytes(dst, p.First)
			dst = append(dst, p.ID[:]...)
		}
		dst = binary.AppendUvarint(dst, n.Entries)
	}
	return dst
}

// decoder reads the encoding; the first error sticks.
type decoder struct {
	b   []byte
	v1  bool // an "AZT1" part: times in nanoseconds
	err error
	// user and group are the owner names decoded last: a part's nodes
	// mostly share them, and share their strings then.
	user, group string
	// extents is room for the extents of the nodes still to decode,
	// allocated a block at a time (see extentBlock).
	extents []Extent
}

// extentBlock is how many extents the decoder allocates at once for the
// files of a part with few extents each (one allocation instead of one per
// file). A node's extents are a slice of the block, capped at their
// number, so the block lives as long as any node decoded into it; a file
// with more extents than a quarter block gets a slice of its own.
const extentBlock = 256

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrFormat, what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// time reads a time: seconds and nanoseconds, or in an "AZT1" part
// nanoseconds alone.
func (d *decoder) time(what string) Time {
	if d.v1 {
		return UnixTime(0, d.varint(what))
	}
	sec := d.varint(what)
	nsec := d.uvarint(what)
	if nsec >= 1e9 {
		d.fail(what)
		return Time{}
	}
	return Time{Sec: sec, Nsec: uint32(nsec)}
}

func (d *decoder) uint32(what string) uint32 {
	v := d.uvarint(what)
	if v > 1<<32-1 {
		d.fail(what)
		return 0
	}
	return uint32(v)
}

func (d *decoder) bytes(what string) string {
	b := d.raw(what)
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// raw reads a length and returns that many bytes of the input.
func (d *decoder) raw(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

// shared reads a string like bytes, returning *last instead of a new
// string when the bytes are the same, and keeping the result in *last.
func (d *decoder) shared(what string, last *string) string {
	b := d.raw(what)
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// extentRoom returns an empty slice with room for n extents.
func (d *decoder) extentRoom(n int) []Extent {
	if n > extentBlock/4 {
		return make([]Extent, 0, n)
	}
	if cap(d.extents)-len(d.extents) < n {
		d.extents = make([]Extent, 0, extentBlock)
	}
	room := d.extents[len(d.extents) : len(d.extents) : len(d.extents)+n]
	d.extents = d.extents[:len(d.extents)+n]
	return room
}

func (d *decoder) id(what string) (id keys.ID) {
	if d.err != nil {
		return id
	}
	if len(d.b) < len(id) {
		d.fail(what)
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[len(id):]
	return id
}

// count reads a list length and checks that the remaining input could hold
// that many items of at least minSize bytes, so hostile input cannot make the
// decoder allocate more than its own size.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail(what)
		return 0
	}
	return int(n)
}

// DecodePart decodes a tree part. It checks the structure (sorted unique
// names, non-empty names without '/', ordered extents, known types) so that a
// decoded part can be served as is.
func DecodePart(b []byte) (*Part, error) {
	d := &decoder{}
	switch {
	case bytes.HasPrefix(b, []byte(partMagic)):
		d.b = b[len(partMagic):]
	case bytes.HasPrefix(b, []byte(partMagicV1)):
		d.b, d.v1 = b[len(partMagicV1):], true
	default:
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	count := d.count("node count", 14)
	p := &Part{Nodes: make([]Node, count)}
	for i := 0; i < count && d.err == nil; i++ {
		// Decoded in place: a Node is a few hundred bytes.
		n := &p.Nodes[i]
		d.node(n)
		if d.err == nil && i > 0 && n.Name <= p.Nodes[i-1].Name {
			d.err = fmt.Errorf("%w: names not sorted at %q", ErrFormat, n.Name)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return p, nil
}

// node decodes a node into n, which is zero.
func (d *decoder) node(n *Node) {
	n.Name = d.bytes("name")
	if d.err == nil && (n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00")) {
		d.err = fmt.Errorf("%w: invalid name %q", ErrFormat, n.Name)
		return
	}
	if d.err == nil {
		if len(d.b) == 0 {
			d.fail("type")
			return
		}
		n.Type = Type(d.b[0])
		d.b = d.b[1:]
		if n.Type < File || n.Type > Socket {
			d.fail("type")
			return
		}
	}
	flags := d.uvarint("flags")
	known := uint64(flagsKnown)
	if d.v1 {
		known = flagsKnownV1
	}
	if flags&^known != 0 {
		d.fail("flags")
	}
	n.Changed = flags&flagChanged != 0
	n.Mode = d.uint32("mode")
	if n.Mode&^0o7777 != 0 {
		d.fail("mode")
	}
	n.UID = d.uint32("uid")
	n.GID = d.uint32("gid")
	n.MTime = d.time("mtime")
	n.ATime = d.time("atime")
	n.CTime = d.time("ctime")
	n.Size = d.uvarint("size")
	n.Inode = d.uvarint("inode")
	n.Device = d.uvarint("device")
	n.Links = d.uint32("links")
	if flags&flagOwnerNames != 0 {
		n.User = d.shared("user", &d.user)
		n.Group = d.shared("group", &d.group)
	}
	if flags&flagRdev != 0 {
		n.Rdev = d.uvarint("rdev")
	}
	if flags&flagTarget != 0 {
		n.Target = d.bytes("target")
	}
	if flags&flagXattrs != 0 {
		c := d.count("xattr count", 2)
		n.Xattrs = make([]Xattr, 0, c)
		for range c {
			x := Xattr{Name: d.bytes("xattr name"), Value: []byte(d.bytes("xattr value"))}
			n.Xattrs = append(n.Xattrs, x)
		}
	}
	if flags&flagExtents != 0 {
		if n.Type != File {
			d.fail("extents on a non-file")
		}
		c := d.count("extent count", 34)
		n.Extents = d.extentRoom(c)
		var end uint64
		for range c {
			gap := d.uvarint("extent gap")
			e := Extent{Offset: end + gap, Length: d.uint32("extent length")}
			e.ID = d.id("extent id")
			if d.err != nil {
				break
			}
			if e.Offset < end || e.Length == 0 || e.Offset+uint64(e.Length) < e.Offset || e.Offset+uint64(e.Length) > n.Size {
				d.fail("extent range")
				break
			}
			end = e.Offset + uint64(e.Length)
			n.Extents = append(n.Extents, e)
		}
	}
	if flags&flagParts != 0 {
		if n.Type != Dir {
			d.fail("parts on a non-directory")
		}
		c := d.count("part count", 33)
		n.Parts = make([]PartRef, 0, c)
		for i := range c {
			p := PartRef{First: d.bytes("part name")}
			p.ID = d.id("part id")
			if d.err == nil && i > 0 && p.First <= n.Parts[i-1].First {
				d.fail("part order")
			}
			n.Parts = append(n.Parts, p)
		}
		n.Entries = d.uvarint("entries")
	}
}

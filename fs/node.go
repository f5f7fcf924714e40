package fs

import (
	"context"
	"encoding/binary"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

// blockSize is the preferred I/O size reported in attributes and statfs.
const blockSize = 4096

// attrOf returns the attributes of n, whose inode number is ino.
func attrOf(n *tree.Node, ino uint64) fuse.Attr {
	a := fuse.Attr{
		Ino:     ino,
		Size:    n.Size,
		Blocks:  (n.StoredBytes() + 511) / 512,
		Mode:    n.Type.StatType() | n.Mode&0o7777,
		Nlink:   max(n.Links, 1),
		Blksize: blockSize,
	}
	a.Uid, a.Gid = n.UID, n.GID
	a.Atime, a.Atimensec = fuseTime(n.ATime)
	a.Mtime, a.Mtimensec = fuseTime(n.MTime)
	a.Ctime, a.Ctimensec = fuseTime(n.CTime)
	switch n.Type {
	case tree.Dir:
		a.Nlink = max(n.Links, 2)
	case tree.Symlink:
		a.Size = uint64(len(n.Target))
	case tree.CharDev, tree.BlockDev:
		a.Rdev = fuseDev(n.Rdev)
	}
	return a
}

// fuseTime returns t as FUSE carries a time: the seconds a two's
// complement signed value (the kernel reads them as such, so times before
// 1970 and after 2262 come through), the nanoseconds in [0, 1e9).
func fuseTime(t tree.Time) (uint64, uint32) {
	return uint64(t.Sec), t.Nsec
}

// fuseDev converts a device number as stat(2) reports it to the 32-bit
// encoding FUSE attributes carry (the kernel's new_encode_dev).
func fuseDev(dev uint64) uint32 {
	major, minor := unix.Major(dev), unix.Minor(dev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// inoHash computes inode numbers: FNV-1a over the fields written to it.
type inoHash uint64

func newInoHash(tag byte) inoHash {
	return inoHash(fnvOffset).addBytes([]byte{tag})
}

func (h inoHash) addBytes(b []byte) inoHash {
	for _, c := range b {
		h ^= inoHash(c)
		h *= fnvPrime
	}
	return h
}

func (h inoHash) addString(s string) inoHash {
	for i := 0; i < len(s); i++ {
		h ^= inoHash(s[i])
		h *= fnvPrime
	}
	return h
}

func (h inoHash) addUint64(x uint64) inoHash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], x)
	return h.addBytes(b[:])
}

// ino returns the hash as an inode number, avoiding 0, the root's 1 and
// the value go-fuse reserves.
func (h inoHash) ino() uint64 {
	switch x := uint64(h); x {
	case 0, 1:
		return x + 2
	case ^uint64(0):
		return x - 1
	default:
		return x
	}
}

// rootIno returns the inode number of the point's top-level directory.
func (p *point) rootIno() uint64 {
	return newInoHash('r').addBytes(p.id[:]).ino()
}

// childIno returns the inode number of n, an entry of the directory whose
// inode number is parent. A non-directory with several links gets a number
// derived from its device and inode at backup time, so that all its names
// share one inode.
func (p *point) childIno(parent uint64, n *tree.Node) uint64 {
	if n.Type != tree.Dir && n.Links > 1 {
		return newInoHash('h').addBytes(p.id[:]).addUint64(n.Device).addUint64(n.Inode).ino()
	}
	return newInoHash('n').addBytes(p.id[:]).addUint64(parent).addString(n.Name).ino()
}

// getxattr answers a getxattr request from xs.
func getxattr(xs []tree.Xattr, name string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range xs {
		if x.Name != name {
			continue
		}
		if len(dest) < len(x.Value) {
			return uint32(len(x.Value)), syscall.ERANGE
		}
		return uint32(copy(dest, x.Value)), 0
	}
	return 0, syscall.ENODATA
}

// listxattr answers a listxattr request from xs: the names, each followed
// by a NUL byte.
func listxattr(xs []tree.Xattr, dest []byte) (uint32, syscall.Errno) {
	size := 0
	for _, x := range xs {
		size += len(x.Name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	dest = dest[:0]
	for _, x := range xs {
		dest = append(dest, x.Name...)
		dest = append(dest, 0)
	}
	return uint32(size), 0
}

// statfs reports a read-only file system with no free space.
func statfs(out *fuse.StatfsOut) syscall.Errno {
	*out = fuse.StatfsOut{Bsize: blockSize, Frsize: blockSize, NameLen: 255}
	return 0
}

// leaf is what files, symlinks and special files share: an immutable tree
// node and its attributes.
type leaf struct {
	pt   *point
	path string // for messages: the point-relative path of the first name
	node tree.Node
	attr fuse.Attr
}

// Getattr reports the node's attributes.
func (l *leaf) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = l.attr
	return 0
}

// Getxattr reads an extended attribute.
func (l *leaf) Getxattr(_ context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(l.node.Xattrs, name, dest)
}

// Listxattr lists the extended attributes.
func (l *leaf) Listxattr(_ context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(l.node.Xattrs, dest)
}

// Statfs reports file system statistics.
func (l *leaf) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

// symlinkNode is a symbolic link.
type symlinkNode struct {
	gofs.Inode
	leaf
}

var (
	_ gofs.NodeGetattrer   = (*symlinkNode)(nil)
	_ gofs.NodeReadlinker  = (*symlinkNode)(nil)
	_ gofs.NodeGetxattrer  = (*symlinkNode)(nil)
	_ gofs.NodeListxattrer = (*symlinkNode)(nil)
	_ gofs.NodeStatfser    = (*symlinkNode)(nil)
)

// Readlink returns the link's target.
func (s *symlinkNode) Readlink(context.Context) ([]byte, syscall.Errno) {
	return []byte(s.node.Target), 0
}

// specialNode is a FIFO, device or socket: only its attributes are served;
// opening it never reaches the file system.
type specialNode struct {
	gofs.Inode
	leaf
}

var (
	_ gofs.NodeGetattrer   = (*specialNode)(nil)
	_ gofs.NodeGetxattrer  = (*specialNode)(nil)
	_ gofs.NodeListxattrer = (*specialNode)(nil)
	_ gofs.NodeStatfser    = (*specialNode)(nil)
)

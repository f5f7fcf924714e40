package backup

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

// names caches uid/gid to name lookups.
type names struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newNames() *names {
	return &names{users: make(map[uint32]string), groups: make(map[uint32]string)}
}

func (n *names) user(uid uint32) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.users[uid]
	if !ok {
		if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
			s = u.Username
		}
		n.users[uid] = s
	}
	return s
}

func (n *names) group(gid uint32) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.groups[gid]
	if !ok {
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
			s = g.Name
		}
		n.groups[gid] = s
	}
	return s
}

// lstat returns the node, called name, for the entry at in d (whose full
// path is path), with its metadata: no content, no listing.
func (b *backuper) lstat(d *dir, at, path, name string) (tree.Node, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, at, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return tree.Node{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	n := tree.Node{
		Name:   name,
		Mode:   st.Mode & 0o7777,
		UID:    st.Uid,
		GID:    st.Gid,
		User:   b.names.user(st.Uid),
		Group:  b.names.group(st.Gid),
		MTime:  treeTime(st.Mtim),
		ATime:  treeTime(st.Atim),
		CTime:  treeTime(st.Ctim),
		Inode:  st.Ino,
		Device: st.Dev,
		Links:  uint32(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = tree.File
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = tree.Dir
	case unix.S_IFLNK:
		n.Type = tree.Symlink
		target, err := readlinkAt(d.fd, at, int(st.Size))
		if err != nil {
			return n, &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		n.Target = target
		n.Size = uint64(len(target))
	case unix.S_IFCHR:
		n.Type, n.Rdev = tree.CharDev, st.Rdev
	case unix.S_IFBLK:
		n.Type, n.Rdev = tree.BlockDev, st.Rdev
	case unix.S_IFIFO:
		n.Type = tree.FIFO
	case unix.S_IFSOCK:
		n.Type = tree.Socket
	default:
		return n, fmt.Errorf("%s: unknown file type %#o", path, st.Mode&unix.S_IFMT)
	}
	xattrs, err := readXattrs(d.xattrPath(at, path), path)
	if err != nil {
		return n, err
	}
	n.Xattrs = xattrs
	if len(xattrs) > 0 {
		b.stats.xattrs.Add(1)
	}
	return n, nil
}

// treeTime converts a time stat(2) reports (Timespec.Nano would overflow
// after 2262 and before 1678).
func treeTime(ts unix.Timespec) tree.Time {
	return tree.UnixTime(ts.Sec, ts.Nsec)
}

// cacheStamp is t as the file cache records it, in nanoseconds: the same
// value a cache written before times were seconds and nanoseconds holds for
// times between 1678 and 2262, so those records still match. Outside that
// range it wraps; two times 584 years apart share a stamp, which with the
// size, ctime, inode and device also compared does not make a changed file
// look unchanged in practice.
func cacheStamp(t tree.Time) int64 {
	return t.Sec*1e9 + int64(t.Nsec)
}

// readlinkAt returns the target of the symlink name in the directory fd,
// whose length lstat gave as size (a guess: it may change meanwhile).
func readlinkAt(fd int, name string, size int) (string, error) {
	buf := make([]byte, max(size, 64)+1)
	for {
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// readXattrs returns the extended attributes of the entry at sys (not
// following a symlink), sorted by name; path names it in errors.
func readXattrs(sys, path string) ([]tree.Xattr, error) {
	buf := make([]byte, 1024)
	var size int
	for {
		var err error
		size, err = unix.Llistxattr(sys, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: path, Err: err}
		}
		break
	}
	if size == 0 {
		return nil, nil
	}
	var out []tree.Xattr
	start := 0
	for i := 0; i < size; i++ {
		if buf[i] != 0 {
			continue
		}
		name := string(buf[start:i])
		start = i + 1
		if name == "" {
			continue
		}
		val, err := getXattr(sys, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, &os.PathError{Op: "getxattr " + name, Path: path, Err: err}
		}
		out = append(out, tree.Xattr{Name: name, Value: val})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

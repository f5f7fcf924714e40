package restore

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

// setMeta gives the entry name of directory dirfd (not following a
// symlink) n's owner, permissions, xattrs and times, in that order: a
// chown clears setuid, setgid and file capabilities, and every change but
// the last sets the times. existed says the entry was there before the
// run: xattrs the point does not hold are then removed. Without root, an
// owner that is not the user's is left as it is, as cp -a and tar do.
func (r *run) setMeta(dirfd int, name string, n *tree.Node, existed bool) error {
	var errs []error
	if err := unix.Fchownat(dirfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil && !(errors.Is(err, unix.EPERM) && os.Geteuid() != 0) {
		errs = append(errs, &os.PathError{Op: "chown", Path: name, Err: err})
	}
	if n.Type != tree.Symlink { // a symlink's permissions are always 0777
		if err := unix.Fchmodat(dirfd, name, n.Mode&0o7777, 0); err != nil {
			errs = append(errs, &os.PathError{Op: "chmod", Path: name, Err: err})
		}
	}
	if err := setXattrs(xattrPath(dirfd, name), n.Xattrs, existed); err != nil {
		errs = append(errs, err)
	}
	ts := []unix.Timespec{
		{Sec: n.ATime.Sec, Nsec: int64(n.ATime.Nsec)},
		{Sec: n.MTime.Sec, Nsec: int64(n.MTime.Nsec)},
	}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		errs = append(errs, &os.PathError{Op: "set times", Path: name, Err: err})
	}
	return errors.Join(errs...)
}

// xattrPath names the entry name of directory dirfd for the xattr calls,
// which take only a path: through /proc/self/fd, so that any depth works.
func xattrPath(dirfd int, name string) string {
	if dirfd == unix.AT_FDCWD {
		return name
	}
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// setXattrs sets the xattrs of the entry at path (not following a
// symlink) to want; with existed, it first removes those not in want.
func setXattrs(path string, want []tree.Xattr, existed bool) error {
	var errs []error
	if existed {
		have, err := listXattrs(path)
		if err != nil {
			return err
		}
		for _, name := range have {
			if !hasXattr(want, name) {
				if err := unix.Lremovexattr(path, name); err != nil {
					errs = append(errs, &os.PathError{Op: "remove xattr " + strconv.Quote(name), Path: path, Err: err})
				}
			}
		}
	}
	for _, x := range want {
		if err := unix.Lsetxattr(path, x.Name, x.Value, 0); err != nil {
			errs = append(errs, &os.PathError{Op: "set xattr " + strconv.Quote(x.Name), Path: path, Err: err})
		}
	}
	return errors.Join(errs...)
}

func hasXattr(xs []tree.Xattr, name string) bool {
	for _, x := range xs {
		if x.Name == name {
			return true
		}
	}
	return false
}

// listXattrs returns the names of the xattrs of the entry at path, not
// following a symlink; none where the file system has no xattrs.
func listXattrs(path string) ([]string, error) {
	for {
		size, err := unix.Llistxattr(path, nil)
		if errors.Is(err, unix.ENOTSUP) || size == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "list xattrs", Path: path, Err: err}
		}
		buf := make([]byte, size)
		size, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, &os.PathError{Op: "list xattrs", Path: path, Err: err}
		}
		return strings.Split(string(bytes.TrimSuffix(buf[:size], []byte{0})), "\x00"), nil
	}
}

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// errSymlink is the error, wrapping syscall.ELOOP, of an operation that met
// a symbolic link inside the vault: below the vault directory nothing is
// followed, so that whoever can write the directory cannot make azfs (often
// root) read, write or delete elsewhere by planting a link.
var errSymlink = fmt.Errorf("azfs follows no symbolic link inside a vault (%w)", unix.ELOOP)

// noOpenat2 is set once openat2(2) reports ENOSYS (kernels before 5.6, or
// a sandbox that blocks it): from then on paths are walked one component
// at a time.
var noOpenat2 atomic.Bool

// openBeneath opens rel, a slash-separated path below the directory dirfd,
// with flags (O_CLOEXEC is added) and mode, following no symbolic link in
// any component of rel and never leaving dirfd: with openat2 and
// RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH where the kernel has it, else
// component by component with O_NOFOLLOW. rel "" opens dirfd again. A
// symbolic link met on the way fails with an error wrapping errSymlink
// that names it (see linkError); other errors are errnos.
func openBeneath(dirfd int, rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	if !noOpenat2.Load() {
		how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		for {
			fd, err := unix.Openat2(dirfd, rel, how)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue // EAGAIN: a concurrent rename raced the lookup
			}
			if err == unix.ENOSYS {
				noOpenat2.Store(true)
				break
			}
			if err == unix.ELOOP {
				return -1, linkError(dirfd, rel, err)
			}
			return fd, err
		}
	}
	return walkBeneath(dirfd, rel, flags, mode)
}

// walkBeneath is openBeneath without openat2: each directory of rel is
// opened with O_NOFOLLOW|O_DIRECTORY from the one before, and the last
// component with O_NOFOLLOW.
func walkBeneath(dirfd int, rel string, flags int, mode uint32) (int, error) {
	parts := strings.Split(rel, "/")
	cur := dirfd
	closeCur := func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}
	defer closeCur()
	for _, p := range parts[:len(parts)-1] {
		if p == "" || p == "." || p == ".." {
			return -1, unix.EINVAL
		}
		next, err := openat(cur, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			if err == unix.ELOOP || err == unix.ENOTDIR {
				return -1, linkError(dirfd, rel, err)
			}
			return -1, err
		}
		closeCur()
		cur = next
	}
	last := parts[len(parts)-1]
	if last == ".." {
		return -1, unix.EINVAL
	}
	fd, err := openat(cur, last, flags|unix.O_NOFOLLOW, mode)
	if err == unix.ELOOP || (err == unix.ENOTDIR && flags&unix.O_DIRECTORY != 0) {
		return -1, linkError(dirfd, rel, err)
	}
	return fd, err
}

// openat is openat(2) with O_CLOEXEC, retried on EINTR.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// linkError returns the error of a lookup of rel below dirfd that failed
// with err (ELOOP, or ENOTDIR from O_DIRECTORY|O_NOFOLLOW): an error
// wrapping errSymlink naming the first component of rel that is a symbolic
// link, and where it points, or err itself when none is (any more).
func linkError(dirfd int, rel string, err error) error {
	parts := strings.Split(rel, "/")
	cur := dirfd
	defer func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}()
	for i, p := range parts {
		var st unix.Stat_t
		if unix.Fstatat(cur, p, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, 4096)
			n, rerr := unix.Readlinkat(cur, p, buf)
			target := "?"
			if rerr == nil {
				target = string(buf[:n])
			}
			return fmt.Errorf("%q is a symbolic link to %q: %w", strings.Join(parts[:i+1], "/"), target, errSymlink)
		}
		if i == len(parts)-1 {
			break
		}
		next, oerr := openat(cur, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if oerr != nil {
			return err
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		cur = next
	}
	return err
}

// pathError records a failed operation on the path rel below root as
// *fs.PathError, keeping a symbolic link's error as it is (it says which).
func pathError(op, root, rel string, err error) error {
	if errors.Is(err, errSymlink) {
		return err
	}
	return &fs.PathError{Op: op, Path: filepath.Join(root, filepath.FromSlash(rel)), Err: err}
}

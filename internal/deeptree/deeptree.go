// Package deeptree builds, for tests, directory trees whose paths are
// longer than PATH_MAX (4096 bytes), which only calls relative to an open
// directory (openat, mkdirat) can reach.
package deeptree

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Level returns the name of the directory at level n (from 1): 200 bytes.
func Level(n int) string {
	return fmt.Sprintf("%03d-%s", n, strings.Repeat("d", 196))
}

// Content returns the content of the file "f" at level n.
func Content(n int) []byte {
	return []byte(strings.Repeat(strconv.Itoa(n), 1000))
}

// Xattr is the extended attribute (name, value) on the deepest "f".
const (
	XattrName  = "user.deep"
	XattrValue = "bottom"
)

// Build makes under root a chain of levels directories (mode 0750) named
// Level(1), Level(2), ..., each holding a file "f" (mode 0640) with
// Content of its level; the deepest also holds a symlink "l" to "f", and
// its "f" the xattr XattrName. It returns the deepest directory's path.
func Build(root string, levels int) (string, error) {
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", root, err)
	}
	defer func() { unix.Close(fd) }()
	path := root
	for level := 1; level <= levels; level++ {
		if err := unix.Mkdirat(fd, Level(level), 0o750); err != nil {
			return "", fmt.Errorf("mkdir at level %d: %w", level, err)
		}
		next, err := unix.Openat(fd, Level(level), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open level %d: %w", level, err)
		}
		unix.Close(fd)
		fd, path = next, path+"/"+Level(level)
		f, err := unix.Openat(fd, "f", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
		if err != nil {
			return "", fmt.Errorf("create f at level %d: %w", level, err)
		}
		_, err = unix.Write(f, Content(level))
		if err == nil && level == levels {
			err = unix.Fsetxattr(f, XattrName, []byte(XattrValue), 0)
		}
		unix.Close(f)
		if err != nil {
			return "", fmt.Errorf("write f at level %d: %w", level, err)
		}
	}
	if err := unix.Symlinkat("f", fd, "l"); err != nil {
		return "", fmt.Errorf("symlink at the deepest level: %w", err)
	}
	return path, nil
}

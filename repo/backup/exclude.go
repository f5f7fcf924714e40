package backup

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// exclusions are the entries a run leaves out (Options.Exclude: the vault,
// azfs's config, keyring and state, its cache), known by device and inode,
// so that they are left out however the walk meets them: below a named
// path, through a symlinked or bind-mounted directory, or as another hard
// link of an excluded file.
type exclusions map[[2]uint64]string // (device, inode) → the excluded path

// newExclusions stats each of paths (following symlinks); a path that does
// not exist has nothing to leave out.
func newExclusions(paths []string) exclusions {
	ex := make(exclusions)
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(abs, &st) == nil {
			ex[[2]uint64{st.Dev, st.Ino}] = abs
		}
	}
	return ex
}

// has reports whether the entry (device, inode) is excluded.
func (ex exclusions) has(device, inode uint64) bool {
	_, ok := ex[[2]uint64{device, inode}]
	return ok
}

// refuse returns an error when the named path is excluded or lies inside
// an excluded directory, however it is reached: backing up azfs's own
// state would store the keyring, or the vault into itself. The named entry
// is taken as it is (a symlink is stored as a symlink); its ancestors are
// resolved, as the walk follows them.
func (ex exclusions) refuse(path string) error {
	real := path
	if path != "/" {
		dir, err := filepath.EvalSymlinks(filepath.Dir(path))
		if err != nil {
			return nil // cleanPaths reports it
		}
		real = filepath.Join(dir, filepath.Base(path))
	}
	stat := unix.Lstat
	for q := real; ; q = filepath.Dir(q) {
		var st unix.Stat_t
		if err := stat(q, &st); err != nil {
			return nil
		}
		stat = unix.Stat
		if excluded, ok := ex[[2]uint64{st.Dev, st.Ino}]; ok {
			return fmt.Errorf("cannot back up %q: it is or lies inside %q, azfs's own vault, config (keyring) or cache, which backups leave out", path, excluded)
		}
		if q == "/" {
			return nil
		}
	}
}

// refuseAny checks every named path with refuse.
func (ex exclusions) refuseAny(paths []string) error {
	for _, p := range paths {
		if err := ex.refuse(p); err != nil {
			return err
		}
	}
	return nil
}

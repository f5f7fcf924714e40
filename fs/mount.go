package fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/internal/mountinfo"
)

var (
	// ErrMountpoint is wrapped by the errors about an unusable mountpoint;
	// it is the first word of their messages.
	ErrMountpoint = errkind.New(errkind.Invalid, "mountpoint")
	// ErrNoFUSE is wrapped by the error returned when the kernel offers
	// no FUSE device.
	ErrNoFUSE = errors.New("FUSE is not available on this machine")
)

// fuseDevice is the FUSE device node (a variable for tests).
var fuseDevice = "/dev/fuse"

// cacheTimeout is how long the kernel may cache entries, attributes and
// failed lookups: the served data never changes.
const cacheTimeout = time.Hour

// readAheadKB is the kernel read-ahead set on the mount's backing device.
const readAheadKB = "4096"

// Mount mounts root at dir read-only and returns the server; the caller
// calls Wait and Unmount. dir must be an existing empty directory that is
// not a mount point.
func Mount(dir string, root gofs.InodeEmbedder, opts Options) (*fuse.Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return mount(dir, root, mountOptions(opts), logger)
}

// mount implements Mount with the given go-fuse options.
func mount(dir string, root gofs.InodeEmbedder, opts *gofs.Options, logger *slog.Logger) (*fuse.Server, error) {
	err := checkMountpoint(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		// A mount whose server is gone: when it is one of ours, what a
		// killed azmount left behind, unmount it and mount again.
		if err = unmountStale(dir); err == nil {
			logger.Warn("a previous azmount was killed and left its mount behind: unmounted it", "mountpoint", dir)
			err = checkMountpoint(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(fuseDevice); err != nil {
		return nil, fmt.Errorf("no %s: %w", fuseDevice, ErrNoFUSE)
	}
	server, err := gofs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := raiseReadAhead(dir); err != nil {
		logger.Debug("cannot raise read-ahead", "mountpoint", dir, "err", err)
	}
	return server, nil
}

// mountOptions returns the go-fuse options of a mount.
func mountOptions(opts Options) *gofs.Options {
	timeout := cacheTimeout
	return &gofs.Options{
		MountOptions: fuse.MountOptions{
			// default_permissions makes the kernel check modes itself:
			// no OPEN reaches the file system (see fileNode.Open) and
			// ACCESS requests are not needed.
			Options:       []string{"ro", "default_permissions"},
			FsName:        "azfs",
			Name:          "azfs",
			MaxWrite:      1 << 20, // also sets max_read: 1 MiB READ requests
			MaxBackground: 64,
			// As root, mount(2) directly; otherwise, or if that
			// fails, through fusermount3.
			DirectMount:       os.Geteuid() == 0,
			DirectMountStrict: false,
			DisableXAttrs:     opts.NoXattrs,
			AllowOther:        opts.AllowOther,
			// Nothing ever changes: the kernel may cache symlink
			// targets and need not invalidate pages on its own.
			EnableSymlinkCaching:     true,
			ExplicitDataCacheControl: true,
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		// Serve modes as stored, even 0000.
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
	}
}

// checkMountpoint checks that dir is an existing empty directory that is
// not a mount point. A mount whose server is gone fails with an error
// wrapping syscall.ENOTCONN that says how to unmount it.
func checkMountpoint(dir string) error {
	err := checkMountpointDir(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		// A FUSE mount whose server is gone. Its attributes may still
		// be cached: stat can succeed and a listing fail.
		return staleError(dir)
	}
	return err
}

// checkMountpointDir is checkMountpoint but for what a dead server answers.
func checkMountpointDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w %q does not exist", ErrMountpoint, dir)
	case err != nil:
		return fmt.Errorf("%w %q: %w", ErrMountpoint, dir, err)
	case !st.IsDir():
		return fmt.Errorf("%w %q is not a directory", ErrMountpoint, dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrMountpoint, dir, err)
	}
	parent, err := os.Stat(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrMountpoint, dir, err)
	}
	empty, err := isEmpty(dir)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrMountpoint, dir, err)
	}
	if st.Sys().(*syscall.Stat_t).Dev != parent.Sys().(*syscall.Stat_t).Dev || !empty {
		return fmt.Errorf("%w %q is busy (already mounted or not empty)", ErrMountpoint, dir)
	}
	return nil
}

// fsType is the file system type of our mounts in /proc/self/mountinfo:
// "fuse." and the Name of mountOptions.
const fsType = "fuse.azfs"

// staleError is the error about dir, a mount whose server is gone: what a
// killed azmount leaves behind when the type is ours, and how to unmount it.
func staleError(dir string) error {
	how := fmt.Sprintf("run `fusermount3 -u %q` (or `umount %q` as root)", dir, dir)
	if t := mountType(dir); t != fsType {
		return fmt.Errorf("%w %q: a file system (%s) whose server is gone is mounted there: %s: %w", ErrMountpoint, dir, t, how, syscall.ENOTCONN)
	}
	return fmt.Errorf("%w %q: a previous azmount at %q was killed and left its mount behind: %s: %w", ErrMountpoint, dir, dir, how, syscall.ENOTCONN)
}

// unmountStale unmounts dir, a mount whose server is gone, when it is one
// of ours (its type in /proc/self/mountinfo is fsType): with umount(2) as
// root, else with fusermount3. It returns staleError, with why unmounting
// failed, when it is not ours or cannot be unmounted.
func unmountStale(dir string) error {
	if mountType(dir) != fsType {
		return staleError(dir)
	}
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EPERM) {
		if out, ferr := exec.Command("fusermount3", "-u", dir).CombinedOutput(); ferr != nil {
			err = fmt.Errorf("fusermount3 -u: %w: %s", ferr, strings.TrimSpace(string(out)))
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("%w (unmounting it failed: %w)", staleError(dir), err)
	}
	return nil
}

// mountType returns the file system type of the topmost mount at dir, from
// /proc/self/mountinfo, or "unknown type" when it finds none.
func mountType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown type"
	}
	// The mountpoint itself cannot be resolved (stat fails), its parent can.
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(parent, filepath.Base(abs))
	}
	mounts, err := mountinfo.Self()
	if err != nil {
		return "unknown type"
	}
	if m, ok := mountinfo.Top(mounts, abs); ok {
		return m.Type
	}
	return "unknown type"
}

// isEmpty reports whether directory dir has no entries.
func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch _, err := f.Readdirnames(1); {
	case errors.Is(err, io.EOF):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

// raiseReadAhead sets the read-ahead of the backing device of the file
// system mounted at dir, so that sequential readers get large READ
// requests in flight. It needs root.
func raiseReadAhead(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(path, []byte(readAheadKB), 0); err != nil {
		return fmt.Errorf("set read-ahead: %w", err)
	}
	return nil
}

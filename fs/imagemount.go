package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/azfs/azfs/diskimage/loopmount"
)

// ImageMount says what MountImage mounts.
type ImageMount struct {
	// Path is the disk image's path in the point (as the point's mount
	// shows it).
	Path string
	// Partition is the partition to mount, from 1; 0 mounts the image
	// itself.
	Partition int
	// Mountpoint is where the kernel mounts the image's file system.
	Mountpoint string
}

// MountImage mounts the file system inside a disk image of point p
// through the kernel, for the file systems azfs does not read itself
// (xfs, btrfs, NTFS, …): it mounts p with FUSE in a private temporary
// directory, picks the file to mount (the image, its partition m.Partition,
// decrypted when it is a LUKS volume that one of opts.LUKSKeys opens) and
// mounts it with loopmount (a read-only loop device, mount -o ro and no
// journal replay) at m.Mountpoint. ready is called once it is mounted.
// It holds the mounts until ctx ends, then unmounts both and detaches the
// loop device. It needs root.
func MountImage(ctx context.Context, src Source, p Point, m ImageMount, opts Options, ready func(*loopmount.Mounted)) (err error) {
	root, err := NewPointRoot(src, p, opts)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "azfs-image-")
	if err != nil {
		return fmt.Errorf("mount image: %w", err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mount image: %w", err)
	}
	defer func() {
		if rerr := os.Remove(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("mount image: %w", rerr)
		}
	}()
	server, err := Mount(tmp, root, opts)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := server.Unmount(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount the point from %q: %w", tmp, uerr))
		}
	}()
	vol, err := loopmount.Volume(filepath.Join(tmp, m.Path), m.Partition)
	if err != nil {
		return err
	}
	mounted, err := loopmount.Mount(ctx, vol, m.Mountpoint)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(mounted)
	}
	<-ctx.Done()
	return mounted.Unmount()
}

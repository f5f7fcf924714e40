// Package loopmount mounts a file system image read-only through the
// kernel, for the file systems azfs does not read itself (xfs, btrfs,
// NTFS, …): the image, a plain file such as a partition or a decrypted
// LUKS volume in an azfs mount, is attached to a read-only loop device and
// mounted with the options that keep the kernel from replaying a journal.
// It needs root.
package loopmount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/luks"
	"github.com/azfs/azfs/internal/loopdev"
)

var (
	// ErrNotMountable is wrapped by the errors about an image the kernel
	// cannot mount as it is: a partitioned disk, a locked LUKS volume, an
	// LVM physical volume.
	ErrNotMountable = errors.New("cannot be mounted as it is")
	// ErrNoPartition is wrapped by the error about a partition number
	// the disk does not have.
	ErrNoPartition = errors.New("no such partition")
)

// Volume returns the file to mount for the image at path in an azfs mount:
// its partition number partition (0: the image itself), decrypted when it
// is a LUKS volume. It fails with ErrNotMountable for a partitioned disk
// without a partition number and for a LUKS volume the mount could not
// unlock.
func Volume(path string, partition int) (string, error) {
	vol := path
	if partition > 0 {
		vol = filepath.Join(path+diskimage.ContentsSuffix, "p"+strconv.Itoa(partition))
		if _, err := os.Stat(vol); err != nil {
			return "", fmt.Errorf("%q: partition %d: %w (%w)", path, partition, ErrNoPartition, err)
		}
	}
	head := make([]byte, diskimage.HeadSize)
	f, err := os.Open(vol)
	if err != nil {
		return "", fmt.Errorf("open %q: %w", vol, err)
	}
	n, err := f.ReadAt(head, 0)
	f.Close()
	if n == 0 && err != nil {
		return "", fmt.Errorf("read %q: %w", vol, err)
	}
	head = head[:n]
	switch diskimage.Detect(head) {
	case diskimage.PartitionTable:
		return "", fmt.Errorf("%q %w: it holds a partition table: choose a partition (--partition N, the pN in %q)", vol, ErrNotMountable, vol+diskimage.ContentsSuffix)
	case diskimage.LUKS:
		dec := filepath.Join(vol+diskimage.ContentsSuffix, diskimage.DecryptedName)
		if _, err := os.Stat(dec); err != nil {
			return "", fmt.Errorf("%q %w: a LUKS volume that no given passphrase or key file unlocks (--luks-passphrase-file, --luks-key-file)", vol, ErrNotMountable)
		}
		return dec, nil
	}
	if luks.Is(head) {
		return "", fmt.Errorf("%q %w: an unsupported LUKS volume", vol, ErrNotMountable)
	}
	return vol, nil
}

// Mounted is a file system the kernel mounted from an image.
type Mounted struct {
	// Dev is the loop device; Dir the mountpoint; Type the file system
	// type blkid found.
	Dev, Dir, Type string
}

// Mount attaches image to a read-only loop device and mounts its file
// system read-only at dir, with the options of its type that replay no
// journal (ext3/4: noload; xfs: norecovery; btrfs: rescue=nologreplay).
func Mount(ctx context.Context, image, dir string) (*Mounted, error) {
	dev, err := loopdev.Attach(ctx, image, true)
	if err != nil {
		return nil, err
	}
	m := &Mounted{Dev: dev, Dir: dir}
	m.Type, err = fsType(ctx, dev)
	if err == nil {
		var opts string
		if opts, err = options(m.Type); err == nil {
			err = run(ctx, "mount", "-t", m.Type, "-o", opts, dev, dir)
		}
	}
	if err != nil {
		if derr := loopdev.Detach(dev); derr != nil {
			err = fmt.Errorf("%w (and %w)", err, derr)
		}
		return nil, fmt.Errorf("mount %q at %q: %w", image, dir, err)
	}
	return m, nil
}

// Unmount unmounts the file system and detaches its loop device.
func (m *Mounted) Unmount() error {
	if err := run(context.Background(), "umount", m.Dir); err != nil {
		return fmt.Errorf("unmount %q: %w", m.Dir, err)
	}
	return loopdev.Detach(m.Dev)
}

// fsType returns the file system type blkid finds on dev.
func fsType(ctx context.Context, dev string) (string, error) {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", dev).Output()
	t := strings.TrimSpace(string(out))
	if err != nil || t == "" {
		return "", fmt.Errorf("%w: blkid finds no file system on it", ErrNotMountable)
	}
	return t, nil
}

// options returns the mount options for a file system of type t.
func options(t string) (string, error) {
	switch t {
	case "ext3", "ext4":
		return "ro,noload", nil
	case "xfs":
		return "ro,norecovery", nil
	case "btrfs":
		return "ro,rescue=nologreplay", nil
	case "LVM2_member":
		return "", fmt.Errorf("%w: an LVM physical volume: its logical volumes need device-mapper (vgchange -ay)", ErrNotMountable)
	case "crypto_LUKS":
		return "", fmt.Errorf("%w: a LUKS volume: mount its decrypted file", ErrNotMountable)
	}
	return "ro", nil
}

// run runs a command, with what it printed in its error.
func run(ctx context.Context, name string, args ...string) error {
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

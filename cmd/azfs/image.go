package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/diskimage/loopmount"
	azfs "github.com/azfs/azfs/fs"
	"github.com/azfs/azfs/repo/open"
)

func newImageMountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mount POINT:PATH MOUNTPOINT",
		Short: "Mount the file system inside a backed-up disk image through the kernel (root)",
		Long: `image mount mounts the file system inside a disk image of a recovery point
read-only through the kernel, for file systems azmount does not show itself
(xfs, btrfs, NTFS, ...): the point is mounted in a private directory, the
image's partition (--partition N) is decrypted when it is a LUKS volume
(--luks-passphrase-file, --luks-key-file), attached to a read-only loop device
and mounted with mount -o ro and no journal replay. It runs in the foreground;
Ctrl-C or SIGTERM unmounts everything and detaches the loop device. It needs
root. POINT is a date (its last point), a time, an ID prefix or 'latest';
PATH is the image's path in the point.`,
		Example: `  azfs image mount latest:/var/lib/vm/disk.img /mnt/vm --partition 2 --luks-passphrase-file vm.pass
  azfs image mount 2026-12-01:/srv/xfs.img /mnt/xfs`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	partition := fs.Int("partition", 0, "mount partition `N` (p1, p2, ... in the image's .contents) instead of the whole image")
	luksFlags := cli.AddLUKSFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 2 {
			return cli.Usagef("name the image as POINT:PATH and a mountpoint (see 'azfs image mount --help')")
		}
		sel, path, ok := strings.Cut(args[0], ":")
		if !ok || sel == "" || path == "" {
			return cli.Usagef("name the image as POINT:PATH, for example latest:/var/lib/vm/disk.img")
		}
		if *partition < 0 {
			return cli.Usagef("--partition must be a partition number from 1")
		}
		if os.Geteuid() != 0 {
			return fmt.Errorf("azfs image mount needs root (loop devices and mount); azmount shows partitions, LUKS volumes, ext4 and FAT without it")
		}
		keys, err := luksFlags.Keys()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		r, p, err := open.ReadPoint(ctx, target.target(), open.ReadOptions{Warn: warnf}, sel)
		if err != nil {
			return err
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		opts := azfs.Options{LUKSKeys: keys, Logger: logger}
		pt := azfs.Point{ID: p.ID, Machine: p.Machine, Time: p.Time, Root: p.Root}
		m := azfs.ImageMount{Path: path, Partition: *partition, Mountpoint: args[1]}
		return azfs.MountImage(ctx, r.Area, pt, m, opts, func(mt *loopmount.Mounted) {
			fmt.Fprintf(os.Stderr, "%q (%s) of point %s mounted read-only at %s from %s; Ctrl-C or SIGTERM unmounts\n",
				path, mt.Type, p.ID.Short(), mt.Dir, mt.Dev)
		})
	}
	return cmd
}

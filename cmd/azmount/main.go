// Command azmount mounts recovery points of an azfs vault read-only through
// FUSE, so files are recovered with cp, rsync or tar. It runs in the
// foreground and unmounts on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	// Policies name time zones: every machine must find them, whatever
	// its system holds.
	_ "time/tzdata"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	azfs "github.com/azfs/azfs/fs"
	"github.com/azfs/azfs/fs/vaultmount"
	"github.com/azfs/azfs/internal/profile"
)

func main() {
	// AZFS_CPUPROFILE and AZFS_MEMPROFILE: where the mount spends its time.
	stopProfile, err := profile.FromEnv()
	if err == nil {
		err = newRootCmd().Execute()
		if perr := stopProfile(); perr != nil {
			fmt.Fprintln(os.Stderr, "azmount: "+perr.Error())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "azmount: "+cli.Message(err))
		os.Exit(cli.ExitCode(err))
	}
}

// newRootCmd returns the azmount command.
func newRootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "azmount [--tag T...] [--point 2024-05-01 | 2024-05-01T10:30 | ID-prefix | latest] MOUNTPOINT",
		Short: "Mount recovery points of an azfs vault read-only through FUSE",
		Long: `azmount mounts recovery points of an azfs vault read-only through FUSE, so
files are recovered with cp, rsync or tar. It runs in the foreground and
unmounts on SIGINT or SIGTERM. Without --point it mounts every point as
<machine>/<time>. With --tag it serves only the points with the tags, and
--point picks among them.

Beside each backed-up disk image (a partition table, a LUKS volume, an ext4
or FAT file system) a directory NAME.contents shows what it holds: its
partitions as files p1, p2, …, LUKS volumes decrypted as files when
--luks-passphrase-file or --luks-key-file opens them, and ext4 and FAT
files as ordinary read-only trees.`,
		Example: `  azmount /mnt/restore
  azmount --point latest /mnt/restore
  azmount --tag pg --point latest /mnt/restore
  azmount --machine web01 --point 2026-12-01 /mnt/restore
  azmount --vault-credentials restore.creds --passphrase-file web01.pass /mnt/restore
  azmount --point latest --luks-passphrase-file vm.pass /mnt/restore   # then ls /mnt/restore/var/lib/vm/disk.img.contents`,
		// Errors are printed once, by main, as one line with the exit
		// code they map to.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.Version = cli.ReadBuildInfo().String()
	cmd.SetVersionTemplate("azmount {{.Version}}\n")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usagef("%v", err) })
	fs := cmd.Flags()
	fs.SortFlags = false
	vaultPath := fs.String("vault", "", "vault `PATH` (default: $AZFS_VAULT, else this machine's default vault)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine does not hold the keys (default: $AZFS_PASSPHRASE_FILE)")
	passCmd := fs.String("passphrase-command", "", "run the shell command `CMD` and read the passphrase from its output, when this machine does not hold the keys (default: $AZFS_PASSPHRASE_COMMAND)")
	machine := fs.String("machine", "", "mount machine `NAME`'s points (default: this machine)")
	creds := fs.String("vault-credentials", "", "open the vault a credentials `FILE` names (recovery on another machine)")
	connFile := fs.String("connection-string-file", "", "a vault in Azure Blob Storage: read the storage account's connection string from `FILE`")
	cli.AddShareFlags(fs)
	privKey := fs.String("private-key", "", "certificate mode: the certificate's private key `FILE` (PEM, PKCS#8 or .pfx)")
	privPass := fs.String("private-key-password-file", "", "read the .pfx password from `FILE`")
	pointSel := fs.String("point", "", "mount one point: a date (its last point), a time, an ID prefix or 'latest'; default: all points as <machine>/<time>")
	tags := cli.AddTagFilterFlag(fs, "serve only the points (with --point: select among the points)")
	cacheSize := fs.String("cache-size", "320MiB", "memory for the mount's caches: decrypted chunks, tree parts, pack segments (the process stays within about this plus 64 MiB)")
	diskSize := fs.String("disk-cache", "", "disk for fetched chunks and index files, kept encrypted across mounts under the azfs cache directory; 0 disables (default 4GiB for a blob vault, 0 for a directory vault)")
	readAhead := fs.Int("read-ahead", 4, "chunks fetched ahead for sequential readers")
	allowOther := fs.Bool("allow-other", false, "let other users read the mount, each file as its mode allows (restored home directories for their owners); as a user other than root this needs user_allow_other in /etc/fuse.conf")
	luksFlags := cli.AddLUKSFlags(fs)
	noContents := fs.Bool("no-image-contents", false, "do not show NAME.contents (partitions, decrypted LUKS volumes, ext4 and FAT files) beside disk images")
	debugLog := fs.Bool("debug", false, "log debug messages")
	manDir := fs.String(cli.ManPagesFlag, "", "write the man page to `DIR` ('make man')")
	fs.Lookup(cli.ManPagesFlag).Hidden = true
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		if *manDir != "" {
			return cli.WriteManPages(cmd, *manDir)
		}
		if len(args) != 1 {
			return cli.Usagef("name exactly one mountpoint (see 'azmount --help')")
		}
		filter, err := tags.Filter()
		if err != nil {
			return err
		}
		cacheBytes, err := cli.ParseSize("cache-size", *cacheSize)
		if err != nil {
			return err
		}
		luksKeys, err := luksFlags.Keys()
		if err != nil {
			return err
		}
		diskBytes := int64(-1) // chosen by the vault's location
		if *diskSize != "" {
			if diskBytes, err = cli.ParseSize("disk-cache", *diskSize); err != nil {
				return err
			}
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			// Without a limit the collector would let the heap grow to
			// twice the caches.
			azfs.LimitHeap(cacheBytes)
		}
		level := slog.LevelInfo
		if *debugLog {
			level = slog.LevelDebug
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		target := cli.NewTarget(*vaultPath, cli.PassphraseSource{File: *passFile, Command: *passCmd})
		target.Machine, target.Credentials, target.PrivateKey, target.PrivateKeyPassFile, target.ConnectionStringFile = *machine, *creds, *privKey, *privPass, *connFile
		mountpoint := args[0]
		m, err := vaultmount.Mount(ctx, mountpoint, vaultmount.Options{Target: target, Point: *pointSel, Tags: filter, DiskBytes: diskBytes,
			FS: azfs.Options{CacheBytes: cacheBytes, ReadAhead: *readAhead, AllowOther: *allowOther, Logger: logger, NoImageContents: *noContents, LUKSKeys: luksKeys}})
		if err != nil {
			return err
		}
		if *pointSel != "" && *pointSel != "latest" && m.Points[0].ID.String() != *pointSel {
			p := m.Points[0]
			fmt.Fprintf(os.Stderr, "azmount: %q is point %s (%s, %s)\n", *pointSel, p.ID.Short(), p.Machine, p.Time.Local().Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintf(os.Stderr, "azmount: %d point(s) of vault %s mounted read-only at %s; Ctrl-C or SIGTERM unmounts\n", len(m.Points), m.Reading.Area.ID(), mountpoint)
		go unmountOnSignal(ctx, stop, m.Server, mountpoint, logger)
		m.Wait()
		m.Close()
		t := cli.Requests.Tally()
		logger.Info("unmounted", "mountpoint", mountpoint, "requests", t.Requests, "loads", t.Loads, "bytes_down", t.BytesDown)
		return nil

	}
	return cmd
}

// unmountOnSignal unmounts after the first SIGINT or SIGTERM, retrying for a
// few seconds while the mount is busy. A second signal, or a mount still
// busy after that, detaches it lazily: the kernel completes the unmount when
// the last open file is closed, and azmount exits.
func unmountOnSignal(ctx context.Context, stop func(), server *fuse.Server, mountpoint string, logger *slog.Logger) {
	<-ctx.Done()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	stop()
	for range 25 {
		if err := server.Unmount(); err == nil {
			return
		}
		logger.Warn("unmount failed: the mount is busy; retrying (signal again to detach it now)", "mountpoint", mountpoint)
		select {
		case <-again:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	logger.Warn("detaching the busy mount (lazy unmount)", "mountpoint", mountpoint)
	if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
		logger.Error("lazy unmount failed", "mountpoint", mountpoint, "err", err)
	}
}

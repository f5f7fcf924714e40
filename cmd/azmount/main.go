// Command azmount mounts recovery points of an azfs vault read-only through
// FUSE, so files are recovered with cp, rsync or tar. It runs in the
// foreground and unmounts on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"
	// Policies name time zones: every machine must find them, whatever
	// its system holds.
	_ "time/tzdata"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cache/diskcache"
	"github.com/azfs/azfs/cmd/internal/cli"
	azfs "github.com/azfs/azfs/fs"
	"github.com/azfs/azfs/internal/profile"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
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

// blobDiskCache is --disk-cache for a vault in a blob container. A vault in
// a directory gets none by default: the cache would copy local files.
const blobDiskCache = 4 << 30

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
			debug.SetMemoryLimit(azfs.MemoryLimit(cacheBytes))
		}
		level := slog.LevelInfo
		if *debugLog {
			level = slog.LevelDebug
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		closeCache := func() {}
		defer func() { closeCache() }()
		_, _, segmentBytes := azfs.MemoryShares(cacheBytes)
		target := cli.NewTarget(*vaultPath, cli.PassphraseSource{File: *passFile, Command: *passCmd})
		target.Machine, target.Credentials, target.PrivateKey, target.PrivateKeyPassFile, target.ConnectionStringFile = *machine, *creds, *privKey, *privPass, *connFile
		r, err := open.ForReading(ctx, target, open.ReadOptions{
			SegmentBytes: segmentBytes,
			Prepare: func(o *open.Opened) {
				// Copies of blobs that reads find damaged or missing are
				// remembered in the vault, for the next backup to store again.
				o.Area.SaveDamageAsFound()
				if diskBytes < 0 {
					diskBytes = 0
					if location.IsBlob(o.Location) {
						diskBytes = blobDiskCache
					}
				}
				if diskBytes > 0 {
					dc, err := openDiskCache(o, diskBytes, logger)
					if err != nil {
						logger.Warn("mounting without a disk cache", "err", err)
						return
					}
					closeCache = func() { closeDiskCache(dc, logger) }
					o.Area.SetCache(dc)
				}
			},
			Warn: func(msg string) { logger.Warn(msg) },
		})
		if err != nil {
			return err
		}
		o := r.Opened
		// Points without the tags asked for are not served.
		if r.Live, err = filter.Matching(r.Live); err != nil {
			return err
		}
		opts := azfs.Options{CacheBytes: cacheBytes, ReadAhead: *readAhead, AllowOther: *allowOther, Logger: logger,
			NoImageContents: *noContents, LUKSKeys: luksKeys}
		mountpoint := args[0]
		var served []*repo.Point
		var root gofs.InodeEmbedder
		if *pointSel != "" {
			p, err := r.Point(*pointSel)
			if err != nil {
				return err
			}
			if p.ID.String() != *pointSel && *pointSel != "latest" {
				fmt.Fprintf(os.Stderr, "azmount: %q is point %s (%s, %s)\n", *pointSel, p.ID.Short(), p.Machine, p.Time.Local().Format("2006-01-02 15:04:05"))
			}
			served = []*repo.Point{p}
		} else {
			served = r.Live
		}
		opts.NoXattrs = true
		fsPoints := make([]azfs.Point, len(served))
		for i, p := range served {
			fsPoints[i] = azfs.Point{ID: p.ID, Machine: p.Machine, Time: p.Time, Root: p.Root}
			if p.Stats.Xattrs > 0 {
				opts.NoXattrs = false
			}
		}
		if *pointSel != "" {
			root, err = azfs.NewPointRoot(o.Area, fsPoints[0], opts)
		} else {
			root, err = azfs.NewAllPointsRoot(o.Area, fsPoints, opts)
		}
		if err != nil {
			return err
		}
		server, err := azfs.Mount(mountpoint, root, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "azmount: %d point(s) of vault %s mounted read-only at %s; Ctrl-C or SIGTERM unmounts\n", len(served), o.Area.ID(), mountpoint)
		go unmountOnSignal(ctx, stop, server, mountpoint, logger)
		server.Wait()
		// The vault's files kept open for reading.
		if err := storage.Close(o.Storage); err != nil {
			logger.Warn("closing the vault", "err", err)
		}
		// Damage the reads found and the background save has not stored yet.
		saveCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := o.Area.SaveDamage(saveCtx); err != nil && !errors.Is(err, storage.ErrPermission) {
			logger.Warn("cannot remember the damage reads found in the vault; run azfs check to find it again", "err", cli.Message(err))
		}
		cancel()
		t := cli.Requests.Tally()
		logger.Info("unmounted", "mountpoint", mountpoint, "requests", t.Requests, "loads", t.Loads, "bytes_down", t.BytesDown)
		return nil

	}
	return cmd
}

// openDiskCache opens the disk cache of the machine area o has open:
// <azfs cache dir>/<area id>/blobs-<machine>, beside the backups' file cache.
func openDiskCache(o *open.Opened, maxBytes int64, logger *slog.Logger) (*diskcache.Cache, error) {
	root, err := keyring.CacheDir()
	if err != nil {
		return nil, err
	}
	return diskcache.Open(filepath.Join(root, o.Area.ID(), "blobs-"+o.Machine), diskcache.Options{
		MaxBytes: maxBytes,
		OnPutError: func(err error) {
			logger.Warn("disk cache: cannot store fetched data; reads go on without it (further failures are not logged)", "err", err)
		},
	})
}

// closeDiskCache closes dc and logs what it did.
func closeDiskCache(dc *diskcache.Cache, logger *slog.Logger) {
	s := dc.Stats()
	logger.Debug("disk cache", "hits", s.Hits, "misses", s.Misses, "stored", s.Puts, "evicted", s.Evictions,
		"store_errors", s.PutErrors, "objects", s.Objects, "bytes", s.Bytes)
	if err := dc.Close(); err != nil {
		logger.Warn("disk cache", "err", err)
	}
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

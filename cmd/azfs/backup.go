package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
)

// backupMemoryLimit is the backup's soft heap limit (GOMEMLIMIT overrides it).
const backupMemoryLimit = 192 << 20

// blobUploads is the default number of concurrent pack uploads to a blob
// vault: enough to hide a network round trip behind the others.
const blobUploads = 8

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH... | --stdin | --stdin-from-command -- CMD [ARG...]",
		Short: "Back up paths, or a stream (stdin, a command's output), into the vault as a new recovery point",
		Example: `  azfs backup /home /etc
  azfs backup --set system --exclude-caches -x /
  azfs backup --json --exclude '*.tmp' /srv/data
  azfs backup --stdin-from-command --stdin-filename db.sql --tag pg -- pg_dump mydb
  pg_dump mydb | azfs backup --stdin --stdin-filename db.sql
  azfs backup --read-devices /dev/vg0/root-snap`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	uploads := fs.Int("uploads", 0, "packs (16 MiB each) uploaded at once (default 2 for a local vault, 8 for a blob vault)")
	quiet := fs.BoolP("quiet", "q", false, "no progress output")
	verbose := fs.BoolP("verbose", "v", false, "when stderr is not a terminal, print a progress line every 10 seconds (on a terminal it is redrawn in place anyway)")
	wait := fs.Bool("wait", false, "when another backup of this machine is running (the agent's), wait for it to end instead of refusing")
	set := fs.String("set", "", "the backup set `NAME` of the point (letters, digits, '.', '_', '-'; default: the set of its paths): retention applies per set")
	verifyReused := fs.Bool("verify-reused", false, "read back and authenticate every chunk the backup reuses from the vault; a damaged one is stored again from the source")
	tags := fs.StringArray("tag", nil, "label the point with the tag `T` (letters, digits, '.', '_', '-', ':', '='); repeatable")
	compression := fs.String("compression", "fast", "how hard chunks are compressed: fast (zstd's fastest level) or small (zstd's default level: about 4% less stored for about 1.6 times the CPU)")
	readDevices := fs.Bool("read-devices", false, "store each block device named or met (an LVM or ZFS snapshot, a disk) as a file of its content, not as a device node; read whole on every run")
	selFlags := addSelectFlags(fs)
	streamFlags := addStreamFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.Changed("set") {
			if err := repo.CheckSetName(*set); err != nil {
				return cli.Usagef("--set: %v", err)
			}
		}
		if _, err := repo.NormalizeTags(*tags); err != nil {
			return cli.Usagef("--tag: %v", err)
		}
		compress, err := pack.ParseCompression(*compression)
		if err != nil {
			return cli.Usagef("--compression: %v", err)
		}
		sel, err := selFlags.selection()
		if err != nil {
			return err
		}
		status := cli.NewStatus(os.Stderr)
		warn := func(msg string) { status.Printf("azfs: warning: %s\n", cli.OneLine(msg)) }
		stream, err := streamFlags.stream(ctx, fs, selFlags)
		if err != nil {
			return err
		}
		var paths []string
		if stream != nil {
			paths = []string{"/" + stream.Name}
		} else if paths, err = selFlags.paths(fs.Args(), warn); err != nil {
			return err
		}
		if len(paths) == 0 {
			return cli.Usagef("usage: azfs backup [--vault PATH] [--json] [--wait] [--set NAME] [--tag T...] [--exclude PATTERN...] [--files-from FILE] PATH... | --stdin [--stdin-filename NAME] | --stdin-from-command [--stdin-filename NAME] -- CMD ARGS...")
		}
		setBackupMemoryLimit()
		o, err := open.Machine(ctx, target.target())
		if err != nil {
			return err
		}
		holder := agent.Holder{PID: os.Getpid(), What: "azfs backup", Paths: paths}
		lock, err := lockBackup(ctx, o, holder, *wait, func(h agent.Holder) {
			fmt.Fprintf(os.Stderr, "waiting for the backup of machine %s that is running: %s\n", o.Machine, cli.OneLine(h.String()))
		})
		if err != nil {
			return err
		}
		defer lock.Unlock()
		req := backupRequest{
			paths:        paths,
			stream:       stream,
			tags:         *tags,
			set:          *set,
			uploads:      *uploads,
			verifyReused: *verifyReused,
			compression:  compress,
			readDevices:  *readDevices,
			selection:    sel,
			onError: func(path string, err error) {
				// A file the interruption stopped is not skipped: the
				// backup stops, and says so once.
				if ctx.Err() == nil {
					status.Printf("azfs: skipped %s\n", cli.NamedError(path, err))
				}
			},
			warn: warn,
			onChanged: func(path string) {
				status.Printf("azfs: warning: %q kept changing while it was read; the point holds what the last read saw, marked changed during backup\n", path)
			},
		}
		if *verbose {
			req.onImage = func(path string, img backup.Image) { status.Printf("azfs: %s\n", imageLine(path, img)) }
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		if !*quiet && (status.Terminal() || *verbose) {
			interval := 250 * time.Millisecond
			if !status.Terminal() {
				interval = 10 * time.Second
			}
			req.progress = &backup.Progress{}
			go func() { status.ShowProgress(req.progress, interval, stop); close(done) }()
		} else {
			close(done)
		}
		p, err := runBackup(ctx, o, req)
		close(stop)
		<-done
		if p == nil {
			if ctx.Err() != nil {
				return fmt.Errorf("backup %w: no recovery point was committed", cli.ErrInterrupted)
			}
			if stream != nil && err != nil {
				return fmt.Errorf("%w; no point committed", err)
			}
			return err
		}
		if *asJSON {
			out := struct {
				Point   string          `json:"point"`
				Machine string          `json:"machine"`
				Time    time.Time       `json:"time"`
				Partial bool            `json:"partial"`
				Stats   repo.PointStats `json:"stats"`
				Seconds float64         `json:"seconds"`
				// Storage is what the run asked of the vault's storage.
				Storage storage.Tally `json:"storage"`
				// PeakRSS is the process's peak memory (0 where unknown).
				PeakRSS uint64 `json:"peak_rss_bytes"`
			}{p.ID.String(), p.Machine, p.Time, p.Partial, p.Stats, p.Stats.Duration.Seconds(), cli.Requests.Tally(), cli.PeakRSS()}
			if err := printJSON(out); err != nil {
				return err
			}
		} else if !*quiet {
			s := p.Stats
			fmt.Fprintf(os.Stderr, "point %s committed: %s (%d new, %d changed, %d unchanged), %s, %s; read %s, stored %s in %s\n",
				p.ID.Short(), cli.Count(s.Files, "file"), s.FilesNew, s.FilesChanged, s.FilesUnchanged, cli.Count(s.Dirs, "dir"), cli.FormatBytes(s.Bytes),
				cli.FormatBytes(s.BytesRead), cli.FormatBytes(s.BytesStored), s.Duration.Round(time.Millisecond))
			if s.Images > 0 {
				fmt.Fprintf(os.Stderr, "%d disk images (%d block devices) cut in fixed blocks; their zeros and holes not stored\n", s.Images, s.Devices)
			}
			if s.Vanished == 1 {
				fmt.Fprintln(os.Stderr, "1 entry was deleted while the backup ran (not in the point)")
			} else if s.Vanished > 1 {
				fmt.Fprintf(os.Stderr, "%d entries were deleted while the backup ran (not in the point)\n", s.Vanished)
			}
			if s.ChangedWhileRead > 0 {
				fmt.Fprintf(os.Stderr, "%s changed while being read (stored as read, marked changed during backup)\n", cli.Count(s.ChangedWhileRead, "file"))
			}
			if s.BlobsStoredAgain > 0 {
				fmt.Fprintf(os.Stderr, "stored again %s whose copies in the vault were missing or damaged: the points that need them read the new copies\n", cli.Count(s.BlobsStoredAgain, "chunk"))
			}
			if *verifyReused {
				fmt.Fprintf(os.Stderr, "verified %s\n", cli.Count(s.BlobsVerified, "reused chunk"))
			}
		}
		return err
	}
	return cmd
}

// imageLine says how a backup read the disk image at path.
func imageLine(path string, img backup.Image) string {
	what := "a disk image"
	switch {
	case img.Device:
		what = "a block device, read as a disk image"
	case img.VHD:
		what = fmt.Sprintf("a fixed VHD (a %s disk and its footer)", cli.FormatBytes(img.DataSize))
	}
	return fmt.Sprintf("%q: %s of %s, in blocks of %s", path, what, cli.FormatBytes(img.Size), cli.FormatBytes(img.Block))
}

// setBackupMemoryLimit sets the backup's soft heap limit, unless
// GOMEMLIMIT is set.
func setBackupMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The pipeline's memory is mostly short-lived, pointer-free pack and
		// chunk buffers: a soft limit has the collector reclaim them before
		// the heap doubles, at little CPU cost.
		debug.SetMemoryLimit(backupMemoryLimit)
	}
}

// lockBackup takes the lock that keeps two backups of the machine o has
// open apart on this host: at once, or with wait after the running one
// (calling waiting if it has to wait).
func lockBackup(ctx context.Context, o *open.Opened, h agent.Holder, wait bool, waiting func(agent.Holder)) (*agent.Lock, error) {
	dir, err := o.StateDir()
	if err != nil {
		return nil, err
	}
	var lock *agent.Lock
	if wait {
		lock, err = agent.WaitLock(ctx, dir.BackupLock(), h, time.Second, waiting)
	} else {
		lock, err = agent.TryLock(dir.BackupLock(), h)
	}
	var locked *agent.LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("a backup of machine %s is running: %s; wait for it to end, or pass --wait", o.Machine, locked.Holder)
	}
	return lock, err
}

// backupRequest is one backup, on demand or scheduled.
type backupRequest struct {
	paths []string
	// stream, when set, is backed up instead of paths (backup.Options).
	stream  *backup.Stream
	tags    []string
	set     string // the backup set's name; empty: the set of the paths
	uploads int    // 0: the default for the vault's kind
	// verifyReused authenticates every reused blob (backup.Options).
	verifyReused bool
	// compression trades CPU for stored bytes (backup.Options).
	compression pack.Compression
	// readDevices stores block devices as files of their content.
	readDevices bool
	// onImage, when set, is told of each disk image read.
	onImage func(path string, img backup.Image)
	// selection is what to leave out (nil: the defaults, see backup.Options).
	selection *selection.Selection
	// progress, when set, is updated as the run goes.
	progress *backup.Progress
	onError  func(path string, err error) // a file or directory skipped
	// onChanged is called for a file that kept changing while read.
	onChanged func(path string)
	warn      func(msg string)
}

// runBackup backs up the machine o has open, whose backup lock the caller
// holds, and records the point it commits in this host's state.
func runBackup(ctx context.Context, o *open.Opened, req backupRequest) (*repo.Point, error) {
	if err := startCertSession(ctx, o); err != nil {
		return nil, err
	}
	cacheDir, err := keyring.CacheDir()
	if err != nil {
		return nil, err
	}
	// A key epoch of its own (certificate mode) gets a cache of its own:
	// chunk lists of one epoch must not be reused in another.
	cacheName := "files-" + o.Machine
	if c := o.Area.Keys().Certificate; c != "" {
		cacheName += "-" + c[:16]
	}
	files, err := filecache.Open(filepath.Join(cacheDir, o.Area.ID(), cacheName))
	if err != nil {
		req.warn(fmt.Sprintf("%v; every file will be read", err))
		files = nil
	}
	if files != nil {
		defer files.Close()
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		return nil, err
	}
	// azfs's own state is never backed up: the config dir (keyring, this
	// host's state) and the keyring file itself (another hard link of it
	// too), the cache, and a vault on local disk.
	exclude := []string{cacheDir, configDir, filepath.Join(configDir, keyring.FileName)}
	if location.IsLocal(o.Location) {
		exclude = append(exclude, o.Location)
	}
	opts := backup.Options{
		Exclude:  exclude,
		Select:   req.selection,
		Stream:   req.stream,
		Tags:     req.tags,
		Set:      req.set,
		Machine:  o.Machine,
		Hostname: hoststate.Hostname(),
		Files:    files,
		Uploads:  req.uploads,
		Progress: req.progress,
		OnError:  req.onError,

		OnChanged:    req.onChanged,
		VerifyReused: req.verifyReused,
		Compression:  req.compression,
		ReadDevices:  req.readDevices,
		OnImage:      req.onImage,
	}
	if req.stream == nil {
		opts.Paths = req.paths
	}
	if opts.Uploads <= 0 {
		opts.Uploads = 2
		if location.IsBlob(o.Location) {
			opts.Uploads = blobUploads
		}
	}
	if !o.Area.Keys().WriteOnly() {
		// A rolled-back vault is reported before this run's point makes
		// it look current again (package rollback).
		if _, err := o.State(ctx, req.warn); err != nil {
			return nil, err
		}
	}
	p, err := backup.Run(ctx, o.Area, opts)
	if p != nil {
		o.NoteCommitted(p, req.warn)
		dir, derr := o.StateDir()
		if derr == nil {
			derr = dir.SaveLast(hoststate.Last{Point: p.ID.String(), Time: p.Time, Partial: p.Partial, Set: p.SetName})
		}
		if derr != nil {
			req.warn("cannot record the point in this host's state: " + cli.Message(derr))
		}
	}
	return p, err
}

// startCertSession prepares the machine o has open for a backup under the
// vault's current certificate, verified (repo.Root.StartBackupSession),
// keeping a new key epoch in this host's keyring.
func startCertSession(ctx context.Context, o *open.Opened) error {
	c, err := o.CurrentCertificate(ctx)
	if err != nil {
		return err
	}
	var mode *repo.CertMode
	if c != nil {
		mode = open.CertMode(c)
	}
	keep := func(next *keys.KeySet) error {
		o.Entry.Keys = next
		return o.Ring.Save()
	}
	v, moved, err := o.VaultRoot().StartBackupSession(ctx, o.Area, o.Machine, mode, keep)
	if errors.Is(err, repo.ErrNoCertificateForWriteOnly) {
		return fmt.Errorf("vault at %s: %w", o.Location, err)
	}
	if err != nil {
		return err
	}
	o.Area = v
	if moved {
		fmt.Fprintf(os.Stderr, "backing up to the vault's certificate %s from now on: new points open with its private key\n", c.Thumbprint())
	}
	return nil
}

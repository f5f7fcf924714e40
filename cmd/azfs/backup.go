package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

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
	compression := fs.String("compression", pack.CompressFast.String(), "how hard chunks are compressed: fast (the least CPU), balanced (about 6% less stored, about restic's size, for about 1.8 times fast's compression CPU) or small (about 9% less stored than fast, for about 4.5 times its compression CPU)")
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
		agent.SetMemoryLimit()
		o, err := open.Machine(ctx, target.target())
		if err != nil {
			return err
		}
		holder := agent.Holder{PID: os.Getpid(), What: "azfs backup", Paths: paths}
		lock, err := agent.LockBackup(ctx, o, holder, *wait, func(h agent.Holder) {
			fmt.Fprintf(os.Stderr, "waiting for the backup of machine %s that is running: %s\n", o.Machine, cli.OneLine(h.String()))
		})
		if err != nil {
			return err
		}
		defer lock.Unlock()
		req := agent.Request{Options: backup.Options{
			Paths:        paths,
			Stream:       stream,
			Tags:         *tags,
			Set:          *set,
			Uploads:      *uploads,
			VerifyReused: *verifyReused,
			Compression:  compress,
			ReadDevices:  *readDevices,
			Select:       sel,
			OnError: func(path string, err error) {
				// A file the interruption stopped is not skipped: the
				// backup stops, and says so once.
				if ctx.Err() == nil {
					status.Printf("azfs: skipped %s\n", cli.NamedError(path, err))
				}
			},
			OnChanged: func(path string) {
				status.Printf("azfs: warning: %q kept changing while it was read; the point holds what the last read saw, marked changed during backup\n", path)
			},
		}, Warn: warn, Tell: func(msg string) { fmt.Fprintln(os.Stderr, msg) }}
		if *verbose {
			req.OnImage = func(path string, img backup.Image) { status.Printf("azfs: %s\n", imageLine(path, img)) }
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		if !*quiet && (status.Terminal() || *verbose) {
			interval := 250 * time.Millisecond
			if !status.Terminal() {
				interval = 10 * time.Second
			}
			req.Progress = &backup.Progress{}
			go func() { status.ShowProgress(req.Progress, interval, stop); close(done) }()
		} else {
			close(done)
		}
		p, err := agent.Backup(ctx, o, req)
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

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/restore"
	"github.com/azfs/azfs/repo/storage"
)

func newRestoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore POINT[:/PATH] --target DIR",
		Short: "Write a recovery point, or a path of it, into a directory (no mount needed)",
		Long: `Restore writes a point back to a directory without mounting it: in parallel, sparse
files with their holes, and every entry's metadata exactly (owner, mode, times to the
nanosecond, xattrs, hard links, symlinks, devices, FIFOs). POINT is a date (its last
point), a time, an ID prefix or 'latest'; ':/PATH' restores that path of the point
(its contents, for a directory) instead of the whole point.

A file already in the target is compared chunk by chunk with the point before anything
is fetched, so running restore again after an interruption fetches only what is not
there yet. --overwrite if-changed trusts a file whose size and mtime are the point's
without reading it; never leaves every existing entry alone. A directory in the way of
a file is reported, never deleted.`,
		Example: `  azfs restore latest --target /srv/restore
  azfs restore 2026-12-01:/home/alice --target /home/alice --overwrite if-changed
  azfs restore latest --target /tmp/r --include '*.odt' --exclude /home/alice/.cache
  azfs restore latest --target /srv/r --vault-credentials vault.azcreds --machine web01 --passphrase-file pass.txt`,
		Args: cobra.ExactArgs(1),
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	dir := fs.String("target", "", "restore into `DIR` (created if missing)")
	include := fs.StringArray("include", nil, "restore only what matches `PATTERN`, with all below it (restic's syntax); repeatable")
	iinclude := fs.StringArray("iinclude", nil, "as --include, ignoring case; `PATTERN` repeatable")
	exclude := fs.StringArrayP("exclude", "e", nil, "leave out what matches `PATTERN`, with all below it; repeatable")
	iexclude := fs.StringArray("iexclude", nil, "as --exclude, ignoring case; `PATTERN` repeatable")
	overwrite := fs.String("overwrite", "always", "an entry already in the target: `always` replace it (a file's chunks that are right are kept), if-changed (a file of the same size and mtime is kept unread), never")
	verify := fs.Bool("verify", false, "read every restored file back and compare it with the point")
	workers := fs.Int("workers", 0, "pack spans (chunks next to each other in a pack, up to 4 MiB) fetched and written at once (default 4 per core; 32 for a blob vault)")
	asJSON := fs.Bool("json", false, "print a JSON summary")
	quiet := fs.BoolP("quiet", "q", false, "no progress and no summary")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *dir == "" {
			return cli.Usagef("name the directory to restore into with --target DIR")
		}
		sel, path := splitPointPath(args[0])
		opts := restore.Options{Verify: *verify, Workers: *workers}
		var err error
		if opts.Overwrite, err = restore.ParseOverwrite(*overwrite); err != nil {
			return err
		}
		if err := opts.Select(*include, *iinclude, *exclude, *iexclude); err != nil {
			return err
		}
		status := cli.NewStatus(os.Stderr)
		r, p, err := open.ReadPoint(ctx, target.target(), open.ReadOptions{Warn: warnf}, sel)
		if err != nil {
			return err
		}
		opts.OnError = func(path string, err error) { status.Printf("azfs: cannot restore %s\n", cli.NamedError(path, err)) }
		stop, done := make(chan struct{}), make(chan struct{})
		if !*quiet && !*asJSON && status.Terminal() {
			opts.Progress = &restore.Progress{}
			go func() { status.ShowRestoreProgress(opts.Progress, 250*time.Millisecond, stop); close(done) }()
		} else {
			close(done)
		}
		start := time.Now()
		res, err := r.Restore(ctx, p, path, *dir, opts)
		close(stop)
		<-done
		if err != nil && !errors.Is(err, restore.ErrIncomplete) {
			return err
		}
		elapsed := time.Since(start)
		if *asJSON {
			out := struct {
				Point   string         `json:"point"`
				Machine string         `json:"machine"`
				Time    time.Time      `json:"time"`
				Path    string         `json:"path"`
				Target  string         `json:"target"`
				Result  restore.Result `json:"result"`
				Seconds float64        `json:"seconds"`
				Storage storage.Tally  `json:"storage"`
			}{p.ID.String(), p.Machine, p.Time.UTC(), path, *dir, res, elapsed.Seconds(), cli.Requests.Tally()}
			if jerr := printJSON(out); jerr != nil {
				return jerr
			}
		} else if !*quiet {
			fmt.Fprintf(os.Stderr, "restored point %s%s into %q in %s: files %d (%s), directories %d, other entries %d; chunks fetched %d (%s), already right %d; files unchanged %d",
				p.ID.Short(), quotedPath(path), *dir, elapsed.Round(time.Millisecond), res.Files, cli.FormatBytes(res.Bytes), res.Dirs, res.Others,
				res.ChunksFetched, cli.FormatBytes(res.BytesFetched), res.ChunksKept, res.FilesUnchanged)
			if res.Skipped > 0 {
				fmt.Fprintf(os.Stderr, ", existing entries left alone %d", res.Skipped)
			}
			if *verify {
				fmt.Fprintf(os.Stderr, ", files verified %d", res.FilesVerified)
			}
			fmt.Fprintln(os.Stderr)
		}
		return err
	}
	return cmd
}

// splitPointPath splits POINT[:/PATH]: the path starts at the first ":/",
// so that a time selector's own colons ("2026-12-07T10:30") stay in POINT.
func splitPointPath(arg string) (sel, path string) {
	if i := strings.Index(arg, ":/"); i >= 0 {
		return arg[:i], arg[i+1:]
	}
	return arg, "/"
}

// quotedPath is ":" and the quoted path of a point, or "" for the whole
// point.
func quotedPath(path string) string {
	if path == "/" || path == "" {
		return ""
	}
	return ":" + cli.QuoteNameIfNeeded(path)
}

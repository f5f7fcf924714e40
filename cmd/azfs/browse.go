package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/open"
)

// jsonList writes a JSON array to stdout one element at a time, so that a
// listing of any length is never held whole.
type jsonList struct {
	w *bufio.Writer
	n int
}

func newJSONList() *jsonList {
	l := &jsonList{w: bufio.NewWriter(os.Stdout)}
	l.w.WriteString("[")
	return l
}

func (l *jsonList) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if l.n > 0 {
		l.w.WriteString(",")
	}
	l.n++
	l.w.WriteString("\n  ")
	_, err = l.w.Write(b)
	return err
}

// close ends the array, after suffix (more members of an enclosing
// object: `,"stats":{...}}`).
func (l *jsonList) close(suffix string) error {
	if l.n > 0 {
		l.w.WriteString("\n")
	}
	l.w.WriteString("]" + suffix + "\n")
	return l.w.Flush()
}

func newLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls POINT [PATH]",
		Short: "List a recovery point's entries without mounting it",
		Long: `ls lists the entries of a directory of a point (the point's top level without PATH),
or one entry; --recursive lists everything below. --json prints an array of entries
(path, type, mode, uid, gid, user, group, size, mtime, atime, ctime, links, target,
device, xattrs, stored_bytes), the shape documented in the README.`,
		Example: `  azfs ls latest
  azfs ls 2026-12-01 /home/alice -l
  azfs ls latest /etc --recursive --json`,
		Args: cobra.RangeArgs(1, 2),
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	long := fs.BoolP("long", "l", false, "mode, links, owner, group, size and mtime (UTC) of each entry, as ls -l")
	recursive := fs.BoolP("recursive", "R", false, "list everything below PATH")
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		r, p, err := open.ReadPoint(ctx, target.target(), open.ReadOptions{Warn: warnf}, args[0])
		if err != nil {
			return err
		}
		path := ""
		if len(args) == 2 {
			path = args[1]
		}
		out := newEntryPrinter(*asJSON, *long)
		err = browse.List(ctx, r.Area, p.Root, path, *recursive, func(e browse.Entry) error { return out.print(e) })
		if cerr := out.close(); err == nil {
			err = cerr
		}
		return err
	}
	return cmd
}

// entryPrinter prints entries as ls and find do: a JSON array, ls -l
// lines, or quoted paths.
type entryPrinter struct {
	json *jsonList
	long bool
	w    *bufio.Writer
}

func newEntryPrinter(asJSON, long bool) *entryPrinter {
	if asJSON {
		return &entryPrinter{json: newJSONList()}
	}
	return &entryPrinter{long: long, w: bufio.NewWriter(os.Stdout)}
}

func (p *entryPrinter) print(v any) error {
	if p.json != nil {
		return p.json.add(v)
	}
	var e browse.Entry
	var prefix string
	switch v := v.(type) {
	case browse.Entry:
		e = v
	case browse.Found:
		e, prefix = v.Entry, v.Point[:8]+"  "+v.Time.Format("2006-01-02 15:04:05")+"  "
	}
	if p.long {
		_, err := fmt.Fprintln(p.w, prefix+e.Long(cli.QuoteNameIfNeeded))
		return err
	}
	_, err := fmt.Fprintln(p.w, prefix+cli.QuoteNameIfNeeded(e.Path))
	return err
}

func (p *entryPrinter) close() error {
	if p.json != nil {
		return p.json.close("")
	}
	return p.w.Flush()
}

func newFindCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "find PATTERN",
		Short: "Find entries by name or path in recovery points without mounting them",
		Long: `find walks the latest point (--point P: that one; --all: every live point, newest
first) and prints the entries whose path PATTERN matches, with restic's pattern syntax:
'*.odt' matches that name at any depth, '/home/*/report.odt' is anchored at the top
level, '**' spans directories. --newer and --older take a date, a time or a duration
back from now (7d, 36h). --json prints an array of entries with their point's id,
machine and time.`,
		Example: `  azfs find '*.odt'
  azfs find 'report*' --all --newer 7d
  azfs find /etc/nginx/nginx.conf --all --json`,
		Args: cobra.ExactArgs(1),
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	pointSel := fs.String("point", "latest", "search point `P` (a date, a time, an ID prefix, latest)")
	all := fs.Bool("all", false, "search every live point")
	ignoreCase := fs.BoolP("ignore-case", "i", false, "match names in any case")
	newer := fs.String("newer", "", "only entries modified after `WHEN` (2026-12-01, 2026-12-01T10:30, or 7d back from now)")
	older := fs.String("older", "", "only entries modified before `WHEN`")
	long := fs.BoolP("long", "l", false, "as ls -l")
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *all && fs.Changed("point") {
			return cli.Usagef("--point and --all are exclusive")
		}
		q, err := browse.NewQuery(args[0], *ignoreCase)
		if err != nil {
			return err
		}
		if q.Newer, err = parseWhen("newer", *newer); err != nil {
			return err
		}
		if q.Older, err = parseWhen("older", *older); err != nil {
			return err
		}
		r, err := open.ForReading(ctx, target.target(), open.ReadOptions{Warn: warnf})
		if err != nil {
			return err
		}
		points, err := r.Points(*pointSel, *all)
		if err != nil {
			return err
		}
		out := newEntryPrinter(*asJSON, *long)
		err = browse.FindIn(ctx, r.Area, points, q, func(f browse.Found) error { return out.print(f) })
		if cerr := out.close(); err == nil {
			err = cerr
		}
		return err
	}
	return cmd
}

// parseWhen reads --newer/--older (browse.ParseWhen, in local time); a
// value it does not read is a usage error.
func parseWhen(flag, s string) (time.Time, error) {
	t, err := browse.ParseWhen(s, time.Now(), time.Local)
	if err != nil {
		return time.Time{}, cli.Usagef("--%s %v", flag, err)
	}
	return t, nil
}

func newDiffCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff POINT POINT",
		Short: "Show what changed between two recovery points",
		Long: `diff lists the entries added (+), removed (-), modified in content (M) and modified in
metadata only (U: mode, owner, mtime, xattrs, device) from the first point to the second,
then a summary. Directories whose listing is the same in both are skipped without reading
them. --json prints {"changes": [{path, change, type, content, metadata}], "stats": {...}}.`,
		Example: `  azfs diff 2026-12-01 latest
  azfs diff 3f2a9c1b latest --json`,
		Args: cobra.ExactArgs(2),
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		r, err := open.ForReading(ctx, target.target(), open.ReadOptions{Warn: warnf})
		if err != nil {
			return err
		}
		a, err := r.Point(args[0])
		if err != nil {
			return err
		}
		b, err := r.Point(args[1])
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.WriteString(`{"changes":`)
			list := newJSONList()
			stats, err := browse.Diff(ctx, r.Area, a.Root, b.Root, func(c browse.Change) error { return list.add(c) })
			if err != nil {
				return err
			}
			st, err := json.Marshal(stats)
			if err != nil {
				return err
			}
			return list.close(`,"stats":` + string(st) + "}")
		}
		w := bufio.NewWriter(os.Stdout)
		stats, err := browse.Diff(ctx, r.Area, a.Root, b.Root, func(c browse.Change) error {
			detail := ""
			if len(c.Metadata) > 0 {
				detail = " (" + strings.Join(c.Metadata, ", ") + ")"
			}
			_, err := fmt.Fprintf(w, "%s %s%s\n", c.Mark(), cli.QuoteNameIfNeeded(c.Path), detail)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nadded %d (%s), removed %d (%s), modified %d\n", stats.Added, cli.FormatBytes(stats.BytesAdded),
			stats.Removed, cli.FormatBytes(stats.BytesRemoved), stats.Modified)
		return w.Flush()
	}
	return cmd
}

func newDumpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dump POINT PATH",
		Short: "Write a file of a recovery point to stdout, or a directory as a tar or zip archive",
		Long: `dump writes the file at PATH of a point to stdout as it is, or a directory (and all below
it) as a tar stream (PAX: owners, times to the nanosecond, xattrs, hard links, devices and
FIFOs; holes written as zeros) or, with --archive zip, a zip archive (files, directories and
symlinks; entries zip cannot hold are left out and named on stderr).`,
		Example: `  azfs dump latest /etc/fstab
  azfs dump latest /home/alice > alice.tar
  azfs dump 2026-12-01 /srv/www --archive zip > www.zip`,
		Args: cobra.ExactArgs(2),
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	archive := fs.String("archive", "tar", "a directory's archive `FORMAT`: tar or zip")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		format, err := browse.ParseArchive(*archive)
		if err != nil {
			return err
		}
		r, p, err := open.ReadPoint(ctx, target.target(), open.ReadOptions{Warn: warnf}, args[0])
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		err = browse.Dump(ctx, r.Area, p.Root, args[1], format, w, func(path string) {
			warnf(fmt.Sprintf("%q left out: a %s archive cannot hold it", path, *archive))
		})
		r.SaveDamage()
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		return err
	}
	return cmd
}

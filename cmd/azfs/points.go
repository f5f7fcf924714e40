package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/retention"
)

func newPointsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "points",
		Short: "List recovery points",
		Example: `  azfs points
  azfs points --machine web01 --json
  azfs points --deleted
  azfs points --tag pg --tag web,daily`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	deleted := fs.Bool("deleted", false, "list the forgotten points (soft-deleted): when they were forgotten, by whom, and when prune may purge them")
	set := fs.String("set", "", "list the points of the backup set `NAME` only ('azfs backup --set')")
	tags := cli.AddTagFilterFlag(fs, "list only the points")
	accept := fs.Bool("accept-missing", false, "stop reporting points this host saw that are missing from the vault (after the owner forgot and pruned the newest point, or to accept a loss)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		filter, err := tags.Filter()
		if err != nil {
			return err
		}
		o, err := open.Machine(ctx, target.target())
		if err != nil {
			return err
		}
		if *accept {
			// Listing the points below starts the record again.
			if err := o.ForgetSeen(); err != nil {
				return err
			}
		}
		s, err := o.State(ctx, warnf)
		if err != nil {
			return err
		}
		if *deleted {
			return listDeleted(s, filter, *asJSON)
		}
		var inSet *string
		if fs.Changed("set") {
			inSet = set
		}
		points := s.LiveMatching(filter, inSet)
		if *asJSON {
			return printPointsJSON(points)
		}
		if len(points) == 0 && fs.Changed("set") {
			fmt.Printf("no live recovery points of the backup set %q\n", *set)
			return nil
		}
		if len(points) == 0 && !filter.Empty() {
			fmt.Printf("no live recovery points with %s\n", filter)
			return nil
		}
		if len(points) == 0 {
			if n := len(s.Deleted()); n > 0 {
				fmt.Printf("no live recovery points; %d forgotten ('azfs points --deleted')\n", n)
				return nil
			}
			fmt.Println("no recovery points yet")
			return nil
		}
		w := bufio.NewWriter(os.Stdout)
		fmt.Fprintf(w, "%-8s  %-12s  %-25s  %9s  %10s  %-8s  %-8s  %s\n", "ID", "MACHINE", "TIME", "FILES", "SIZE", "SET", "TAGS", "PATHS")
		for _, p := range points {
			partial := ""
			if p.Partial {
				partial = " (partial)"
			}
			if n := p.Stats.ChangedWhileRead; n > 0 {
				partial += fmt.Sprintf(" (%d changed during backup)", n)
			}
			fmt.Fprintf(w, "%-8s  %-12s  %-25s  %9d  %10s  %-8s  %-8s  %s%s\n", p.ID.Short(), p.Machine, p.Time.Local().Format(repo.PointTimeLayout),
				p.Stats.Files, cli.FormatBytes(p.Stats.Bytes), setLabel(p), tagsLabel(p), quotedNames(p.Paths), partial)
		}
		return w.Flush()
	}
	return cmd
}

// setLabel is the backup set of p as 'azfs points' shows it: its name,
// or "-" for the set of its paths.
func setLabel(p *repo.Point) string {
	if p.SetName == "" {
		return "-"
	}
	return cli.QuoteNameIfNeeded(p.SetName)
}

// tagsLabel is the tags of p as 'azfs points' shows them: joined by
// commas, or "-" for none.
func tagsLabel(p *repo.Point) string {
	if len(p.Tags) == 0 {
		return "-"
	}
	quoted := make([]string, len(p.Tags))
	for i, t := range p.Tags {
		quoted[i] = cli.QuoteNameIfNeeded(t)
	}
	return strings.Join(quoted, ",")
}

// printPointsJSON prints points as 'points --json' does.
func printPointsJSON(points []*repo.Point) error {
	return printJSON(policy.Summaries(points))
}

// listDeleted is 'azfs points --deleted': the forgotten points of s that
// filter matches.
func listDeleted(s *policy.State, filter repo.TagFilter, asJSON bool) error {
	deleted := s.DeletedMatching(filter, time.Now())
	if asJSON {
		return printJSON(deleted)
	}
	if len(deleted) == 0 {
		fmt.Printf("no forgotten points (soft-delete window: %s)\n", retention.FormatDuration(s.Window))
		return nil
	}
	const layout = repo.PointTimeLayout
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "%-8s  %-12s  %-25s  %-25s  %-10s  %s\n", "ID", "MACHINE", "TIME", "FORGOTTEN", "BY", "PURGEABLE")
	for _, d := range deleted {
		purge := d.Purgeable.Local().Format(layout)
		if d.PurgeableNow {
			purge += " (now)"
		}
		fmt.Fprintf(w, "%-8s  %-12s  %-25s  %-25s  %-10s  %s\n", d.Point.ID.Short(), d.Machine, d.Time.Local().Format(layout), d.Forgotten.Local().Format(layout), d.By, purge)
	}
	return w.Flush()
}

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the vault",
		Example: `  azfs check
  azfs check --read-data
  azfs check --read-data-subset 10%
  azfs check --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	asJSON := fs.Bool("json", false, "print the result as JSON (the summary lines on stderr stay)")
	readData := fs.Bool("read-data", false, "read and authenticate every stored byte")
	subsetFlag := fs.String("read-data-subset", "", "read and authenticate the bytes of some packs: a random `P%` of them, or group n/m of m")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var subset *check.Subset
		if *subsetFlag != "" {
			if *readData {
				return cli.Usagef("--read-data and --read-data-subset are exclusive")
			}
			s, err := check.ParseSubset(*subsetFlag)
			if err != nil {
				return cli.Usagef("%v", err)
			}
			subset, *readData = s, true
		}
		o, err := open.Machine(ctx, target.target())
		if err != nil {
			return err
		}
		res, err := check.Run(ctx, o.Area, check.Options{
			ReadData: *readData,
			Subset:   subset,
			Problem:  func(p check.Problem) { fmt.Fprintln(os.Stderr, "damaged: "+cli.OneLine(p.String())) },
		})
		if res != nil {
			what := "structure"
			switch {
			case subset != nil:
				what = fmt.Sprintf("structure and %s of data (%d of %d packs, subset %s)", cli.FormatBytes(uint64(res.BytesRead)), res.PacksRead, res.Packs, subset)
			case *readData:
				what = fmt.Sprintf("structure and %s of data", cli.FormatBytes(uint64(res.BytesRead)))
			}
			fmt.Fprintf(os.Stderr, "checked %s: %s, %s, %s, %s\n", what, cli.Count(res.Packs, "pack"), cli.Count(res.Points, "point"), cli.Count(res.Trees, "tree part"), cli.Count(len(res.Problems), "problem"))
			if res.Unreadable > 0 {
				fmt.Fprintf(os.Stderr, "%d blobs are sealed for another certificate and were not read: check with that certificate's private key too\n", res.Unreadable)
			}
			if res.Redundant > 0 {
				fmt.Fprintf(os.Stderr, "%d damaged or missing copies have a good copy elsewhere: nothing is lost, and the next prune drops them\n", res.Redundant)
			}
			switch {
			case len(res.Problems) > 0 && res.Remembered:
				fmt.Fprintln(os.Stderr, "the damage is remembered in the vault: the next backup of the files that still exist stores their data again, which heals every point that needs it (azfs repair lists what cannot be healed)")
			case res.RememberErr != nil:
				fmt.Fprintf(os.Stderr, "azfs: warning: could not remember the damage in the vault (%s): the next backup will not know to store it again; run check with the machine's own access\n", cli.Message(res.RememberErr))
			}
		}
		if res != nil && *asJSON {
			if jerr := printJSON(res); jerr != nil {
				return jerr
			}
		}
		if errors.Is(err, check.ErrDamaged) {
			return fmt.Errorf("%w: %s found", err, cli.Count(len(res.Problems), "problem"))
		}
		return err
	}
	return cmd
}

// quotedNames joins file system names with spaces, each quoted when it
// holds a space or a character that is not printable (see
// cli.QuoteNameIfNeeded).
func quotedNames(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = cli.QuoteNameIfNeeded(n)
	}
	return strings.Join(quoted, " ")
}

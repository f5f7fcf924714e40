package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/prune"
)

// pruneGCPercent is prune's GOGC (the environment's overrides it).
const pruneGCPercent = 25

func newPruneCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no recovery point needs (owner; safe while backups run)",
		Example: `  azfs prune --dry-run
  azfs prune --max-unused 5%
  azfs prune --dry-run --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	dryRun := fs.Bool("dry-run", false, "report what would be deleted, repacked and marked; change nothing")
	maxUnused := fs.String("max-unused", "10%", "unused share of the stored bytes to tolerate in packs still in use (`P%`, or unlimited: no repacking)")
	margin := fs.Duration("safety-margin", prune.DefaultMargin, "time between marking a pack unneeded and deleting it (at least 10m while backups may run)")
	asJSON := fs.Bool("json", false, "print each machine's result as JSON")
	noBackups := fs.Bool("no-backups-running", false, "allow a margin under 10m (0: delete in this run): no backup of the vault may run until prune ends")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() > 0 {
			return cli.Usagef("usage: azfs prune [--machine NAME] [--dry-run] [--max-unused 10%%] [--safety-margin 1h]")
		}
		unused, err := parseMaxUnused(*maxUnused)
		if err != nil {
			return err
		}
		if *margin < 0 || *margin < prune.MinMargin && !*noBackups {
			return cli.Usagef("--safety-margin %s is below %s, which backups running meanwhile need: add --no-backups-running if none runs until prune ends", *margin, prune.MinMargin)
		}
		if os.Getenv("GOGC") == "" {
			// The heap is mostly the index and the set of needed blobs:
			// long-lived maps without pointers, cheap to mark. What a
			// collection frees is pack and read buffers: collect early.
			debug.SetGCPercent(pruneGCPercent)
		}
		t := target.target()
		o, owner, err := open.Owner(ctx, t)
		if err != nil {
			return err
		}
		machines := []string{t.Machine}
		if t.Machine == "" {
			if t.PrivateKey != "" {
				return cli.Usagef("with --private-key, name the machine to prune with --machine NAME")
			}
			if machines, err = o.VaultRoot().Machines(ctx); err != nil {
				return err
			}
		}
		opts := prune.Options{Owner: owner, Margin: *margin, MaxUnused: unused, DryRun: *dryRun, Host: hoststate.Hostname()}
		var failed []string
		rows := make([]pruneJSON, 0, len(machines))
		for _, name := range machines {
			res, err := agent.Prune(ctx, o, t, owner, name, opts, warnf)
			switch {
			case *asJSON:
				row := pruneJSON{Machine: name, DryRun: opts.DryRun}
				if res != nil {
					row.Result = res
				}
				if err != nil {
					row.Error = cli.Message(err)
				}
				rows = append(rows, row)
			case err == nil:
				printPrune(name, res, opts)
			}
			if err != nil {
				if len(machines) == 1 {
					return fmt.Errorf("machine %s: %w", name, err)
				}
				fmt.Fprintf(os.Stderr, "azfs: machine %s: %s\n", name, cli.Message(err))
				failed = append(failed, name)
			}
		}
		if *asJSON {
			if err := printJSON(rows); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("prune failed for %d of %d machines: %s", len(failed), len(machines), strings.Join(failed, ", "))
		}
		return nil
	}
	return cmd
}

// parseMaxUnused reads "P%" (0 to 100) or "unlimited" as a fraction.
func parseMaxUnused(s string) (float64, error) {
	if s == "unlimited" {
		return 1, nil
	}
	p, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(p, 64)
	if !ok || err != nil || !(v >= 0 && v <= 100) {
		return 0, cli.Usagef("--max-unused %q: use a percentage from 0%% to 100%%, or unlimited", s)
	}
	return v / 100, nil
}

// pruneJSON is one machine's result in 'azfs prune --json'.
type pruneJSON struct {
	Machine string `json:"machine"`
	DryRun  bool   `json:"dry_run"`
	*prune.Result
	Error string `json:"error,omitempty"`
}

func printPrune(name string, r *prune.Result, opts prune.Options) {
	verb := func(done, would string) string {
		if opts.DryRun {
			return would
		}
		return done
	}
	b := func(n int64) string { return cli.FormatBytes(uint64(n)) }
	fmt.Printf("machine %s: %d points need %d blobs (%s) of %s in %d packs\n", name, r.Points, r.Blobs, b(r.BytesUsed), b(r.BytesStored), r.Packs)
	if r.Purged > 0 {
		fmt.Printf("  %s %d points first\n", verb("purged", "would purge"), r.Purged)
	}
	if r.Deleted > 0 || r.Kept > 0 {
		fmt.Printf("  %s %d marked packs (%s) still unneeded; kept %d marked packs (needed again, or by a running backup)\n",
			verb("deleted", "would delete"), r.Deleted, b(r.DeletedBytes), r.Kept)
	}
	if r.Repacked > 0 {
		fmt.Printf("  %s %d packs (%s): %s of blobs in use into new packs\n", verb("repacked", "would repack"), r.Repacked, b(r.RepackedBytes), b(r.CopiedBytes))
	}
	if r.Marked > 0 {
		when := "in this run"
		if opts.Margin > 0 {
			when = "by the first prune after " + r.DueAt.Local().Format(time.DateTime)
		}
		fmt.Printf("  %s %d packs (%s) no point needs: deleted %s if still unneeded\n", verb("marked", "would mark"), r.Marked, b(r.MarkedBytes), when)
	}
	if r.Pending > 0 {
		fmt.Printf("  %d packs (%s) marked earlier wait for their margin\n", r.Pending, b(r.PendingBytes))
	}
	if r.Unreadable > 0 {
		fmt.Printf("  %d packs do not authenticate and were left alone: run azfs check\n", r.Unreadable)
	}
	if r.IndexWritten > 0 || r.IndexDeleted > 0 {
		fmt.Printf("  index files: %d written, %d superseded\n", r.IndexWritten, r.IndexDeleted)
	}
	if r.InvalidMarks > 0 {
		fmt.Printf("  removed %d marks the owner did not sign\n", r.InvalidMarks)
	}
}

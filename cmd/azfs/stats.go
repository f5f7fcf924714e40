package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/open"
)

func newStatsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Vault size, deduplication ratio, per machine and per backup set",
		Long: `stats shows the size of the vault, and for this machine (--machine NAME: that one;
--all: every machine, as the owner) its live points, what its area stores (packs and the
rest), the logical size of all its points together, and the deduplication ratio (that
logical size over the packs' size, compression included); per backup set, its points and
the size of the newest. It reads no content: sizes come from the points and a listing.
--json prints {"stored_bytes", "data_bytes", "bytes", "dedup_ratio", "machines": [...]}.`,
		Example: `  azfs stats
  azfs stats --all --json`,
		Args: cobra.NoArgs,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	all := fs.Bool("all", false, "every machine of the vault (owner)")
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		t := target.target()
		if !*all {
			o, err := open.Machine(ctx, t)
			if err != nil {
				return err
			}
			m, err := o.MachineStats(ctx, warnf)
			if err != nil {
				return err
			}
			return printStats(ctx, o, []browse.MachineStats{m}, *asJSON)
		}
		if fs.Changed("machine") {
			return cli.Usagef("--machine and --all are exclusive")
		}
		o, owner, err := open.Owner(ctx, t)
		if err != nil {
			return err
		}
		var machines []browse.MachineStats
		err = o.EachMachineAsOwner(ctx, t, owner, func() error {
			m, err := o.MachineStats(ctx, warnf)
			machines = append(machines, m)
			return err
		}, func(name string, err error) {
			warnf(fmt.Sprintf("machine %s left out: %s", name, cli.Message(err)))
		})
		if err != nil {
			return err
		}
		return printStats(ctx, o, machines, *asJSON)
	}
	return cmd
}

// printStats prints the vault's statistics with those of machines.
func printStats(ctx context.Context, o *open.Opened, machines []browse.MachineStats, asJSON bool) error {
	v, err := browse.Vault(ctx, o.Storage, machines)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(v)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "vault %s: %s stored\n", o.Root.ID, cli.FormatBytes(v.StoredBytes))
	for _, m := range v.Machines {
		fmt.Fprintf(w, "\nmachine %s: points %d, stored %s (packs %d: %s), in its points %s, dedup ratio %.2f\n",
			m.Machine, m.Points, cli.FormatBytes(m.StoredBytes), m.Packs, cli.FormatBytes(m.DataBytes), cli.FormatBytes(m.Bytes), m.DedupRatio)
		for _, s := range m.Sets {
			name := s.Set
			if name == "" {
				quoted := make([]string, len(s.Paths))
				for i, p := range s.Paths {
					quoted[i] = cli.QuoteNameIfNeeded(p)
				}
				name = "paths " + strings.Join(quoted, " ")
			} else {
				name = "set " + cli.QuoteNameIfNeeded(name)
			}
			fmt.Fprintf(w, "  %s: points %d, newest %s (%s), in all %s\n", name, s.Points,
				s.Latest.Format("2006-01-02 15:04:05 UTC"), cli.FormatBytes(s.LatestBytes), cli.FormatBytes(s.Bytes))
		}
	}
	return w.Flush()
}

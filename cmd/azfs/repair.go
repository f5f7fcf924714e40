package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/repair"
)

func newRepairCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Rebuild indexes, quarantine junk, say what is lost (owner; --apply to act)",
		Example: `  azfs repair
  azfs repair --apply
  azfs repair --machine web01 --new-key-slot`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	target.machine = fs.String("machine", "", "repair machine `NAME` only (default: every machine)")
	apply := fs.Bool("apply", false, "act; without it repair only prints what it would do")
	readData := fs.Bool("read-data", false, "authenticate every stored byte when naming what cannot be recovered")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	newSlot := fs.Bool("new-key-slot", false, "with --machine: give the machine a new key slot (its keys from its escrow) under a new passphrase, asked for on the terminal")
	newFile := fs.String("new-passphrase-file", "", "as --new-key-slot, reading the new passphrase (at least 16 characters) from `FILE`")
	genFile := fs.String("generate-passphrase", "", "as --new-key-slot, generating the new passphrase and writing it to `FILE` (0600)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() > 0 {
			return cli.Usagef("usage: azfs repair [--machine NAME [--new-key-slot | --new-passphrase-file F | --generate-passphrase F]] [--apply] [--read-data] [--json]")
		}
		t := target.target()
		opts := repair.Options{Apply: *apply, ReadData: *readData, KDF: keys.DefaultKDF}
		if *newSlot || *newFile != "" || *genFile != "" {
			if t.Machine == "" {
				return cli.Usagef("a new key slot is for one machine: name it with --machine NAME")
			}
			pass, err := newPassphrase(*newFile, *genFile, fmt.Sprintf("New passphrase of machine %s (16+ characters): ", t.Machine))
			if err != nil {
				return err
			}
			opts.NewPassphrase = pass
			if *apply {
				// Written before the slot, so its key is never unrecoverable.
				if err := saveGenerated(*genFile, pass); err != nil {
					return err
				}
			}
		}
		o, owner, rootCfg, err := open.OwnerForRepair(ctx, t, *apply)
		if err != nil {
			return err
		}
		if !*asJSON {
			printConfigRepair("vault root", rootCfg, *apply)
		}
		var names []string
		if t.Machine != "" {
			if err := repo.CheckMachineName(t.Machine); err != nil {
				return cli.Usagef("%v", err)
			}
			names = []string{t.Machine}
		}
		printed := func(r *repair.AreaReport) {
			if !*asJSON {
				printRepair(r)
			}
		}
		rep, err := repair.Machines(ctx, o.VaultRoot(), names, owner, opts, printed, func(name string, err error) {
			fmt.Fprintf(os.Stderr, "azfs: machine %s: %s\n", name, cli.Message(err))
		})
		if rep == nil {
			return err
		}
		rep.Config = rootCfg
		if *asJSON {
			if err := printJSON(rep); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if lost := rep.Lost(); lost > 0 {
			what := "remain after the repair"
			if !*apply {
				what = "found (run with --apply to repair what can be)"
			}
			return fmt.Errorf("%w: %d problems %s", check.ErrDamaged, lost, what)
		}
		return nil
	}
	return cmd
}

// printConfigRepair prints what repair found of the config of where.
func printConfigRepair(where string, c *repair.ConfigReport, applied bool) {
	verb := func(done, would string) string {
		if applied {
			return done
		}
		return would
	}
	switch {
	case c.Left != "":
		fmt.Printf("%s: config %s, left alone: %s\n", where, c.State, c.Left)
	case c.From != "":
		fmt.Printf("%s: config %s: %s from %s\n", where, c.State, verb("rebuilt", "would rebuild it"), c.From)
	}
	if c.CopyDamaged {
		fmt.Printf("%s: the signed copy of the config does not verify\n", where)
	}
	if c.CopyWritten && c.Left == "" {
		fmt.Printf("%s: %s the signed copy of the config (%s)\n", where, verb("wrote", "would write"), repo.ConfigCopyName)
	}
}

func printRepair(r *repair.AreaReport) {
	verb := func(done, would string) string {
		if r.Applied {
			return done
		}
		return would
	}
	where := "machine " + r.Machine
	printConfigRepair(where, r.Config, r.Applied)
	if r.Skipped != "" {
		fmt.Printf("%s: %s\n", where, r.Skipped)
		return
	}
	x := r.Index
	fmt.Printf("%s: %d packs, %d index files authenticate, %d key slots\n", where, x.Packs, x.Files, len(r.Slots))
	acted := r.Config.Acted() || r.NewSlot
	for _, id := range r.Unparsable {
		fmt.Printf("  key slot %q does not parse: no passphrase opens it (a new one: azfs repair --machine %s --apply --new-key-slot)\n", id, r.Machine)
	}
	if r.NewSlot {
		fmt.Printf("  %s a new key slot with the machine's keys (from its escrow) under the new passphrase: its points open with it\n", verb("wrote", "would write"))
	}
	if x.Covered > 0 {
		acted = true
		name := ""
		if !x.Written.IsZero() {
			name = " " + x.Written.Short()
		}
		fmt.Printf("  index: %s%s covering %d packs no index file names, from their trailers\n", verb("wrote index file", "would write an index file"), name, x.Covered)
	}
	for _, s := range x.Stale {
		acted = true
		fmt.Printf("  index: %s index file %s: it %s\n", verb("deleted", "would delete"), s.ID.Short(), s.Why)
	}
	for _, id := range x.DamagedTrailers {
		fmt.Printf("  pack %s: its trailer does not authenticate\n", id.Short())
	}
	if n := len(x.Unindexed); n > 0 {
		fmt.Printf("  %d of those packs are named by no index file: their blobs cannot be located\n", n)
	}
	for _, j := range r.Junk {
		acted = true
		to := "to quarantine"
		if r.Applied {
			to = fmt.Sprintf("to %q", j.To)
			if j.To == "" {
				to = "(deleted, too large to keep)"
			}
		}
		fmt.Printf("  junk: %s %q %s: %v\n", verb("moved", "would move"), j.Name, to, j.Why)
	}
	if len(r.Quarantine) > 0 {
		fmt.Printf("  quarantine holds %d objects (no command reads them; delete them when you have looked):\n", len(r.Quarantine))
		for _, fi := range r.Quarantine {
			fmt.Printf("    %q (%s, %s)\n", fi.Name, cli.FormatBytes(uint64(fi.Size)), fi.Modified.Local().Format("2006-01-02 15:04:05"))
		}
	}
	if r.Unchecked != nil {
		fmt.Printf("  not checked: %s\n", cli.Message(r.Unchecked))
	}
	if len(r.Problems) > 0 {
		fmt.Printf("  %s (%d problems):\n", verb("cannot be recovered", "the checker finds now, junk included"), len(r.Problems))
		for _, p := range r.Problems {
			fmt.Printf("    %s %q: %s\n", p.What, p.Name, cli.Message(p.Err))
		}
	}
	if !acted && len(r.Problems) == 0 {
		fmt.Println("  nothing to repair")
	}
}

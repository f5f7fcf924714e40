package main

import (
	"fmt"
	"os"
	"strings"

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
		machines := []string{t.Machine}
		if t.Machine == "" {
			if machines, err = repo.MachineAreas(ctx, o.Storage); err != nil {
				return err
			}
		} else if err := repo.CheckMachineName(t.Machine); err != nil {
			return cli.Usagef("%v", err)
		}
		var reports []*repair.AreaReport
		var failed []string
		lost := 0
		for _, name := range machines {
			rep, err := repair.Machine(ctx, o.VaultRoot(), name, owner, opts)
			if err != nil {
				if len(machines) == 1 {
					return fmt.Errorf("machine %s: %w", name, err)
				}
				fmt.Fprintf(os.Stderr, "azfs: machine %s: %s\n", name, cli.Message(err))
				failed = append(failed, name)
				continue
			}
			reports = append(reports, rep)
			lost += len(rep.Problems)
			if !*asJSON {
				printRepair(rep)
			}
		}
		if *asJSON {
			if err := printJSON(repairJSON(rootCfg, reports)); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("repair failed for %d of %d machines: %s", len(failed), len(machines), strings.Join(failed, ", "))
		}
		if lost > 0 {
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

// repairJSONOut is what 'azfs repair --json' prints.
type repairJSONOut struct {
	Config   configJSON         `json:"config"`
	Machines []repairReportJSON `json:"machines"`
}

// configJSON is a repair.ConfigReport.
type configJSON struct {
	State       string `json:"state"`
	From        string `json:"rebuilt_from,omitempty"`
	Left        string `json:"left_alone,omitempty"`
	CopyWritten bool   `json:"copy_written"`
	CopyDamaged bool   `json:"copy_damaged"`
}

func configOf(c *repair.ConfigReport) configJSON {
	return configJSON{State: c.State, From: c.From, Left: c.Left, CopyWritten: c.CopyWritten, CopyDamaged: c.CopyDamaged}
}

// repairReportJSON is one machine's report as 'azfs repair --json' prints it.
type repairReportJSON struct {
	Machine    string        `json:"machine"`
	Applied    bool          `json:"applied"`
	Config     configJSON    `json:"config"`
	Skipped    string        `json:"skipped,omitempty"`
	Slots      []string      `json:"key_slots"`
	Unparsable []string      `json:"key_slots_unparsable"`
	NewSlot    bool          `json:"new_key_slot"`
	Index      *indexJSON    `json:"index,omitempty"`
	Junk       []junkJSON    `json:"junk"`
	Quarantine []objectJSON  `json:"quarantine"`
	Unchecked  string        `json:"unchecked,omitempty"`
	Problems   []problemJSON `json:"problems"`
}

type indexJSON struct {
	Packs           int      `json:"packs"`
	Files           int      `json:"index_files"`
	Covered         int      `json:"covered"`
	Written         string   `json:"written,omitempty"`
	Stale           []string `json:"stale"`
	DamagedTrailers []string `json:"damaged_trailers"`
	Unindexed       []string `json:"unindexed"`
}

type junkJSON struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Why  string `json:"why"`
	To   string `json:"to,omitempty"`
}

type objectJSON struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type problemJSON struct {
	What string `json:"what"`
	Name string `json:"name"`
	Err  string `json:"error"`
}

func repairJSON(root *repair.ConfigReport, reports []*repair.AreaReport) repairJSONOut {
	out := repairJSONOut{Config: configOf(root), Machines: make([]repairReportJSON, len(reports))}
	for i, r := range reports {
		j := &out.Machines[i]
		j.Machine, j.Applied, j.Config, j.Skipped = r.Machine, r.Applied, configOf(r.Config), r.Skipped
		j.Slots, j.Unparsable, j.NewSlot = append([]string{}, r.Slots...), append([]string{}, r.Unparsable...), r.NewSlot
		if x := r.Index; x != nil { // nil when the area was skipped
			j.Index = &indexJSON{}
			j.Index.Packs, j.Index.Files, j.Index.Covered = x.Packs, x.Files, x.Covered
			if !x.Written.IsZero() {
				j.Index.Written = x.Written.String()
			}
			j.Index.Stale = make([]string, len(x.Stale))
			for k, s := range x.Stale {
				j.Index.Stale[k] = s.ID.String()
			}
			j.Index.DamagedTrailers, j.Index.Unindexed = idStrings(x.DamagedTrailers), idStrings(x.Unindexed)
		}
		j.Junk = make([]junkJSON, len(r.Junk))
		for k, m := range r.Junk {
			j.Junk[k] = junkJSON{Name: m.Name, Size: m.Size, Why: cli.Message(m.Why), To: m.To}
		}
		j.Quarantine = make([]objectJSON, len(r.Quarantine))
		for k, fi := range r.Quarantine {
			j.Quarantine[k] = objectJSON{Name: fi.Name, Size: fi.Size}
		}
		if r.Unchecked != nil {
			j.Unchecked = cli.Message(r.Unchecked)
		}
		j.Problems = make([]problemJSON, len(r.Problems))
		for k, p := range r.Problems {
			j.Problems[k] = problemJSON{What: p.What, Name: p.Name, Err: cli.Message(p.Err)}
		}
	}
	return out
}

func idStrings(ids []keys.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

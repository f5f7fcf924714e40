package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/machines"
	"github.com/azfs/azfs/repo/open"
)

// machineJSON is a machine as 'azfs machines --json' lists it.
type machineJSON struct {
	Name       string    `json:"name"`
	Registered time.Time `json:"registered"`
	// LivePoints and LastPoint are null when the owner cannot read the
	// machine's points (certificate mode, or a problem).
	LivePoints *int             `json:"live_points"`
	LastPoint  *agent.LastPoint `json:"last_point"`
	Keys       struct {
		Slots      int  `json:"passphrase_slots"`
		Unparsable int  `json:"unparsable_slots"`
		Escrow     bool `json:"escrow"`
		WriteOnly  bool `json:"write_only"`
	} `json:"keys"`
	Problem string `json:"problem,omitempty"`
}

func newMachinesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "machines",
		Short: "List the vault's machines: registered, last point, key state (owner)",
		Example: `  azfs machines
  azfs machines --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return cli.Usagef("usage: azfs machines [--vault PATH] [--json]")
		}
		ctx := cmd.Context()
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		list, err := machines.List(ctx, o.VaultRoot(), owner)
		if err != nil {
			return err
		}
		if *asJSON {
			rows := make([]machineJSON, 0, len(list))
			for _, m := range list {
				rows = append(rows, machineRow(m))
			}
			return printJSON(rows)
		}
		if len(list) == 0 {
			fmt.Println("no machines registered")
			return nil
		}
		w := bufio.NewWriter(os.Stdout)
		fmt.Fprintf(w, "%-12s  %-25s  %-25s  %6s  %s\n", "MACHINE", "REGISTERED", "LAST POINT", "POINTS", "KEYS")
		for _, m := range list {
			last, count := "-", "?"
			if m.LastPoint != nil {
				last = m.LastPoint.Time.Local().Format(repo.PointTimeLayout)
			}
			if m.LivePoints >= 0 {
				count = fmt.Sprint(m.LivePoints)
			}
			fmt.Fprintf(w, "%-12s  %-25s  %-25s  %6s  %s\n", m.Name, m.Registered.Local().Format(repo.PointTimeLayout), last, count, keyState(m.Keys))
			if m.Problem != "" {
				fmt.Fprintf(w, "%-12s  %s\n", "", cli.OneLine(m.Problem))
			}
		}
		return w.Flush()
	}
	return cmd
}

// keyState says in words what opens a machine's area.
func keyState(k machines.KeyState) string {
	var parts []string
	switch {
	case k.Slots == 0:
		parts = append(parts, "no passphrase slot ('azfs repair --machine NAME --new-key-slot')")
	default:
		parts = append(parts, cli.Count(k.Slots, "passphrase slot"))
	}
	if k.Unparsable > 0 {
		parts = append(parts, cli.Count(k.Unparsable, "damaged slot"))
	}
	if k.Escrow {
		parts = append(parts, "escrow")
	} else {
		parts = append(parts, "no escrow")
	}
	if k.WriteOnly {
		parts = append(parts, "write-only (certificate mode)")
	}
	return strings.Join(parts, ", ")
}

func machineRow(m machines.Machine) machineJSON {
	out := machineJSON{Name: m.Name, Registered: m.Registered, Problem: m.Problem}
	if m.LivePoints >= 0 {
		n := m.LivePoints
		out.LivePoints = &n
	}
	if p := m.LastPoint; p != nil {
		out.LastPoint = agent.VaultPoint(p)
	}
	out.Keys.Slots, out.Keys.Unparsable, out.Keys.Escrow, out.Keys.WriteOnly = m.Keys.Slots, m.Keys.Unparsable, m.Keys.Escrow, m.Keys.WriteOnly
	return out
}

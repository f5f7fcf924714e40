package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/machines"
	"github.com/azfs/azfs/repo/open"
)

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
			return printJSON(list)
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

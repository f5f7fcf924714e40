package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/open"
)

// keySlotJSON is an owner key slot as 'azfs key list --json' lists it.
type keySlotJSON struct {
	ID string `json:"id"` // what 'azfs key remove' takes
}

func newKeyListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the owner's key slots",
		Example: `  azfs key list
  azfs key list --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	asJSON := fs.Bool("json", false, "print JSON: an array of {\"id\": SLOT-ID}")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		o, _, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		ids, err := o.VaultRoot().OwnerSlots(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			rows := make([]keySlotJSON, 0, len(ids))
			for _, id := range ids {
				rows = append(rows, keySlotJSON{ID: id})
			}
			return printJSON(rows)
		}
		for _, id := range ids {
			fmt.Println(id)
		}
		return nil
	}
	return cmd
}

func newKeyAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add an owner key slot under a new passphrase",
		Example: `  azfs key add --generate-passphrase ~/owner2.pass
  azfs key add --new-passphrase-file ~/owner2.pass`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	newFile := fs.String("new-passphrase-file", "", "read the new slot's passphrase from `FILE`")
	genFile := fs.String("generate-passphrase", "", "generate the new slot's passphrase and write it to `FILE` (0600)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		pass, err := newPassphrase(*newFile, *genFile, "Passphrase for the new owner key slot (16+ characters): ")
		if err != nil {
			return err
		}
		if err := saveGenerated(*genFile, pass); err != nil {
			return err
		}
		if err := o.VaultRoot().AddOwnerSlot(ctx, owner, pass, keys.DefaultKDF); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "owner key slot added ('azfs key list' shows the slots)")
		return nil
	}
	return cmd
}

func newKeyRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove SLOT-ID",
		Short: "Remove an owner key slot",
		Example: `  azfs key list
  azfs key remove 3f2a9c0e`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 1 {
			return cli.Usagef("usage: azfs key remove SLOT-ID (see 'azfs key list')")
		}
		o, _, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		if err := o.VaultRoot().RemoveOwnerSlot(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "owner key slot %s removed\n", fs.Arg(0))
		return nil
	}
	return cmd
}

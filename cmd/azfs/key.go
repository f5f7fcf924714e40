package main

import (
	"context"
	"fmt"
	"os"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

func keyList(ctx context.Context, args []string) error {
	fs := flags("key list")
	target := addTargetFlags(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	o, _, err := cli.OpenOwner(ctx, target.target())
	if err != nil {
		return err
	}
	ids, err := repo.OwnerSlots(ctx, o.Storage)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Println(id)
	}
	return nil
}

func keyAdd(ctx context.Context, args []string) error {
	fs := flags("key add")
	target := addTargetFlags(fs, false)
	newFile := fs.String("new-passphrase-file", "", "read the new slot's passphrase from `FILE`")
	genFile := fs.String("generate-passphrase", "", "generate the new slot's passphrase and write it to `FILE` (0600)")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, owner, err := cli.OpenOwner(ctx, target.target())
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
	if err := repo.AddOwnerSlot(ctx, o.Storage, owner, pass, keys.DefaultKDF); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "owner key slot added ('azfs key list' shows the slots)")
	return nil
}

func keyRemove(ctx context.Context, args []string) error {
	fs := flags("key remove")
	target := addTargetFlags(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("usage: azfs key remove SLOT-ID (see 'azfs key list')")
	}
	o, _, err := cli.OpenOwner(ctx, target.target())
	if err != nil {
		return err
	}
	if err := repo.RemoveOwnerSlot(ctx, o.Storage, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "owner key slot %s removed\n", fs.Arg(0))
	return nil
}

package open

import (
	"context"
	"fmt"

	"github.com/azfs/azfs/keys"
)

// EachMachineAsOwner opens the area of every machine of the vault in turn
// for the owner (OpenAreaAsOwner with t naming the machine), in name
// order, and calls fn while it is open ('azfs stats --all'). A machine
// whose area does not open is passed to skip and left out; an error of fn
// stops the walk and is returned.
func (o *Opened) EachMachineAsOwner(ctx context.Context, t Target, owner *keys.OwnerKeys, fn func() error, skip func(machine string, err error)) error {
	names, err := o.VaultRoot().Machines(ctx)
	if err != nil {
		return fmt.Errorf("list machines: %w", err)
	}
	for _, name := range names {
		t.Machine = name
		if err := o.OpenAreaAsOwner(ctx, t, owner); err != nil {
			skip(name, err)
			continue
		}
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

package open

import (
	"context"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/browse"
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

// MachineStats returns the statistics of the machine area o has open
// (browse.Machine over its live points, read as [Opened.State] reads
// them, warning through warn): what 'azfs stats' shows of a machine.
func (o *Opened) MachineStats(ctx context.Context, warn func(msg string)) (browse.MachineStats, error) {
	s, err := o.State(ctx, warn)
	if err != nil {
		return browse.MachineStats{}, err
	}
	return browse.Machine(ctx, o.Machine, o.Area.Storage(), s.Live())
}

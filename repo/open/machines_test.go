package open

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestEachMachineAsOwner: every machine's area is open in turn, in name
// order (its MachineStats counting its point); one whose escrow is gone is skipped with its error; fn's error
// stops the walk.
func TestEachMachineAsOwner(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	o, owner, err := Owner(ctx, Target{Vault: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	var opened, skipped []string
	each := func(fn func() error) error {
		opened, skipped = nil, nil
		return o.EachMachineAsOwner(ctx, Target{Vault: f.dir}, owner, func() error {
			if o.Area == nil || o.Machine == "" {
				t.Fatal("fn called without an open area")
			}
			if m, err := o.MachineStats(ctx, func(msg string) { t.Errorf("warned %q", msg) }); err != nil || m.Machine != o.Machine || m.Points != 1 {
				t.Errorf("MachineStats of %s: %+v, %v; want its one point", o.Machine, m, err)
			}
			opened = append(opened, o.Machine)
			return fn()
		}, func(machine string, err error) { skipped = append(skipped, machine) })
	}
	if err := each(func() error { return nil }); err != nil || !slices.Equal(opened, []string{"db01", "web01"}) || skipped != nil {
		t.Fatalf("opened %q, skipped %q, %v; want db01 and web01", opened, skipped, err)
	}
	stop := errors.New("stop")
	if err := each(func() error { return stop }); err != stop || len(opened) != 1 {
		t.Errorf("fn failing: %v after %q, want stop after one", err, opened)
	}
	f.entry().Keys, f.entry().Machine = nil, ""
	f.save(t)
	if err := o.VaultRoot().MachineStorage("db01").Delete(ctx, "escrow"); err != nil {
		t.Fatal(err)
	}
	if o, owner, err = Owner(ctx, Target{Vault: f.dir}); err != nil {
		t.Fatal(err)
	}
	if err := each(func() error { return nil }); err != nil || !slices.Equal(opened, []string{"web01"}) || !slices.Equal(skipped, []string{"db01"}) {
		t.Errorf("without db01's escrow: opened %q, skipped %q, %v", opened, skipped, err)
	}
}

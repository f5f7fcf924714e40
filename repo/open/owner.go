package open

import (
	"context"
	"errors"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
)

// AreaAsOwner opens, in the root o has open with the owner's keys, the
// area of machine name with the keys [Opened.OpenAreaAsOwner] chooses (t's
// private key, this host's own keys, else the owner's escrow), and returns
// it; o itself is left as it was ('azfs prune', machine by machine).
func (o *Opened) AreaAsOwner(ctx context.Context, t Target, owner *keys.OwnerKeys, name string) (*repo.Area, error) {
	other := *o
	t.Machine = name
	if err := other.openArea(ctx, t, owner); err != nil {
		return nil, err
	}
	return other.Area, nil
}

// PreviewState opens, in the root o has open with the owner's keys, the
// area of the machine t names (as [Opened.OpenAreaAsOwner]) and returns
// what became of its points, as commands that forget read it
// ([Opened.StateToChange]): 'azfs policy set' shows what a change forgets.
// An area whose points the keys at hand cannot read (certificate mode,
// without the private key) is no error: it is warned of, and the state is
// nil.
func (o *Opened) PreviewState(ctx context.Context, t Target, owner *keys.OwnerKeys, warn func(msg string)) (*policy.State, error) {
	err := o.OpenAreaAsOwner(ctx, t, owner)
	var s *policy.State
	if err == nil {
		s, err = o.StateToChange(ctx, warn)
	}
	if errors.Is(err, repo.ErrWriteOnly) {
		warn(fmt.Sprintf("cannot read the points of %s (certificate mode): what the policy forgets is not shown; pass the certificate's --private-key to see it", t.Machine))
		return nil, nil
	}
	return s, err
}

// PointsReader opens the area of the machine t names with whatever reads
// its points here: on the owner's host, another machine's area through
// the owner's escrow (unless t gives a private key); else as [Machine]
// does (this machine's keys, a private key, the machine's passphrase).
func PointsReader(ctx context.Context, t Target) (*Opened, error) {
	o, err := Root(ctx, t)
	if err != nil {
		return nil, err
	}
	if e := o.Entry; e != nil && e.Owner != nil && t.Machine != "" && t.Machine != e.Machine && t.PrivateKey == "" {
		return o, o.OpenAreaAsOwner(ctx, t, e.Owner)
	}
	if err := o.openMachine(ctx, t); err != nil {
		return nil, err
	}
	return o, nil
}

// OwnerState opens the vault root t names with the owner's keys and the
// area of the machine t names ([OwnerMachine]), and reads what became of
// its points for a command that forgets or undeletes them
// ([Opened.StateToChange]).
func OwnerState(ctx context.Context, t Target, warn func(msg string)) (*Opened, *keys.OwnerKeys, *policy.State, error) {
	o, owner, err := OwnerMachine(ctx, t)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := o.StateToChange(ctx, warn)
	if err != nil {
		return nil, nil, nil, err
	}
	return o, owner, s, nil
}

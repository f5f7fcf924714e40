package open

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/repair"
)

// OwnerForRepair opens the vault root t names with the owner's keys, as
// [Owner] does, and settles its root config with repair.RootConfig
// (rebuilding it with apply): a lost or damaged config does not stop it.
// Without a config, the owner's keys are those this host holds for the
// vault at that place, else the owner passphrase, tried under the vault
// IDs the vault's own objects name (an owner slot opens under the right
// one only). Without apply, Root is the config as it would be rebuilt.
func OwnerForRepair(ctx context.Context, t Target, apply bool) (*Opened, *keys.OwnerKeys, *repair.ConfigReport, error) {
	if t.Credentials != "" {
		return nil, nil, nil, &usageError{msg: "repair opens the vault as its owner: name it with --vault, not credentials"}
	}
	t.OwnerStorage = true
	l, err := locate(t)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, cfgErr := repo.ReadConfig(ctx, l.st)
	switch {
	case errors.Is(cfgErr, repo.ErrNoVault):
		return nil, nil, nil, fmt.Errorf("no vault at %s", l.abs)
	case cfgErr != nil && !errors.Is(cfgErr, repo.ErrDamaged):
		return nil, nil, nil, fmt.Errorf("vault at %s: %w", l.abs, cfgErr)
	}
	owner, err := l.ownerKeys(ctx, cfg, cfgErr, t)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfgErr == nil && cfg.ID != owner.Vault {
		return nil, nil, nil, fmt.Errorf("the vault at %s is vault %s, not vault %s whose owner keys were given", l.abs, cfg.ID, owner.Vault)
	}
	root, rep, err := repair.RootConfig(ctx, l.st, owner, apply)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("vault at %s: %w", l.abs, err)
	}
	o, err := l.opened(root)
	if err != nil {
		return nil, nil, nil, err
	}
	return o, owner, rep, nil
}

// ownerKeys returns the owner's keys of the vault at l, whose config read
// as cfg, or failed with cfgErr: this host's, else those the owner
// passphrase (from t) opens.
func (l *located) ownerKeys(ctx context.Context, cfg repo.Config, cfgErr error, t Target) (*keys.OwnerKeys, error) {
	if cfgErr == nil {
		if e := l.ring.Vaults[cfg.ID]; e != nil && e.Owner != nil {
			return e.Owner, nil
		}
	} else if l.known != nil && l.known.Owner != nil {
		return l.known.Owner, nil
	}
	var ids []string
	if cfgErr == nil {
		ids = []string{cfg.ID}
	} else {
		var err error
		if ids, err = repair.RootIDCandidates(ctx, l.st); err != nil {
			return nil, err
		}
		if l.known != nil && !slices.Contains(ids, l.known.ID) {
			ids = append(ids, l.known.ID)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("vault at %s: its config is lost and no object there names the vault's ID (no signed copy, no machine area config): run repair on the machine that created the vault", l.abs)
		}
	}
	pass, err := t.passphrase("the owner passphrase of the vault at " + l.abs)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		owner, err := repo.UnlockOwnerOf(ctx, l.st, id, pass)
		if err == nil {
			return owner, nil
		}
		if !errors.Is(err, keys.ErrWrongPassphrase) {
			return nil, fmt.Errorf("vault at %s: %w", l.abs, err)
		}
	}
	return nil, fmt.Errorf("wrong owner passphrase for the vault at %s", l.abs)
}

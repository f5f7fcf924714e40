package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// ConfigCopyName is the owner-signed copy of a config, beside it in the
// vault root and in every machine area (package repo/repair writes and
// reads it): the config is plaintext and unauthenticated, so the copy is
// what azfs repair rebuilds a lost or damaged one from.
const ConfigCopyName = "config.signed"

// ErrConfigLost reports a config that is missing or damaged where the
// rest of a vault (or machine area) is there; azfs repair rebuilds it.
var ErrConfigLost = fmt.Errorf("%w: the config is missing or damaged, but the vault's keys are there: run 'azfs repair --apply' (as the owner) to rebuild it", ErrDamaged)

// lostConfig returns what ReadConfig reports of a config st does not hold
// or holds damaged (why): ErrConfigLost when the config's signed copy is
// there, or key slots and content (machine areas, packs, index files or
// points); else ErrNoVault for a missing config (nothing, or a creation
// that stopped before its config was saved) and ErrDamaged for a damaged
// one.
func lostConfig(ctx context.Context, st storage.Storage, why error) error {
	lost := func() error { return fmt.Errorf("read vault config: %w (%w)", ErrConfigLost, why) }
	if _, err := st.Stat(ctx, ConfigCopyName); err == nil {
		return lost()
	}
	hasKeys, err := holdsAny(ctx, st, keysPrefix)
	if err != nil {
		return err
	}
	if hasKeys {
		for _, prefix := range []string{machinesPrefix, PointsPrefix, IndexPrefix, dataPrefix} {
			found, err := holdsAny(ctx, st, prefix)
			if err != nil {
				return err
			}
			if found {
				return lost()
			}
		}
	}
	if errors.Is(why, storage.ErrNotFound) {
		return ErrNoVault
	}
	return fmt.Errorf("read vault config: %w: %w", ErrDamaged, why)
}

// holdsAny reports whether st holds an object under prefix.
func holdsAny(ctx context.Context, st storage.Storage, prefix string) (bool, error) {
	found := false
	err := st.List(ctx, prefix, func(storage.Info) error {
		found = true
		return errStopList
	})
	if err != nil && !errors.Is(err, errStopList) {
		return false, fmt.Errorf("read vault config: %w", err)
	}
	return found, nil
}

var errStopList = errors.New("stop listing")

// EncodeConfig returns a config as it is stored.
func EncodeConfig(cfg Config) ([]byte, error) {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode vault config: %w", err)
	}
	return b, nil
}

// ReplaceConfig stores cfg as the config of st (a vault root or a machine
// area), first moving a config that is there (damaged, or not cfg) to
// quarantine/config.
func ReplaceConfig(ctx context.Context, st storage.Storage, cfg Config) error {
	b, err := EncodeConfig(cfg)
	if err != nil {
		return err
	}
	old, err := st.Load(ctx, configName, 0, maxQuarantineCopy)
	switch {
	case err == nil:
		area := &Area{st: st}
		if _, err := area.saveQuarantined(ctx, configName, old); err != nil {
			return err
		}
		if err := area.deleteObject(ctx, configName); err != nil {
			return err
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("replace vault config: %w", err)
	}
	if err := st.Save(ctx, configName, b); err != nil {
		return fmt.Errorf("replace vault config: %w", err)
	}
	return nil
}

// UnlockOwnerOf opens an owner key slot of the vault root st with pass,
// taking vaultID for the vault's ID, without reading the root config (it
// may be lost): the slot binds the ID, so only the right one opens it.
func UnlockOwnerOf(ctx context.Context, st storage.Storage, vaultID string, pass keys.Passphrase) (*keys.OwnerKeys, error) {
	var owner *keys.OwnerKeys
	err := eachSlot(ctx, st, func(slot *keys.Slot, slotID string) error {
		var err error
		owner, err = slot.UnlockOwner(vaultID, slotID, pass)
		return err
	})
	return owner, err
}

// MachineAreas lists the names of the machine areas in the vault root st
// that hold a config or an escrow: Machines and the areas whose config is
// lost (or whose registration stopped before the config was saved).
func MachineAreas(ctx context.Context, st storage.Storage) ([]string, error) {
	return machineAreas(ctx, st, configName, escrowName)
}

// machineAreas lists the names of the machine areas in the vault root st
// that hold one of files.
func machineAreas(ctx context.Context, st storage.Storage, files ...string) ([]string, error) {
	names, err := listNames(ctx, st, machinesPrefix)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var out []string
	for _, n := range names {
		m, file, ok := strings.Cut(strings.TrimPrefix(n, machinesPrefix), "/")
		if ok && slices.Contains(files, file) && !seen[m] && CheckMachineName(m) == nil {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

// MachineKeysAsOwner opens the escrow of machine name (format §4.6) with
// the owner's keys and returns the key set it holds, without reading the
// area's config.
func MachineKeysAsOwner(ctx context.Context, st storage.Storage, rootID, name string, owner *keys.OwnerKeys) (*keys.KeySet, storage.Info, error) {
	r := Root{Storage: st}
	area := r.MachineStorage(name)
	fi, err := area.Stat(ctx, escrowName)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fi, r.NoMachine(ctx, name)
	}
	if err != nil {
		return nil, fi, fmt.Errorf("machine %s: %w", name, err)
	}
	sealed, err := area.Load(ctx, escrowName, 0, -1)
	if err != nil {
		return nil, fi, fmt.Errorf("machine %s: %w", name, err)
	}
	plain, err := owner.OpenAsOwner(sealed, escrowAD(rootID, name))
	if err != nil {
		return nil, fi, fmt.Errorf("machine %s escrow: %w: %w", name, ErrDamaged, err)
	}
	ks, err := keys.ParseKeySet(plain)
	if err != nil {
		return nil, fi, fmt.Errorf("machine %s escrow: %w: %w", name, ErrDamaged, err)
	}
	return ks, fi, nil
}

// KeySlots returns the IDs of the key slots of st (a vault root or a
// machine area), and of those that do not parse as a key slot. A slot
// that parses may still be damaged: only its passphrase tells.
func KeySlots(ctx context.Context, st storage.Storage) (all, unparsable []string, err error) {
	names, err := listNames(ctx, st, keysPrefix)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		id := strings.TrimPrefix(n, keysPrefix)
		all = append(all, id)
		b, err := st.Load(ctx, n, 0, maxSlotSize+1)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read key slot %s: %w", id, err)
		}
		if _, err := keys.ParseSlot(b); err != nil || len(b) > maxSlotSize {
			unparsable = append(unparsable, id)
		}
	}
	return all, unparsable, nil
}

// maxSlotSize bounds what KeySlots reads of a slot: a slot is well under
// a kilobyte.
const maxSlotSize = 64 << 10

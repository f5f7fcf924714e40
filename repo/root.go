package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// The vault root holds the owner's config and key slots; each registered
// machine has an area of its own, machines/<name>/, laid out as a vault
// (config, keys, data, index, points) under that machine's own key set.
const (
	machinesPrefix = "machines/"
	escrowName     = "escrow"
)

// Errors of machine registration and owner operations.
var (
	ErrMachineExists  = errkind.New(errkind.Exists, "a machine of that name is already registered")
	ErrNoMachine      = errkind.New(errkind.NotFound, "no such machine in the vault")
	ErrMachineName    = errkind.New(errkind.Invalid, "invalid machine name")
	ErrNotOwnerVault  = errors.New("the vault has no owner (made by an older azfs)")
	ErrOwnerMismatch  = errkind.New(errkind.Permission, "the vault's owner keys do not match")
	machineNameRegexp = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// CheckMachineName refuses names that cannot name a machine: 1 to 63
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func CheckMachineName(name string) error {
	if !machineNameRegexp.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrMachineName, name)
	}
	return nil
}

// Root is a vault root: the storage it lives in and its config, which
// holds the owner's public keys. The owner's key slots, the certificates
// (package repo/certs), credentials and PINs (repo/access) are at the
// root; each registered machine has an area below it (MachineStorage),
// opened as an Area.
type Root struct {
	Storage storage.Storage
	Config
}

// OpenRoot reads the config of the vault root st.
func OpenRoot(ctx context.Context, st storage.Storage) (Root, error) {
	cfg, err := ReadConfig(ctx, st)
	if err != nil {
		return Root{}, err
	}
	return Root{Storage: st, Config: cfg}, nil
}

// CheckOwner refuses owner keys that are not the root's, before anything
// is signed with them.
func (r Root) CheckOwner(owner *keys.OwnerKeys) error {
	if r.Owner == nil {
		return ErrNotOwnerVault
	}
	if owner.Vault != r.ID || !owner.Public().Equal(*r.Owner) {
		return ErrOwnerMismatch
	}
	return nil
}

// MachineStorage returns the area of machine name.
func (r Root) MachineStorage(name string) storage.Storage {
	return storage.Sub(r.Storage, machinesPrefix+name+"/")
}

// CreateVault makes a new vault root in st: its config with the owner's
// public keys, and an owner key slot under pass. It returns the root and
// the owner's keys.
func CreateVault(ctx context.Context, st storage.Storage, pass keys.Passphrase, kdf keys.KDF) (Root, *keys.OwnerKeys, error) {
	r := Root{Storage: st}
	if err := pass.Check(); err != nil {
		return r, nil, err
	}
	if _, err := st.Stat(ctx, configName); err == nil {
		return r, nil, ErrVaultExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return r, nil, fmt.Errorf("create vault: %w", err)
	}
	var rawID [16]byte
	if _, err := rand.Read(rawID[:]); err != nil {
		return r, nil, fmt.Errorf("create vault: %w", err)
	}
	cfg := Config{Format: FormatVersion, ID: hex.EncodeToString(rawID[:]), Created: time.Now().UTC().Truncate(time.Second)}
	owner, err := keys.NewOwnerKeys(cfg.ID)
	if err != nil {
		return r, nil, err
	}
	pub := owner.Public()
	cfg.Owner = &pub
	if err := r.AddOwnerSlot(ctx, owner, pass, kdf); err != nil {
		return r, nil, err
	}
	b, err := EncodeConfig(cfg)
	if err != nil {
		return r, nil, err
	}
	if err := st.Save(ctx, configName, b); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return r, nil, ErrVaultExists
		}
		return r, nil, fmt.Errorf("create vault: %w", err)
	}
	r.Config = cfg
	return r, owner, nil
}

// AddOwnerSlot stores a new owner key slot under pass.
func (r Root) AddOwnerSlot(ctx context.Context, owner *keys.OwnerKeys, pass keys.Passphrase, kdf keys.KDF) error {
	_, err := addSlot(ctx, r.Storage, func(slotID string) (*keys.Slot, error) {
		return keys.NewOwnerSlot(owner, slotID, pass, kdf)
	})
	return err
}

// OwnerSlots lists the IDs of the vault root's owner key slots.
func (r Root) OwnerSlots(ctx context.Context) ([]string, error) {
	names, err := listNames(ctx, r.Storage, keysPrefix)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = path.Base(n)
	}
	sort.Strings(ids)
	return ids, nil
}

// ErrLastSlot refuses to remove the only key slot.
var ErrLastSlot = errkind.New(errkind.Invalid, "refusing to remove the last owner key slot: add another first")

// RemoveOwnerSlot deletes owner key slot id, unless it is the last one.
func (r Root) RemoveOwnerSlot(ctx context.Context, id string) error {
	ids, err := r.OwnerSlots(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, s := range ids {
		found = found || s == id
	}
	if !found {
		return fmt.Errorf("no owner key slot %q (see 'azfs key list')", id)
	}
	if len(ids) == 1 {
		return ErrLastSlot
	}
	if err := r.Storage.Delete(ctx, keysPrefix+id); err != nil {
		return fmt.Errorf("remove owner key slot: %w", err)
	}
	return nil
}

// UnlockOwner opens the vault root's owner keys with pass.
func (r Root) UnlockOwner(ctx context.Context, pass keys.Passphrase) (*keys.OwnerKeys, error) {
	if r.Owner == nil {
		return nil, ErrNotOwnerVault
	}
	var owner *keys.OwnerKeys
	err := eachSlot(ctx, r.Storage, func(slot *keys.Slot, slotID string) error {
		var err error
		owner, err = slot.UnlockOwner(r.ID, slotID, pass)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !owner.Public().Equal(*r.Owner) {
		return nil, ErrOwnerMismatch
	}
	return owner, nil
}

// CertMode makes a machine write-only: it writes for certificate ID, to
// which Wrap encrypts.
type CertMode struct {
	ID   string
	Wrap Wrapper
}

// RegisterMachine creates machine name's area with a fresh key set wrapped under pass, and seals that key
// set to the owner so that the owner can check and prune it. With cert, the
// key set is write-only and also wrapped to the certificate. Names are
// unique: a taken name gives ErrMachineExists.
func (r Root) RegisterMachine(ctx context.Context, name string, pass keys.Passphrase, kdf keys.KDF, cert *CertMode) (*Area, error) {
	if err := CheckMachineName(name); err != nil {
		return nil, err
	}
	if r.Owner == nil {
		return nil, ErrNotOwnerVault
	}
	area := r.MachineStorage(name)
	// The escrow is stored before the config claims the name: a registered
	// machine is always one the owner can open.
	escrow := func(ks *keys.KeySet) error {
		plain, err := ks.Marshal()
		if err != nil {
			return err
		}
		sealed, err := r.Owner.SealToOwner(plain, escrowAD(r.ID, name))
		if err != nil {
			return err
		}
		if err := area.Save(ctx, escrowName, sealed); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return fmt.Errorf("%w: %s", ErrMachineExists, name)
			}
			return fmt.Errorf("register machine %s: %w", name, err)
		}
		if cert != nil {
			return SaveCertKey(ctx, area, ks, cert.Wrap)
		}
		return nil
	}
	certID := ""
	if cert != nil {
		certID = cert.ID
	}
	v, err := create(ctx, area, pass, kdf, Config{Vault: r.ID, Machine: name}, certID, escrow)
	if errors.Is(err, ErrVaultExists) {
		return nil, fmt.Errorf("%w: %s", ErrMachineExists, name)
	}
	return v, err
}

func escrowAD(vaultID, machine string) []byte {
	return []byte("azfs-escrow-v1\x00" + vaultID + "\x00" + machine)
}

// RotateMachineKeys moves machine name to the key epoch of certificate
// cert (see keys.KeySet.Epoch): a write-only machine whose vault's
// certificate changed, or a passphrase-mode machine of a vault that just
// switched to certificate mode (one way: it keeps no data key). The epoch's
// keys are stored wrapped to the certificate; it returns them.
func (r Root) RotateMachineKeys(ctx context.Context, name string, ks *keys.KeySet, cert CertMode) (*keys.KeySet, error) {
	next := ks.Epoch(cert.ID)
	if err := SaveCertKey(ctx, r.MachineStorage(name), next, cert.Wrap); err != nil {
		return nil, err
	}
	return next, nil
}

// MachineExists reports whether machine name is registered.
func (r Root) MachineExists(ctx context.Context, name string) (bool, error) {
	_, err := r.MachineStorage(name).Stat(ctx, configName)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("machine %s: %w", name, err)
}

// Machines lists the names of the machines registered in the vault.
func (r Root) Machines(ctx context.Context) ([]string, error) {
	return machineAreas(ctx, r.Storage, configName)
}

// NoMachine returns [ErrNoMachine] for name, naming the machines the vault
// holds, so that a mistyped name finds the right one.
func (r Root) NoMachine(ctx context.Context, name string) error {
	names, err := r.Machines(ctx)
	switch {
	case err != nil: // say what is known: the name is not there
		return fmt.Errorf("%w: %s", ErrNoMachine, name)
	case len(names) == 0:
		return fmt.Errorf("%w: %s (the vault holds no machine)", ErrNoMachine, name)
	case len(names) > maxNamedMachines:
		return fmt.Errorf("%w: %s (the vault's machines: %s and %d more; 'azfs machines' lists them)", ErrNoMachine, name,
			strings.Join(names[:maxNamedMachines], ", "), len(names)-maxNamedMachines)
	}
	return fmt.Errorf("%w: %s (the vault's machines: %s)", ErrNoMachine, name, strings.Join(names, ", "))
}

// maxNamedMachines is how many machines NoMachine names at most.
const maxNamedMachines = 20

// OpenMachine opens machine name's area with the machine's key set, which
// must belong to it and to the vault root.
func (r Root) OpenMachine(ctx context.Context, name string, ks *keys.KeySet) (*Area, error) {
	v, err := Open(ctx, r.MachineStorage(name), ks)
	if errors.Is(err, ErrNoVault) {
		return nil, r.NoMachine(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	if v.cfg.Vault != r.ID || v.cfg.Machine != name {
		return nil, fmt.Errorf("machine area %s: %w (it names vault %q, machine %q)", name, ErrDamaged, v.cfg.Vault, v.cfg.Machine)
	}
	return v, nil
}

// UnlockMachine opens machine name's area with that machine's passphrase.
func (r Root) UnlockMachine(ctx context.Context, name string, pass keys.Passphrase) (*Area, error) {
	if err := CheckMachineName(name); err != nil {
		return nil, err
	}
	ks, err := Unlock(ctx, r.MachineStorage(name), pass)
	if errors.Is(err, ErrNoVault) {
		return nil, r.NoMachine(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	return r.OpenMachine(ctx, name, ks)
}

// OpenMachineAsOwner opens machine name's area with the key set it sealed
// to the owner at registration.
func (r Root) OpenMachineAsOwner(ctx context.Context, name string, owner *keys.OwnerKeys) (*Area, error) {
	ks, _, err := MachineKeysAsOwner(ctx, r.Storage, r.ID, name, owner)
	if err != nil {
		return nil, err
	}
	return r.OpenMachine(ctx, name, ks)
}

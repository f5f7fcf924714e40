// Package enroll joins hosts to a vault and lets the owner admit them: it
// creates a vault with this host as its owner and first machine, issues
// and revokes the vault credentials that admit machines (with the SAS
// tokens of a blob vault's storage), registers a new machine with backup
// credentials, takes up the name of a reinstalled machine, and renews a
// registered machine's storage access. What a host keeps of a vault is a
// keyring entry (keys/keyring.Vault): the functions on a vault root return
// or update it; those on a root package open opened for this host
// (CreateVaultAt, RegisterHost, TakeUpHost, RenewHost,
// ChangeHostPassphrase) also keep it in the host's keyring.
package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/repair"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/unlock"
)

// certMode returns the certificate mode of machines that back up to c
// (nil: none).
func certMode(c *cert.Certificate) *repo.CertMode {
	if c == nil {
		return nil
	}
	return &repo.CertMode{ID: c.ID(), Wrap: c.Wrap}
}

// CreateVault creates a vault in st whose owner keys and first machine,
// machine, are both protected by pass; with c (certificate mode) the
// vault's backups are encrypted to that certificate. The root's and the
// machine's configs get their owner-signed copies (what 'azfs repair'
// rebuilds them from). It returns this host's keyring entry: the owner
// keys and the machine's key set.
func CreateVault(ctx context.Context, st storage.Storage, location string, pass keys.Passphrase, kdf keys.KDF, machine string, c *cert.Certificate) (*keyring.Vault, error) {
	root, owner, err := repo.CreateVault(ctx, st, pass, kdf)
	if err != nil {
		return nil, fmt.Errorf("create vault at %s: %w", location, err)
	}
	if c != nil {
		if err := certs.Add(ctx, st, owner, c); err != nil {
			return nil, err
		}
	}
	v, err := root.RegisterMachine(ctx, machine, pass, kdf, certMode(c))
	if err != nil {
		return nil, fmt.Errorf("register %s in the new vault: %w", machine, err)
	}
	// The configs are plaintext: their signed copies are what azfs repair
	// rebuilds them from.
	if err := repair.SaveConfigCopy(ctx, st, root.Config, owner); err != nil {
		return nil, err
	}
	if err := repair.SaveConfigCopy(ctx, root.MachineStorage(machine), v.Config(), owner); err != nil {
		return nil, err
	}
	return &keyring.Vault{ID: root.ID, Location: location, Machine: machine, Keys: v.Keys(), Owner: owner}, nil
}

// SASStore is a blob vault's storage, which enforces the SAS tokens of
// the credentials the owner issues (azblob.Store).
type SASStore interface {
	CanGrantSAS() error
	GrantSAS(ctx context.Context, scope string, a azblob.Access, expiry time.Time) (azblob.Grant, error)
	RevokeSAS(ctx context.Context, scope string, access ...azblob.Access) (int, error)
}

// sasAccess is what the storage lets a SAS token of credentials of acc do.
func sasAccess(acc access.Access) azblob.Access {
	if acc == access.AccessBackup {
		return azblob.CreateOnly
	}
	return azblob.ReadOnly
}

// Issued are credentials the owner issued.
type Issued struct {
	*access.Credentials
	// SASExpires is when the storage stops accepting their SAS token (the
	// stored access policy's expiry, which later credentials of the same
	// access share); zero for a vault that is no blob container.
	SASExpires time.Time
}

// Issue issues vault credentials of acc, valid from now for valid, for the
// vault root (at location) of owner. sas is the vault's
// blob storage, nil for any other: the credentials then carry a SAS token
// that allows what acc allows. Nothing is recorded when the storage cannot
// grant one.
func Issue(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, location string, sas SASStore, acc access.Access, valid time.Duration, now time.Time) (Issued, error) {
	if sas != nil {
		if err := sas.CanGrantSAS(); err != nil {
			return Issued{}, fmt.Errorf("vault %s: credentials for a blob vault carry a SAS token: %w", location, err)
		}
	}
	creds, err := access.Issue(ctx, root, owner, location, acc, valid, now)
	if err != nil {
		return Issued{}, err
	}
	out := Issued{Credentials: creds}
	if sas != nil {
		grant, err := sas.GrantSAS(ctx, root.ID, sasAccess(acc), creds.Expires)
		if err != nil {
			return Issued{}, err
		}
		creds.SAS, out.SASExpires = keys.Token(grant.Token), grant.Expires
	}
	return out, nil
}

// Revoked is what Revoke did: the shape of 'azfs vault credentials revoke
// --json'.
type Revoked struct {
	VaultID string          `json:"vault_id"`
	Access  []access.Access `json:"access"`  // the kinds revoked
	Revoked int             `json:"revoked"` // credentials files on record
	// StorageRefuses says a blob vault's storage refuses their SAS tokens
	// from now on.
	StorageRefuses bool `json:"storage_refuses"`
}

// Revoke revokes every credentials file of the kinds given that the owner
// issued for the vault root, and says how many were on record. On a blob
// vault (sas not nil) the storage's refusal of their SAS tokens comes
// first: it is what binds a machine that does not play by the rules.
func Revoke(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, sas SASStore, kinds ...access.Access) (Revoked, error) {
	if sas != nil {
		var tokens []azblob.Access
		for _, k := range kinds {
			tokens = append(tokens, sasAccess(k))
		}
		if _, err := sas.RevokeSAS(ctx, root.ID, tokens...); err != nil {
			return Revoked{}, err
		}
	}
	n, err := access.Revoke(ctx, root, owner, kinds...)
	if err != nil {
		return Revoked{}, err
	}
	return Revoked{VaultID: root.ID, Access: kinds, Revoked: n, StorageRefuses: sas != nil}, nil
}

// Entry returns the keyring entry of a host registered as machine name of
// the vault (root, at location) with the key set ks, admitted by creds:
// it pins the owner keys the credentials vouched for, and on a blob vault
// their SAS token is the host's storage access from then on.
func Entry(root repo.Config, location, name string, ks *keys.KeySet, creds *access.Credentials) *keyring.Vault {
	e := &keyring.Vault{ID: root.ID, Location: location, Machine: name, Keys: ks, OwnerPublic: root.Owner}
	if creds != nil && creds.SAS != "" {
		e.SAS, e.SASExpires = creds.SAS, creds.Expires
	}
	return e
}

// Register registers a new machine name in the vault root (at location) under pass, admitted by creds; with c, the vault's
// current certificate, the machine is write-only: it encrypts to c. It
// returns the host's keyring entry (Entry). A taken name gives
// repo.ErrMachineExists (TakeUp takes it up).
func Register(ctx context.Context, root repo.Root, location, name string, pass keys.Passphrase, kdf keys.KDF, c *cert.Certificate, creds *access.Credentials) (*keyring.Vault, error) {
	v, err := root.RegisterMachine(ctx, name, pass, kdf, certMode(c))
	if err != nil {
		return nil, err
	}
	return Entry(root.Config, location, name, v.Keys(), creds), nil
}

// TakeUp opens the key set of machine name, registered already in the
// vault root, for a reinstalled host that takes up its name: pass asks
// for a passphrase, which proves the right to the name when it is the
// machine's or the owner's (package unlock). Its backups then continue the
// machine's points and deduplicate against them. A passphrase that is
// neither gives an error wrapping repo.ErrMachineExists.
func TakeUp(ctx context.Context, root repo.Root, name string, pass func(machine string) (keys.Passphrase, error)) (*keys.KeySet, error) {
	v, _, err := unlock.Area(ctx, root, name, unlock.Keys{Passphrase: pass})
	if errors.Is(err, keys.ErrWrongPassphrase) {
		return nil, fmt.Errorf("%w: %s, and the passphrase given is neither its nor the owner's (choose another name with --name)", repo.ErrMachineExists, name)
	}
	if err != nil {
		return nil, err
	}
	return v.Keys(), nil
}

// Renew gives e, the keyring entry of a host registered with a blob vault,
// the SAS token of creds, new backup credentials of that vault (at
// location), once its own expired or was revoked; its keys and passphrase
// stay as they are. name is the machine name asked for ("": none). It
// refuses credentials without a SAS token (nothing to renew), another
// name, and credentials that vouch for other owner keys than the host
// pinned when it joined.
func Renew(e *keyring.Vault, creds *access.Credentials, location, name string) error {
	if creds.SAS == "" {
		return fmt.Errorf("this machine is already registered with vault %s as %s", e.ID, e.Machine)
	}
	if name != "" && name != e.Machine {
		return fmt.Errorf("this machine is registered with vault %s as %s, not %s: 'azfs register' can only renew its storage access", e.ID, e.Machine, name)
	}
	// The credentials vouch for the owner keys the vault names; this
	// machine trusts those it pinned when it joined.
	if pinned, ok := e.OwnerKeys(); ok && !pinned.Equal(creds.Owner) {
		return fmt.Errorf("vault credentials for vault %s: %w since this machine joined it: refusing them", e.ID, repo.ErrOwnerMismatch)
	}
	e.SAS, e.SASExpires, e.Location = creds.SAS, creds.Expires, location
	return nil
}

// ChangePassphrase replaces the passphrase of machine, whose key set ks
// this host holds, in the vault root by the one newPass
// returns, with the owner's consent: pin, a security PIN, spent only once
// nothing else can refuse. Storage credentials that may not delete the
// old key slots (an error wrapping storage.ErrPermission) refuse before
// newPass is asked or the PIN spent; keep, called once the PIN is spent
// and before the slots change, keeps the new passphrase (the caller
// writes a generated one to its file). No data is rewritten.
func ChangePassphrase(ctx context.Context, root repo.Root, machine string, ks *keys.KeySet, pin string,
	newPass func() (keys.Passphrase, error), keep func(keys.Passphrase) error, kdf keys.KDF, now time.Time) error {
	area := root.MachineStorage(machine)
	if err := repo.CanReplaceSlots(ctx, area); err != nil {
		return err
	}
	pass, err := newPass()
	if err != nil {
		return err
	}
	if err := access.UsePIN(ctx, root, pin, now); err != nil {
		return err
	}
	if err := keep(pass); err != nil {
		return err
	}
	if err := repo.ReplacePassphraseSlots(ctx, area, ks, pass, kdf); err != nil {
		return fmt.Errorf("change passphrase of %s: %w", machine, err)
	}
	return nil
}

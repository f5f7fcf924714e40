package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
)

// This file: the use cases of a host joining the vault it opened (package
// open), which keep its entry in the host's keyring.

// CreateVaultAt creates a vault at location (package location: a
// directory, an SMB share or a blob container, reached with opts), whose
// owner and first machine, machine, this host becomes under pass
// (CreateVault, c for certificate mode), and keeps its entry in this
// host's keyring (keyring.ConfigDir) as its default vault. keepPass is
// called with pass once the storage is there and before the vault is
// written (the caller writes a generated passphrase to its file), so that
// a vault's key is never unrecoverable. It returns the entry, whose
// Location is the vault's canonical location.
func CreateVaultAt(ctx context.Context, where string, opts location.Options, pass keys.Passphrase, kdf keys.KDF, machine string, c *cert.Certificate, keepPass func(keys.Passphrase) error) (*keyring.Vault, error) {
	st, path, err := location.Create(where, opts)
	if err != nil {
		return nil, err
	}
	if err := keepPass(pass); err != nil {
		return nil, err
	}
	entry, err := CreateVault(ctx, st, path, pass, kdf, machine, c)
	if err != nil {
		return nil, err
	}
	ring, err := keyring.LoadHost()
	if err != nil {
		return nil, err
	}
	ring.Add(entry, true)
	return entry, ring.Save()
}

// keep adds entry, this host's entry of the vault o has open, to o's
// keyring and saves it (0600); o.Entry is entry from then on.
func keep(o *open.Opened, entry *keyring.Vault) error {
	o.Ring.Add(entry, false)
	o.Entry = entry
	return o.Ring.Save()
}

// RegisterHost registers this host as the new machine name of the vault
// o opened with backup credentials (open.WithCredentials), under pass, and
// keeps its entry in o's keyring. The owner keys the credentials vouched
// for are pinned first, so the vault's current certificate is taken only
// when they signed it (open.Opened.CurrentCertificate): the machine then
// encrypts to it, write-only, and RegisterHost returns it (nil: passphrase
// mode). keepPass is called with pass once nothing before the
// registration can refuse (the caller writes a generated passphrase to
// its file), so a passphrase is never lost for a machine that exists.
func RegisterHost(ctx context.Context, o *open.Opened, name string, pass keys.Passphrase, kdf keys.KDF, keepPass func(keys.Passphrase) error) (*cert.Certificate, error) {
	o.Entry = &keyring.Vault{OwnerPublic: o.Root.Owner}
	c, err := o.CurrentCertificate(ctx)
	if err != nil {
		return nil, err
	}
	if err := keepPass(pass); err != nil {
		return nil, err
	}
	entry, err := Register(ctx, o.VaultRoot(), o.Location, name, pass, kdf, c, o.Credentials)
	if err != nil {
		return nil, err
	}
	return c, keep(o, entry)
}

// TakeUpHost registers this host, reinstalled, as machine name, which the
// vault o (opened with backup credentials) holds already (TakeUp: pass
// asks for the machine's passphrase or the owner's), and keeps its entry
// in o's keyring.
func TakeUpHost(ctx context.Context, o *open.Opened, name string, pass func(machine string) (keys.Passphrase, error)) error {
	ks, err := TakeUp(ctx, o.VaultRoot(), name, pass)
	if err != nil {
		return err
	}
	return keep(o, Entry(o.Root, o.Location, name, ks, o.Credentials))
}

// RenewHost gives this host, registered with the blob vault o has open,
// the SAS token of the credentials o was opened with (Renew; name is the
// machine name asked for, "" for none), and saves its keyring.
func RenewHost(o *open.Opened, name string) error {
	if err := Renew(o.Entry, o.Credentials, o.Location, name); err != nil {
		return err
	}
	return o.Ring.Save()
}

// SASStoreOf returns the blob storage of the vault o has open, which
// enforces its credentials' SAS tokens (Issue, Revoke); nil for a vault
// that is no blob container.
func SASStoreOf(o *open.Opened) SASStore {
	if o.Container == nil {
		return nil
	}
	return o.Container
}

// ChangeHostPassphrase replaces the passphrase of this host's machine in
// the vault root o has open (ChangePassphrase, with the key set this host
// holds: the old passphrase is not needed, the owner's PIN is the proof
// that the owner agrees). A host that is not registered with the vault is
// refused, and so, with an explanation, are a blob vault's storage
// credentials that may not delete the old key slots.
func ChangeHostPassphrase(ctx context.Context, o *open.Opened, pin string, newPass func() (keys.Passphrase, error), keepPass func(keys.Passphrase) error, kdf keys.KDF, now time.Time) error {
	if o.Entry == nil || o.Entry.Keys == nil {
		return fmt.Errorf("this machine is not registered with the vault at %s: a passphrase can be changed only on the machine it protects", o.Location)
	}
	err := ChangePassphrase(ctx, o.VaultRoot(), o.Entry.Machine, o.Entry.Keys, pin, newPass, keepPass, kdf, now)
	if o.Container != nil && errors.Is(err, storage.ErrPermission) {
		return fmt.Errorf("%w: a passphrase change deletes the old key slots: run it with the vault owner's connection string (%s or --connection-string-file)", err, location.ConnectionStringEnv)
	}
	return err
}

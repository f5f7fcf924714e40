// Package open opens a vault as a command needs it: as its owner
// ([Owner], [OwnerMachine], [OwnerState], [OwnerForRepair],
// [Opened.AreaAsOwner]), as one of its machines with the keys this host
// holds or a machine's passphrase ([Machine], [PointsReader]), with a
// vault credentials file ([WithCredentials]) or a certificate's private key
// (Target.PrivateKey), and for reading points ([ForReading], [ReadPoint]).
// Commands decide nothing about keys themselves. It makes every trust
// check on the way:
//
//   - owner-key pinning: a root config naming other owner keys than those
//     this host's keyring pinned when it joined the vault is refused
//     (repo.ErrOwnerMismatch), and so is a keyring's owner key set that is
//     not the vault's;
//   - a vault credentials file must be signed by the vault's owner, current,
//     and allow the operation (access.Verify); restore credentials write
//     nothing;
//   - the vault's current certificate must be signed by the owner keys this
//     host trusts ([Opened.CurrentCertificate]; a backup takes it only so,
//     [Opened.StartBackupSession]);
//   - an area that lost points this host saw it show is noticed
//     ([Opened.NoticeRollback]): listed with a warning, refused to commands
//     that forget or purge ([Opened.StateToChange]).
//
// Which keys open a machine's area, in which order, is repo/unlock's
// decision; where a vault location's storage is, package location's. It
// asks nothing of a user: passphrases come through [Passphrases], and
// warnings go to the caller's functions.
package open

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/storage/location"
	"github.com/azfs/azfs/repo/unlock"
)

// Passphrases is where the passphrase that opens a vault (a machine's or
// the owner's) comes from when this host does not hold the keys.
type Passphrases interface {
	// Given reports whether a passphrase is given up front (a file, a
	// command): it then goes before the owner's escrow, which in
	// certificate mode reads no points.
	Given() (bool, error)
	// Passphrase returns the passphrase whose names, such as "the
	// passphrase of machine web01 (or the vault owner's)".
	Passphrase(whose string) (keys.Passphrase, error)
}

// ErrNoPassphrase is the error of a passphrase needed where the Target
// has no Passphrases.
var ErrNoPassphrase = errors.New("a passphrase is needed and none is given")

// Target names the vault and machine to open, and how.
type Target struct {
	// Vault is the vault's location (package location); empty: this host's
	// default vault.
	Vault string
	// Passphrases is where the passphrase comes from when the keys are not
	// on this host; nil: nowhere.
	Passphrases Passphrases
	Machine     string // machine name; empty: the name this host is registered under
	// Credentials is a vault credentials file: the vault is the one it
	// names, checked against it (recovery on another machine).
	Credentials string
	// PrivateKey is a certificate's private key file (certificate mode),
	// with an optional password file for .pfx.
	PrivateKey, PrivateKeyPassFile string
	// ConnectionStringFile names a file holding the connection string of a
	// blob vault's storage account (see location.Auth).
	ConnectionStringFile string
	// OwnerStorage prefers a connection string, when one is given, to this
	// host's SAS token for a blob vault: for owner commands, and for what a
	// SAS for backups may not do (deleting).
	OwnerStorage bool
	// Share is how to log on to a vault on an SMB share.
	Share location.Share
	// Counts, when set, tallies the vault storage's requests.
	Counts *storage.Counts
	// KeyringProblems, when set, receives what is wrong with this host's
	// keyring (entries dropped, files others may read; often nothing) each
	// time it is loaded; the keyring is used anyway.
	KeyringProblems func([]error)
}

// given reports whether t's passphrase is given up front.
func (t Target) given() (bool, error) {
	if t.Passphrases == nil {
		return false, nil
	}
	return t.Passphrases.Given()
}

// passphrase returns the passphrase whose names, from t.Passphrases.
func (t Target) passphrase(whose string) (keys.Passphrase, error) {
	if t.Passphrases == nil {
		return "", fmt.Errorf("%s: %w", whose, ErrNoPassphrase)
	}
	return t.Passphrases.Passphrase(whose)
}

// storageOptions returns how package location reaches t's vault with
// auth.
func (t Target) storageOptions(auth location.Auth) location.Options {
	return location.Options{Blob: auth, Share: t.Share, Counts: t.Counts}
}

// Opened is a vault root as a command sees it.
type Opened struct {
	Root     repo.Config
	Storage  storage.Storage // the vault root
	Location string
	// Container is the vault's blob container, unwrapped, for minting and
	// revoking SAS tokens; nil for a directory.
	Container *azblob.Store
	// Credentials are the vault credentials the vault was opened with; nil
	// otherwise.
	Credentials *access.Credentials
	Ring        *keyring.Keyring
	Entry       *keyring.Vault // what this host knows of the vault; nil if nothing
	Machine     string         // the machine whose area Area is
	Area        *repo.Area     // that machine's area, once opened
}

// VaultRoot returns the vault root o opened.
func (o *Opened) VaultRoot() repo.Root { return repo.Root{Storage: o.Storage, Config: o.Root} }

// ErrNoDefault is the error of a Target naming no vault on a host with no
// default vault: a usage error.
var ErrNoDefault = errkind.New(errkind.Usage, "no vault given and no default vault on this machine: create one with 'azfs vault create PATH', or pass --vault PATH (or set AZFS_VAULT)")

// Root finds the vault t names (or the default one) and reads its root
// config, checking it is the vault this host knows at that place and
// names the owner keys this host pinned.
func Root(ctx context.Context, t Target) (*Opened, error) {
	if t.Credentials != "" {
		return WithCredentials(ctx, t, access.AccessRestore)
	}
	l, err := locate(t)
	if err != nil {
		return nil, err
	}
	cfg, err := repo.ReadConfig(ctx, l.st)
	if errors.Is(err, repo.ErrNoVault) {
		return nil, fmt.Errorf("no vault at %s", l.abs)
	}
	if err != nil {
		return nil, fmt.Errorf("vault at %s: %w", l.abs, err)
	}
	return l.opened(cfg)
}

// located is the storage of the vault a Target names, before its config
// is read.
type located struct {
	ring      *keyring.Keyring
	known     *keyring.Vault // the keyring's entry for that place; nil if none
	st        storage.Storage
	abs       string
	container *azblob.Store
}

// locate finds the vault t names (or the default one) and opens its
// storage.
func locate(t Target) (*located, error) {
	ring, err := loadKeyring(t)
	if err != nil {
		return nil, err
	}
	where := t.Vault
	var known *keyring.Vault
	if where == "" {
		known = ring.Vaults[ring.Default]
		if known == nil {
			return nil, ErrNoDefault
		}
		where = known.Location
	}
	canonical, err := location.Canonical(where, t.Share.User)
	if err != nil {
		return nil, err
	}
	if known == nil {
		known, _ = ring.FindLocation(canonical)
	}
	// A registered machine reaches a blob vault with the SAS token of its
	// credentials, not with whatever else the environment holds.
	auth := location.Auth{ConnectionStringFile: t.ConnectionStringFile}
	if known != nil && known.SAS != "" && !(t.OwnerStorage && auth.HasConnectionString()) {
		auth.SAS, auth.Refused = known.SAS, machineSASRefused(known)
	}
	st, abs, container, err := location.Open(where, t.storageOptions(auth))
	if err != nil {
		return nil, err
	}
	return &located{ring: ring, known: known, st: st, abs: abs, container: container}, nil
}

// opened checks cfg, the root config read at l, against what this host
// knows of the vault there: the vault's ID at that place, and the owner
// keys pinned when this host joined it.
func (l *located) opened(cfg repo.Config) (*Opened, error) {
	ring, known, abs := l.ring, l.known, l.abs
	if cfg.Owner == nil {
		return nil, fmt.Errorf("%s is a machine's area or an older vault, not a vault root", abs)
	}
	if known != nil && known.ID != cfg.ID && known.Location == abs {
		return nil, fmt.Errorf("the vault at %s is not the vault this machine knows there (found %s, expected %s)", abs, cfg.ID, known.ID)
	}
	entry := ring.Vaults[cfg.ID]
	if entry != nil {
		// The owner keys this host trusts were vouched for when it joined;
		// a config naming others is not the owner's doing.
		if pinned, ok := entry.OwnerKeys(); ok && !pinned.Equal(*cfg.Owner) {
			return nil, fmt.Errorf("vault at %s: %w since this machine joined it: refusing to trust it", abs, repo.ErrOwnerMismatch)
		}
	}
	return &Opened{Root: cfg, Storage: l.st, Location: abs, Container: l.container, Ring: ring, Entry: entry}, nil
}

// WithCredentials opens the vault root the credentials file t.Credentials
// names, after checking the credentials against that vault for an
// operation needing need: signed by the vault's owner, not expired nor
// revoked, allowing need. A blob vault is reached with the file's SAS
// token; a file without one (issued before azfs put them in) falls back to
// the connection string (t.ConnectionStringFile, or the environment's).
func WithCredentials(ctx context.Context, t Target, need access.Access) (*Opened, error) {
	file := t.Credentials
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read vault credentials: %w", err)
	}
	creds, err := access.ParseCredentials(b)
	if err != nil {
		return nil, fmt.Errorf("vault credentials %s: %w", file, err)
	}
	if creds.SAS != "" && !location.IsBlob(creds.Location) {
		return nil, fmt.Errorf("vault credentials %s: %w: a SAS token for %s, which is not a blob container", file, access.ErrMalformed, creds.Location)
	}
	// Expired credentials are refused before the storage is asked, which
	// would only say that it refuses their SAS token.
	if err := creds.CheckExpiry(time.Now()); err != nil {
		return nil, err
	}
	auth := location.Auth{SAS: creds.SAS, Refused: credentialsSASRefused(file, creds.Expires), ConnectionStringFile: t.ConnectionStringFile}
	st, abs, container, err := location.Open(creds.Location, t.storageOptions(auth))
	if err != nil {
		return nil, err
	}
	root, err := access.Verify(ctx, st, creds, need, time.Now())
	if err != nil {
		return nil, err
	}
	st = creds.Restrict(st) // restore credentials write nothing
	ring, err := loadKeyring(t)
	if err != nil {
		return nil, err
	}
	return &Opened{Root: root, Storage: st, Location: abs, Container: container, Credentials: creds, Ring: ring, Entry: ring.Vaults[root.ID]}, nil
}

// loadKeyring loads this host's keyring, handing its problems to
// t.KeyringProblems.
func loadKeyring(t Target) (*keyring.Keyring, error) {
	ring, err := keyring.LoadHost()
	if err != nil {
		return nil, err
	}
	if t.KeyringProblems != nil {
		t.KeyringProblems(ring.Problems)
	}
	return ring, nil
}

// Machine opens the area of the machine t names: with the keys this host
// holds when it is that machine, else with that machine's passphrase; on
// the owner's host, when no passphrase is given, through the machine's
// escrow.
func Machine(ctx context.Context, t Target) (*Opened, error) {
	o, err := Root(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := o.openMachine(ctx, t); err != nil {
		return nil, err
	}
	return o, nil
}

// openMachine opens the area of the machine t names; on the owner's host,
// when no passphrase is given, another machine's area opens through its
// escrow, as for [Opened.OpenAreaAsOwner]. A passphrase given goes first:
// in certificate mode the escrow reads no points, while a machine's
// passphrase still opens those from before the certificate.
func (o *Opened) openMachine(ctx context.Context, t Target) error {
	var owner *keys.OwnerKeys
	given, err := t.given()
	if err != nil {
		return err
	}
	if e := o.Entry; e != nil && e.Owner != nil && e.Owner.Public().Equal(*o.Root.Owner) && !given {
		owner = e.Owner
	}
	return o.openArea(ctx, t, owner)
}

// OpenAreaAsOwner opens, in the root o has open with the owner's keys, the
// area of the machine t names (default: this host's): with this host's own
// keys when it is that machine, with a certificate's private key when t
// gives one, else through the key set the machine escrowed to the owner
// (which, in certificate mode, reads no points).
func (o *Opened) OpenAreaAsOwner(ctx context.Context, t Target, owner *keys.OwnerKeys) error {
	return o.openArea(ctx, t, owner)
}

// openArea opens the area of the machine t names with the keys at hand,
// as package unlock decides: t's private key, this host's keys, the
// owner's escrow when owner is set, else the machine's passphrase.
func (o *Opened) openArea(ctx context.Context, t Target, owner *keys.OwnerKeys) error {
	var passErr error
	k := unlock.Keys{Owner: owner, Passphrase: func(machine string) (keys.Passphrase, error) {
		pass, err := t.passphrase("the passphrase of machine " + machine + " (or the vault owner's)")
		passErr = err
		return pass, err
	}}
	if e := o.Entry; e != nil {
		k.Host, k.HostMachine = e.Keys, e.Machine
	}
	if t.PrivateKey != "" {
		key, err := loadPrivateKey(t)
		if err != nil {
			return err
		}
		k.PrivateKey = key
	}
	v, machine, err := unlock.Area(ctx, o.VaultRoot(), t.Machine, k)
	switch {
	case err == nil:
		o.Machine, o.Area = machine, v
		return nil
	case passErr != nil:
		return passErr
	case errors.Is(err, unlock.ErrNoMachine) && t.PrivateKey != "":
		return &usageError{"name the machine whose points to open with --machine NAME", err}
	case errors.Is(err, unlock.ErrNoMachine):
		return &usageError{fmt.Sprintf("this machine is not registered with the vault at %s: name a machine with --machine NAME (its passphrase is needed), or register with 'azfs register'", o.Location), err}
	case errors.Is(err, keys.ErrWrongPassphrase):
		return fmt.Errorf("wrong passphrase for machine %s of the vault at %s", t.Machine, o.Location)
	case errors.Is(err, repo.ErrMachineName) && owner != nil:
		return &usageError{err.Error(), err}
	}
	return fmt.Errorf("vault at %s: %w", o.Location, err)
}

// Owner opens the vault root t names with the owner's keys: those this
// host holds (refused unless they are the vault's), else those the owner
// passphrase opens. A blob vault is opened with the owner's connection
// string when one is given (t.OwnerStorage).
func Owner(ctx context.Context, t Target) (*Opened, *keys.OwnerKeys, error) {
	t.OwnerStorage = true
	o, err := Root(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if o.Entry != nil && o.Entry.Owner != nil {
		if !o.Entry.Owner.Public().Equal(*o.Root.Owner) {
			return nil, nil, fmt.Errorf("vault at %s: %w: the owner keys this machine holds are not the vault's", o.Location, repo.ErrOwnerMismatch)
		}
		return o, o.Entry.Owner, nil
	}
	pass, err := t.passphrase("the owner passphrase of the vault at " + o.Location)
	if err != nil {
		return nil, nil, err
	}
	owner, err := o.VaultRoot().UnlockOwner(ctx, pass)
	if errors.Is(err, keys.ErrWrongPassphrase) {
		return nil, nil, fmt.Errorf("wrong owner passphrase for the vault at %s", o.Location)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("vault at %s: %w", o.Location, err)
	}
	return o, owner, nil
}

// OwnerMachine opens the vault root t names with the owner's keys (see
// [Owner]) and then the area of the machine t names (see
// [Opened.OpenAreaAsOwner]).
func OwnerMachine(ctx context.Context, t Target) (*Opened, *keys.OwnerKeys, error) {
	o, owner, err := Owner(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if err := o.OpenAreaAsOwner(ctx, t, owner); err != nil {
		return nil, nil, err
	}
	return o, owner, nil
}

// usageError is an error of what the caller asked: its kind is
// errkind.Usage, so that a command exits with its usage code.
type usageError struct {
	msg string
	err error
}

func (e *usageError) Error() string      { return e.msg }
func (e *usageError) Unwrap() error      { return e.err }
func (e *usageError) Kind() errkind.Kind { return errkind.Usage }

// machineSASRefused says what to do when the storage refuses the SAS token
// of this host's keyring entry e.
func machineSASRefused(e *keyring.Vault) string {
	from := "its backup credentials"
	if !e.SASExpires.IsZero() {
		from += " (expiring " + e.SASExpires.UTC().Format("2006-01-02 15:04 UTC") + ")"
	}
	return "the storage refused this machine's SAS token from " + from + ": it never allows deleting or overwriting; if it expired or was revoked, ask the vault's owner for new backup credentials and renew it with 'azfs register --vault-credentials FILE'"
}

// credentialsSASRefused says what to do when the storage refuses the SAS
// token of the credentials file.
func credentialsSASRefused(file string, expires time.Time) string {
	return fmt.Sprintf("the storage refused the SAS token of vault credentials %s (expiring %s): restore credentials only read, backup credentials never delete or overwrite; if they were revoked, ask the vault's owner for new ones ('azfs vault credentials')",
		file, expires.UTC().Format("2006-01-02 15:04 UTC"))
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/storage/location"
	"github.com/azfs/azfs/repo/unlock"
)

// Target names the vault and machine a command works on.
type Target struct {
	Vault string // location; empty: this machine's default vault
	// PassFile and PassCommand are where the passphrase comes from when
	// the keys are not on this machine (see [PassphraseSource]).
	PassFile, PassCommand string
	Machine               string // machine name; empty: the name this machine is registered under
	// Credentials is a vault credentials file: the vault is the one it
	// names, checked against it (recovery on another machine).
	Credentials string
	// PrivateKey is a certificate's private key file (certificate mode),
	// with an optional password file for .pfx.
	PrivateKey, PrivateKeyPassFile string
	// ConnectionStringFile names a file holding the connection string of a
	// blob vault's storage account (see [Auth]).
	ConnectionStringFile string
	// OwnerStorage prefers a connection string, when one is given, to this
	// machine's SAS token for a blob vault: for owner commands, and for
	// what a SAS for backups may not do (deleting).
	OwnerStorage bool
}

// passphrase returns where t's passphrase comes from.
func (t Target) passphrase() PassphraseSource {
	return PassphraseSource{File: t.PassFile, Command: t.PassCommand}
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
	Entry       *keyring.Vault // what this machine knows of the vault; nil if nothing
	Machine     string         // the machine whose area Vault is
	Vault       *repo.Vault    // that machine's area, once opened
}

// OpenRoot finds the vault t names (or the default one) and reads its root
// config, checking it is the vault this machine knows at that place.
func OpenRoot(ctx context.Context, t Target) (*Opened, error) {
	if t.Credentials != "" {
		return OpenWithCredentials(ctx, t.Credentials, access.AccessRestore, t.ConnectionStringFile)
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
	ring, err := loadKeyring()
	if err != nil {
		return nil, err
	}
	where := t.Vault
	if where == "" {
		where = os.Getenv(VaultEnv)
	}
	var known *keyring.Vault
	if where == "" {
		known = ring.Vaults[ring.Default]
		if known == nil {
			return nil, Usagef("no vault given and no default vault on this machine: create one with 'azfs vault create PATH', or pass --vault PATH (or set " + VaultEnv + ")")
		}
		where = known.Location
	}
	canonical, err := location.Canonical(where, Share.User)
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
	st, abs, container, err := location.Open(where, StorageOptions(auth))
	if err != nil {
		return nil, err
	}
	return &located{ring: ring, known: known, st: st, abs: abs, container: container}, nil
}

// opened checks cfg, the root config read at l, against what this machine
// knows of the vault there.
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
		// The owner keys this machine trusts were vouched for when it joined;
		// a config naming others is not the owner's doing.
		if pinned, ok := entry.OwnerKeys(); ok && !pinned.Equal(*cfg.Owner) {
			return nil, fmt.Errorf("vault at %s: %w since this machine joined it: refusing to trust it", abs, repo.ErrOwnerMismatch)
		}
	}
	return &Opened{Root: cfg, Storage: l.st, Location: abs, Container: l.container, Ring: ring, Entry: entry}, nil
}

// OpenWithCredentials opens the vault root a credentials file names, after
// checking the credentials against that vault for an operation needing
// need. A blob vault is reached with the file's SAS token; a file without
// one (issued before azfs put them in) falls back to the connection string
// (the file connFile names, or the environment's).
func OpenWithCredentials(ctx context.Context, file string, need access.Access, connFile string) (*Opened, error) {
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
	auth := location.Auth{SAS: creds.SAS, Refused: credentialsSASRefused(file, creds.Expires), ConnectionStringFile: connFile}
	st, abs, container, err := location.Open(creds.Location, StorageOptions(auth))
	if err != nil {
		return nil, err
	}
	root, err := access.Verify(ctx, st, creds, need, time.Now())
	if err != nil {
		return nil, err
	}
	st = creds.Restrict(st) // restore credentials write nothing
	ring, err := loadKeyring()
	if err != nil {
		return nil, err
	}
	return &Opened{Root: root, Storage: st, Location: abs, Container: container, Credentials: creds, Ring: ring, Entry: ring.Vaults[root.ID]}, nil
}

func loadKeyring() (*keyring.Keyring, error) {
	dir, err := keyring.ConfigDir()
	if err != nil {
		return nil, err
	}
	ring, err := keyring.Load(dir)
	if err != nil {
		return nil, err
	}
	keyringWarned.Do(func() {
		for _, p := range ring.Problems {
			fmt.Fprintln(os.Stderr, "warning: "+Message(p))
		}
	})
	return ring, nil
}

// keyringWarned makes a process report the keyring's problems once, however
// often it loads it.
var keyringWarned sync.Once

// OpenVault opens the area of the machine t names: with the keys this
// machine holds when it is that machine, else with that machine's
// passphrase.
func OpenVault(ctx context.Context, t Target) (*Opened, error) {
	o, err := OpenRoot(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := o.openMachine(ctx, t); err != nil {
		return nil, err
	}
	return o, nil
}

// openMachine opens the area of the machine t names; on the owner's
// machine, when no passphrase is given, another machine's area opens
// through its escrow, as for [Opened.OpenAreaAsOwner]. A passphrase given
// goes first: in certificate mode the escrow reads no points, while a
// machine's passphrase still opens those from before the certificate.
func (o *Opened) openMachine(ctx context.Context, t Target) error {
	var owner *keys.OwnerKeys
	src, err := t.passphrase().resolve(os.Getenv)
	if err != nil {
		return err
	}
	if e := o.Entry; e != nil && e.Owner != nil && e.Owner.Public().Equal(*o.Root.Owner) && src == (PassphraseSource{}) {
		owner = e.Owner
	}
	return o.openArea(ctx, t, owner)
}

// openArea opens the area of the machine t names with the keys at hand,
// as package unlock decides: t's private key, this machine's keys, the
// owner's escrow when owner is set, else the machine's passphrase.
func (o *Opened) openArea(ctx context.Context, t Target, owner *keys.OwnerKeys) error {
	var passErr error
	k := unlock.Keys{Owner: owner, Passphrase: func(machine string) (keys.Passphrase, error) {
		pass, err := t.passphrase().Read("the passphrase of machine "+machine+" (or the vault owner's)",
			fmt.Sprintf("Passphrase of machine %s (or the vault owner's): ", machine))
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
	v, machine, err := unlock.Area(ctx, o.Storage, o.Root, t.Machine, k)
	switch {
	case err == nil:
		o.Machine, o.Vault = machine, v
		return nil
	case passErr != nil:
		return passErr
	case errors.Is(err, unlock.ErrNoMachine) && t.PrivateKey != "":
		return Usagef("name the machine whose points to open with --machine NAME")
	case errors.Is(err, unlock.ErrNoMachine):
		return Usagef("this machine is not registered with the vault at %s: name a machine with --machine NAME (its passphrase is needed), or register with 'azfs register'", o.Location)
	case errors.Is(err, keys.ErrWrongPassphrase):
		return fmt.Errorf("wrong passphrase for machine %s of the vault at %s", t.Machine, o.Location)
	case errors.Is(err, repo.ErrMachineName) && owner != nil:
		return Usagef("%v", err)
	}
	return fmt.Errorf("vault at %s: %w", o.Location, err)
}

// OpenOwner opens the vault root t names with the owner's keys: those this
// machine holds, else the owner passphrase. A blob vault is opened with the
// owner's connection string when one is given (t.OwnerStorage).
func OpenOwner(ctx context.Context, t Target) (*Opened, *keys.OwnerKeys, error) {
	t.OwnerStorage = true
	o, err := OpenRoot(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if o.Entry != nil && o.Entry.Owner != nil {
		if !o.Entry.Owner.Public().Equal(*o.Root.Owner) {
			return nil, nil, fmt.Errorf("vault at %s: %w: the owner keys this machine holds are not the vault's", o.Location, repo.ErrOwnerMismatch)
		}
		return o, o.Entry.Owner, nil
	}
	pass, err := t.passphrase().Read("the owner passphrase of the vault at "+o.Location, fmt.Sprintf("Owner passphrase of the vault at %s: ", o.Location))
	if err != nil {
		return nil, nil, err
	}
	owner, err := repo.UnlockOwner(ctx, o.Storage, pass)
	if errors.Is(err, keys.ErrWrongPassphrase) {
		return nil, nil, fmt.Errorf("wrong owner passphrase for the vault at %s", o.Location)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("vault at %s: %w", o.Location, err)
	}
	return o, owner, nil
}

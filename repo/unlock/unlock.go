// Package unlock decides, in one place, which keys open a machine's area of
// a vault: for every command that reads or changes an area, and for azmount.
// The caller gathers the keys at hand (Keys: a certificate's private key,
// this host's key set, the owner's keys, a way to ask for a passphrase) and
// Area tries them in one order. Reading key files and prompting stay with
// the caller.
package unlock

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/certs"
)

// Keys are the keys at hand for opening an area. Area tries them in the
// order of the fields.
type Keys struct {
	// PrivateKey is a certificate's private key (certificate mode). When
	// set, it alone is tried: the area opens with the vault's certificate
	// it matches, and reads the points of that certificate's key epochs.
	PrivateKey *cert.PrivateKey
	// Host is this host's key set for its machine HostMachine (the
	// keyring's): it opens that machine's area, and the machine is the
	// default when none is named.
	Host        *keys.KeySet
	HostMachine string
	// Owner is the owner's keys, for a caller that opened the root as the
	// owner: another machine's area opens through the key set it escrowed
	// to the owner (in certificate mode, a write-only one).
	Owner *keys.OwnerKeys
	// Passphrase, when set, asks for the named machine's passphrase, or
	// the owner's, which opens the machine's escrow: the last resort.
	Passphrase func(machine string) (keys.Passphrase, error)
}

var (
	// ErrNoMachine reports that no machine was named and this host holds no
	// machine's keys.
	ErrNoMachine = errkind.New(errkind.Usage, "no machine named, and this host is not registered with the vault")
	// ErrNoKeys reports that nothing at hand opens the named machine's
	// area (no owner keys, no way to ask for its passphrase).
	ErrNoKeys = errkind.New(errkind.Permission, "no keys at hand open the machine's area")
	// ErrOtherCertificate reports a private key that belongs to none of
	// the vault's certificates.
	ErrOtherCertificate = errkind.New(errkind.Permission, "the private key belongs to none of the vault's certificates")
)

// Area opens machine's area of the vault root with the first of k's keys
// that applies: the private key; this host's key set, when machine is its
// own or none is named; the owner's escrow; the
// machine's passphrase, else the owner's passphrase (the one asked for is
// tried as either). It returns the area and the name of the machine it
// opened. A private key of no certificate gives ErrOtherCertificate (which
// names the vault's thumbprints) or certs.ErrNoCertificate in a vault
// without any; a wrong passphrase gives keys.ErrWrongPassphrase.
func Area(ctx context.Context, root repo.Root, machine string, k Keys) (*repo.Area, string, error) {
	own := k.Host != nil && (machine == "" || machine == k.HostMachine)
	if machine == "" && k.HostMachine != "" && (own || k.PrivateKey != nil) {
		machine = k.HostMachine
	}
	switch {
	case machine == "":
		return nil, "", ErrNoMachine
	case k.PrivateKey != nil:
		v, err := withPrivateKey(ctx, root, machine, k.PrivateKey)
		return v, machine, err
	case own:
		v, err := root.OpenMachine(ctx, machine, k.Host)
		return v, machine, err
	case k.Owner != nil:
		if err := repo.CheckMachineName(machine); err != nil {
			return nil, "", err
		}
		v, err := root.OpenMachineAsOwner(ctx, machine, k.Owner)
		return v, machine, err
	case k.Passphrase != nil:
		pass, err := k.Passphrase(machine)
		if err != nil {
			return nil, "", err
		}
		v, err := root.UnlockMachine(ctx, machine, pass)
		if errors.Is(err, keys.ErrWrongPassphrase) {
			// The owner's passphrase opens every machine's area, through
			// the key set the machine escrowed to the owner.
			if owner, oerr := root.UnlockOwner(ctx, pass); oerr == nil {
				v, err := root.OpenMachineAsOwner(ctx, machine, owner)
				return v, machine, err
			}
		}
		return v, machine, err
	}
	return nil, "", fmt.Errorf("%w: %s", ErrNoKeys, machine)
}

// withPrivateKey opens machine's area with the vault's certificate that
// key belongs to.
func withPrivateKey(ctx context.Context, root repo.Root, machine string, key *cert.PrivateKey) (*repo.Area, error) {
	if root.Owner == nil {
		return nil, repo.ErrNotOwnerVault
	}
	list, err := certs.List(ctx, root.Storage, *root.Owner)
	if err != nil {
		return nil, err
	}
	var thumbs []string
	for _, c := range list {
		thumbs = append(thumbs, c.Thumbprint())
		if key.Matches(c.Certificate) {
			return root.OpenMachineWithCertificate(ctx, machine, c.ID(), key.Unwrap)
		}
	}
	if len(thumbs) == 0 {
		return nil, fmt.Errorf("%w: it is in passphrase mode", certs.ErrNoCertificate)
	}
	return nil, fmt.Errorf("%w (thumbprints %s)", ErrOtherCertificate, strings.Join(thumbs, ", "))
}

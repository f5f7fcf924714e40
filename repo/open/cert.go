package open

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/certs"
)

// LoadCertificate reads an X.509 certificate file (.cer, .pem, .crt).
func LoadCertificate(file string) (*cert.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	c, err := cert.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	return c, nil
}

// CertMode returns what a machine needs to write for certificate c.
func CertMode(c *cert.Certificate) *repo.CertMode {
	return &repo.CertMode{ID: c.ID(), Wrap: c.Wrap}
}

// CurrentCertificate returns the vault's current certificate, its owner
// signature checked (certs.Current) against the owner keys this host
// trusts: those of its keyring entry (its own owner keys, or those pinned
// when it joined), else the root config's, so a storage cannot make
// machines encrypt to a certificate of its choosing; nil in passphrase
// mode.
func (o *Opened) CurrentCertificate(ctx context.Context) (*cert.Certificate, error) {
	owner := *o.Root.Owner
	if o.Entry != nil {
		if pinned, ok := o.Entry.OwnerKeys(); ok {
			owner = pinned
		}
	}
	c, err := certs.Current(ctx, o.Storage, owner)
	if errors.Is(err, certs.ErrNoCertificate) {
		return nil, nil
	}
	return c, err
}

// loadPrivateKey reads the certificate's private key t names (format
// §12.1), with its password file when one is given.
func loadPrivateKey(t Target) (*cert.PrivateKey, error) {
	b, err := os.ReadFile(t.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	password := ""
	if t.PrivateKeyPassFile != "" {
		p, err := os.ReadFile(t.PrivateKeyPassFile)
		if err != nil {
			return nil, fmt.Errorf("read private key password: %w", err)
		}
		password = strings.TrimRight(string(p), "\r\n")
	}
	key, err := cert.ParsePrivateKey(b, password)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", t.PrivateKey, err)
	}
	return key, nil
}

// StartBackupSession prepares the machine area o has open for a backup
// under the vault's current certificate, verified ([Opened.CurrentCertificate]):
// repo.Root.StartBackupSession decides (a write-only machine in a vault
// without a certificate is refused; a machine behind the current
// certificate moves to its key epoch), and a new key set is kept in this
// host's keyring entry. o.Area is the area the backup writes to from then
// on. It returns the certificate the machine moved to, nil when it did not
// move.
func (o *Opened) StartBackupSession(ctx context.Context) (moved *cert.Certificate, err error) {
	c, err := o.CurrentCertificate(ctx)
	if err != nil {
		return nil, err
	}
	var mode *repo.CertMode
	if c != nil {
		mode = CertMode(c)
	}
	keep := func(next *keys.KeySet) error {
		o.Entry.Keys = next
		return o.Ring.Save()
	}
	v, didMove, err := o.VaultRoot().StartBackupSession(ctx, o.Area, o.Machine, mode, keep)
	if errors.Is(err, repo.ErrNoCertificateForWriteOnly) {
		return nil, fmt.Errorf("vault at %s: %w", o.Location, err)
	}
	if err != nil {
		return nil, err
	}
	o.Area = v
	if !didMove {
		return nil, nil
	}
	return c, nil
}

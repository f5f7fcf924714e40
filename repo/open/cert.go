package open

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

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

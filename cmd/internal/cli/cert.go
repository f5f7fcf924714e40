package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
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

// CurrentCertificate returns the vault's current certificate, checked
// against the owner keys this machine trusts (nil in passphrase mode), so
// a storage cannot make machines encrypt to a certificate of its choosing.
func (o *Opened) CurrentCertificate(ctx context.Context) (*cert.Certificate, error) {
	ref, err := repo.CurrentCertificate(ctx, o.Storage)
	if errors.Is(err, repo.ErrNoCertificate) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	owner := *o.Root.Owner
	if o.Entry != nil {
		if pinned, ok := o.Entry.OwnerKeys(); ok {
			owner = pinned
		}
	}
	if err := ref.Verify(owner); err != nil {
		return nil, err
	}
	c, err := cert.ParseCertificate(ref.PEM)
	if err != nil {
		return nil, fmt.Errorf("the vault's certificate: %w: %w", repo.ErrDamaged, err)
	}
	if c.ID() != ref.ID {
		return nil, fmt.Errorf("the vault's certificate %s: %w: content does not match its name", ref.ID[:16], repo.ErrDamaged)
	}
	return c, nil
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

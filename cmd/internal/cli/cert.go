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

// openWithPrivateKey opens the machine's area with a certificate's private
// key: the points backed up under that certificate.
func (o *Opened) openWithPrivateKey(ctx context.Context, t Target) error {
	b, err := os.ReadFile(t.PrivateKey)
	if err != nil {
		return fmt.Errorf("read private key: %w", err)
	}
	password := ""
	if t.PrivateKeyPassFile != "" {
		p, err := os.ReadFile(t.PrivateKeyPassFile)
		if err != nil {
			return fmt.Errorf("read private key password: %w", err)
		}
		password = strings.TrimRight(string(p), "\r\n")
	}
	key, err := cert.ParsePrivateKey(b, password)
	if err != nil {
		return fmt.Errorf("private key %s: %w", t.PrivateKey, err)
	}
	refs, err := repo.Certificates(ctx, o.Storage)
	if err != nil {
		return err
	}
	var thumbs []string
	for _, ref := range refs {
		c, err := cert.ParseCertificate(ref.PEM)
		if err != nil {
			continue
		}
		thumbs = append(thumbs, c.Thumbprint())
		if !key.Matches(c) {
			continue
		}
		v, err := repo.OpenMachineWithCertificate(ctx, o.Storage, o.Root, o.Machine, c.ID(), key.Unwrap)
		if err != nil {
			return fmt.Errorf("vault at %s: %w", o.Location, err)
		}
		o.Vault = v
		return nil
	}
	if len(thumbs) == 0 {
		return fmt.Errorf("the vault at %s has no certificate: it is in passphrase mode", o.Location)
	}
	return fmt.Errorf("the private key belongs to none of the vault's certificates (thumbprints %s)", strings.Join(thumbs, ", "))
}

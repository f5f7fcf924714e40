// Package cert wraps small secrets to an X.509 certificate's public key, so
// that only the holder of the certificate's private key can unwrap them. It
// follows Azure Stack's certificate-encrypted backups: the machine that backs
// up holds only the public certificate (.cer), and the private key (.pfx) is
// kept elsewhere until a restore needs it.
//
// RSA certificates of 2048 bits or more use RSA-OAEP with SHA-256; ECDSA
// certificates on P-256, P-384 or P-521 use an ephemeral ECDH key agreement
// on the certificate's curve and a BLAKE3-derived AES-256-GCM key used once.
// The certificate serves as a public key that the vault pins: its validity
// period, key usage and chain are not checked.
package cert

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/internal/errkind"
)

var (
	// ErrUnsupported reports a key or file this package cannot use: a key
	// type other than RSA or ECDSA, an RSA key under 2048 bits, a curve other
	// than P-256, P-384 or P-521, an encrypted PEM key, or a .pfx in an
	// encryption scheme the PKCS #12 reader does not implement.
	ErrUnsupported = errkind.New(errkind.Invalid, "unsupported")
	// ErrNoKey reports input that holds no private key.
	ErrNoKey = errkind.New(errkind.Invalid, "no private key found")
)

const minRSABits = 2048

// Certificate is a public certificate a vault encrypts to.
type Certificate struct {
	x509 *x509.Certificate
	// Exactly one of rsa and ec is set.
	rsa *rsa.PublicKey
	ec  *ecdh.PublicKey
}

// ParseCertificate reads an X.509 certificate, PEM or DER (a .cer file). Of
// PEM input it takes the first CERTIFICATE block, which by convention is the
// leaf when a chain follows. A public key other than RSA (2048 bits or more)
// or ECDSA on P-256, P-384 or P-521 gives an error wrapping ErrUnsupported.
func ParseCertificate(b []byte) (*Certificate, error) {
	der := b
	if isPEM(b) {
		block := firstPEM(b, "CERTIFICATE")
		if block == nil {
			return nil, errors.New("parse certificate: PEM input holds no CERTIFICATE block")
		}
		der = block.Bytes
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	c := &Certificate{x509: x}
	switch pub := x.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := checkRSA(pub); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		c.rsa = pub
	case *ecdsa.PublicKey:
		if c.ec, err = pub.ECDH(); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", curveError(pub))
		}
	default:
		return nil, fmt.Errorf("parse certificate: %w: %v public key (want RSA or ECDSA)", ErrUnsupported, x.PublicKeyAlgorithm)
	}
	return c, nil
}

// Thumbprint returns the SHA-1 hash of the certificate's DER encoding in
// upper-case hex, as Windows and Azure display it. It identifies the
// certificate to people; it is not a security property (SHA-1 is not
// collision resistant), so compare certificates with ID or Matches.
func (c *Certificate) Thumbprint() string {
	return fmt.Sprintf("%X", sha1.Sum(c.x509.Raw))
}

// ID returns the SHA-256 hash of the certificate's DER encoding in
// lower-case hex, for naming objects that belong to the certificate.
func (c *Certificate) ID() string {
	sum := sha256.Sum256(c.x509.Raw)
	return hex.EncodeToString(sum[:])
}

// PEM returns the certificate PEM-encoded, for storing in the vault.
func (c *Certificate) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.x509.Raw})
}

// Subject returns the certificate's subject name, such as "CN=backup,O=Contoso".
func (c *Certificate) Subject() string { return c.x509.Subject.String() }

// NotAfter returns the end of the certificate's validity period.
func (c *Certificate) NotAfter() time.Time { return c.x509.NotAfter }

func checkRSA(pub *rsa.PublicKey) error {
	if n := pub.N.BitLen(); n < minRSABits {
		return fmt.Errorf("%w: %d-bit RSA key (want at least %d bits)", ErrUnsupported, n, minRSABits)
	}
	return nil
}

func curveError(pub *ecdsa.PublicKey) error {
	return fmt.Errorf("%w: ECDSA key on curve %s (want P-256, P-384 or P-521)", ErrUnsupported, pub.Curve.Params().Name)
}

func isPEM(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN ")) }

// firstPEM returns the first PEM block of b whose type is one of types, or nil.
func firstPEM(b []byte, types ...string) *pem.Block {
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return nil
		}
		for _, t := range types {
			if block.Type == t {
				return block
			}
		}
	}
}

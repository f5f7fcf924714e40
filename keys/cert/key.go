package cert

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/azfs/azfs/keys"
)

// PrivateKey is a certificate's private key. It never prints its contents.
type PrivateKey struct {
	// Exactly one of rsa and ec is set.
	rsa *rsa.PrivateKey
	ec  *ecdh.PrivateKey
}

// String redacts the key.
func (PrivateKey) String() string { return "[redacted]" }

// GoString redacts the key.
func (PrivateKey) GoString() string { return "[redacted]" }

// Format redacts the key for every verb.
func (PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// ParsePrivateKey reads a private key from PEM ("PRIVATE KEY" in PKCS #8,
// "RSA PRIVATE KEY" in PKCS #1 or "EC PRIVATE KEY" in SEC 1; the first such
// block counts), DER PKCS #8, or a PKCS #12 file (.pfx, .p12) protected by
// password, certificate chain included (its first key counts). The password is ignored for the other forms; encrypted PEM keys
// are refused with an error wrapping ErrUnsupported. A wrong .pfx password
// gives an error wrapping keys.ErrWrongPassphrase; input without a private key
// gives one wrapping ErrNoKey.
func ParsePrivateKey(b []byte, password string) (*PrivateKey, error) {
	var key any
	var err error
	if isPEM(b) {
		key, err = parsePEMKey(b)
	} else if key, err = x509.ParsePKCS8PrivateKey(b); err != nil {
		key, err = parsePKCS12(b, password)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch key := key.(type) {
	case *rsa.PrivateKey:
		if err := checkRSA(&key.PublicKey); err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		return &PrivateKey{rsa: key}, nil
	case *ecdsa.PrivateKey:
		ec, err := key.ECDH()
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", curveError(&key.PublicKey))
		}
		return &PrivateKey{ec: ec}, nil
	}
	return nil, fmt.Errorf("parse private key: %w: %T (want RSA or ECDSA)", ErrUnsupported, key)
}

func parsePEMKey(b []byte) (any, error) {
	block := firstPEM(b, "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
	if block == nil {
		return nil, fmt.Errorf("%w: PEM input holds no PRIVATE KEY block", ErrNoKey)
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("%w: the %s is encrypted; give an unencrypted key (openssl pkey -in KEY -out PLAIN.key) or a .pfx and its password", ErrUnsupported, block.Type)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	return x509.ParsePKCS8PrivateKey(block.Bytes)
}

// parsePKCS12 reads the private key of a .pfx file: legacy TripleDES
// (the Windows default) or AES-256 with a SHA-256 MAC (the OpenSSL 3
// default), with or without the certificate's chain.
func parsePKCS12(b []byte, password string) (any, error) {
	key, _, _, err := pkcs12.DecodeChain(b, password)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return nil, fmt.Errorf("%w for the .pfx", keys.ErrWrongPassphrase)
	}
	if _, ok := errors.AsType[pkcs12.NotImplementedError](err); ok {
		return nil, fmt.Errorf("%w: .pfx encryption or layout: %w", ErrUnsupported, err)
	}
	return nil, fmt.Errorf("%w: not PEM, DER PKCS #8 or PKCS #12: %w", ErrNoKey, err)
}

package cert

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/keys"
)

// MaxSecret is the largest secret Wrap accepts, in bytes.
const MaxSecret = 64

// A wrapped secret starts with one of these algorithm tags.
const (
	algRSAOAEP = 1 // RSA-OAEP-SHA256 ciphertext
	algECDH    = 2 // length of the ephemeral public key, the key, AES-256-GCM ciphertext and tag
)

const wrapContext = "azfs 2026 certificate wrap v1"

var zeroNonce [12]byte

// Wrap encrypts secret (at most MaxSecret bytes) to the certificate's public
// key with ad bound in: Unwrap needs the same ad. For RSA the result is the
// tag 1 and an RSA-OAEP-SHA256 ciphertext with ad as its label. For ECDSA it
// is the tag 2, the length of an ephemeral public key on the certificate's
// curve (one byte), that key, and the secret sealed with AES-256-GCM under
// the zero nonce and a key used once: BLAKE3 derive_key of the ECDH shared
// secret, the ephemeral and the certificate's public keys.
func (c *Certificate) Wrap(secret, ad []byte) ([]byte, error) {
	if len(secret) > MaxSecret {
		return nil, fmt.Errorf("wrap to certificate %s: %d-byte secret (at most %d)", c.Thumbprint(), len(secret), MaxSecret)
	}
	if c.rsa != nil {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, c.rsa, secret, ad)
		if err != nil {
			return nil, fmt.Errorf("wrap to certificate %s: %w", c.Thumbprint(), err)
		}
		return append([]byte{algRSAOAEP}, ct...), nil
	}
	eph, err := c.ec.Curve().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wrap to certificate %s: %w", c.Thumbprint(), err)
	}
	shared, err := eph.ECDH(c.ec)
	if err != nil {
		return nil, fmt.Errorf("wrap to certificate %s: %w", c.Thumbprint(), err)
	}
	ephPub := eph.PublicKey().Bytes()
	out := append([]byte{algECDH, byte(len(ephPub))}, ephPub...)
	return wrapAEAD(shared, ephPub, c.ec.Bytes()).Seal(out, zeroNonce[:], secret, ad), nil
}

// Matches reports whether k is the private key of c.
func (k *PrivateKey) Matches(c *Certificate) bool {
	switch {
	case k.rsa != nil && c.rsa != nil:
		return k.rsa.PublicKey.Equal(c.rsa)
	case k.ec != nil && c.ec != nil:
		return k.ec.PublicKey().Equal(c.ec)
	}
	return false
}

// Unwrap opens what Wrap made for k's certificate with the same ad. Another
// key, another ad or any damage gives an error wrapping keys.ErrAuth.
func (k *PrivateKey) Unwrap(wrapped, ad []byte) ([]byte, error) {
	switch {
	case len(wrapped) == 0:
		return nil, fmt.Errorf("unwrap: %w: empty input", keys.ErrAuth)
	case wrapped[0] == algRSAOAEP && k.rsa != nil:
		plain, err := rsa.DecryptOAEP(sha256.New(), nil, k.rsa, wrapped[1:], ad)
		if err != nil {
			return nil, fmt.Errorf("unwrap: %w", keys.ErrAuth)
		}
		return plain, nil
	case wrapped[0] == algECDH && k.ec != nil:
		return k.unwrapECDH(wrapped[1:], ad)
	}
	return nil, fmt.Errorf("unwrap: %w: algorithm tag %d does not fit this key", keys.ErrAuth, wrapped[0])
}

func (k *PrivateKey) unwrapECDH(b, ad []byte) ([]byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0])+16 {
		return nil, fmt.Errorf("unwrap: %w: %d bytes is too short", keys.ErrAuth, len(b)+1)
	}
	ephPub, sealed := b[1:1+b[0]], b[1+b[0]:]
	eph, err := k.ec.Curve().NewPublicKey(ephPub)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w: %w", keys.ErrAuth, err)
	}
	shared, err := k.ec.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w: %w", keys.ErrAuth, err)
	}
	plain, err := wrapAEAD(shared, ephPub, k.ec.PublicKey().Bytes()).Open(nil, zeroNonce[:], sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", keys.ErrAuth)
	}
	return plain, nil
}

// wrapAEAD derives the one-time key of an ECDH wrap from the shared secret
// and both public keys. The ephemeral key is fresh for every wrap, so the
// zero nonce is used once per key.
func wrapAEAD(shared, ephPub, recipientPub []byte) cipher.AEAD {
	material := append(append(append([]byte(nil), shared...), ephPub...), recipientPub...)
	var key [32]byte
	blake3.DeriveKey(wrapContext, material, key[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("aes: " + err.Error()) // cannot happen
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("gcm: " + err.Error()) // cannot happen
	}
	return g
}

package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/errkind"
)

// OwnerKeys are the vault owner's secrets: a signing key that vouches for
// vault credentials and security PINs, and an escrow key to which every
// machine's key set is also sealed, so that the owner can check and prune
// every machine's data. Owner slots wrap them; machines only ever see the
// public halves.
type OwnerKeys struct {
	Version int    `json:"version"`
	Vault   string `json:"vault"`
	// SignSeed is the Ed25519 private key seed.
	SignSeed Secret `json:"sign_seed"`
	// Escrow is the X25519 private key.
	Escrow Secret `json:"escrow"`
}

// OwnerPublic are the owner's public keys, as the vault's config and every
// credentials file carry them.
type OwnerPublic struct {
	Sign   []byte `json:"sign"`   // Ed25519 public key, 32 bytes
	Escrow []byte `json:"escrow"` // X25519 public key, 32 bytes
}

// ErrOwnerKeys reports owner key material that does not decode.
var ErrOwnerKeys = errkind.New(errkind.Damaged, "malformed owner keys")

// NewOwnerKeys returns fresh owner keys for the vault vaultID.
func NewOwnerKeys(vaultID string) (*OwnerKeys, error) {
	ok := &OwnerKeys{Version: keySetVersion, Vault: vaultID}
	var err error
	if ok.SignSeed, err = randomSecret(); err != nil {
		return nil, fmt.Errorf("new owner keys: %w", err)
	}
	if ok.Escrow, err = randomSecret(); err != nil {
		return nil, fmt.Errorf("new owner keys: %w", err)
	}
	return ok, nil
}

// ParseOwnerKeys decodes owner keys serialized by Marshal.
func ParseOwnerKeys(b []byte) (*OwnerKeys, error) {
	var ok OwnerKeys
	if err := json.Unmarshal(b, &ok); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOwnerKeys, err)
	}
	if ok.Version != keySetVersion || ok.Vault == "" || ok.SignSeed == (Secret{}) || ok.Escrow == (Secret{}) {
		return nil, fmt.Errorf("%w: version %d, vault %q, or a key is missing", ErrOwnerKeys, ok.Version, ok.Vault)
	}
	return &ok, nil
}

// Marshal serializes the owner keys (secrets included) for a slot or keyring.
func (ok *OwnerKeys) Marshal() ([]byte, error) {
	b, err := json.Marshal(ok)
	if err != nil {
		return nil, fmt.Errorf("marshal owner keys: %w", err)
	}
	return b, nil
}

// Public returns the owner's public keys.
func (ok *OwnerKeys) Public() OwnerPublic {
	priv, err := ecdh.X25519().NewPrivateKey(ok.Escrow[:])
	if err != nil {
		panic("x25519: 32-byte key refused: " + err.Error()) // cannot happen
	}
	return OwnerPublic{
		Sign:   ed25519.NewKeyFromSeed(ok.SignSeed[:]).Public().(ed25519.PublicKey),
		Escrow: priv.PublicKey().Bytes(),
	}
}

// Sign signs msg with the owner's signing key, under a context string that
// keeps signatures for one purpose from being valid for another.
func (ok *OwnerKeys) Sign(context string, msg []byte) []byte {
	return ed25519.Sign(ed25519.NewKeyFromSeed(ok.SignSeed[:]), signedMessage(context, msg))
}

// ErrSignature reports a record the owner did not sign.
var ErrSignature = errkind.New(errkind.Damaged, "not signed by the vault's owner")

// Verify checks a signature made by Sign.
func (p OwnerPublic) Verify(context string, msg, sig []byte) error {
	if len(p.Sign) != ed25519.PublicKeySize || !ed25519.Verify(p.Sign, signedMessage(context, msg), sig) {
		return ErrSignature
	}
	return nil
}

// Equal reports whether p and q are the same keys.
func (p OwnerPublic) Equal(q OwnerPublic) bool {
	return string(p.Sign) == string(q.Sign) && string(p.Escrow) == string(q.Escrow)
}

func signedMessage(context string, msg []byte) []byte {
	return append([]byte("azfs-sign-v1\x00"+context+"\x00"), msg...)
}

// SealToOwner encrypts plain so that only the owner's escrow key opens it:
// an ephemeral X25519 key agreement, a BLAKE3-derived AES-256-GCM key used
// once, and ad bound in. The result is the ephemeral public key (32 bytes)
// followed by the ciphertext and tag.
func (p OwnerPublic) SealToOwner(plain, ad []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(p.Escrow)
	if err != nil {
		return nil, fmt.Errorf("seal to owner: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal to owner: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("seal to owner: %w", err)
	}
	g := escrowAEAD(shared, eph.PublicKey().Bytes(), p.Escrow)
	out := append([]byte(nil), eph.PublicKey().Bytes()...)
	return g.Seal(out, zeroNonce[:], plain, ad), nil
}

// OpenAsOwner opens what SealToOwner sealed.
func (ok *OwnerKeys) OpenAsOwner(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 32+16 {
		return nil, fmt.Errorf("open escrow: %w: too short", ErrAuth)
	}
	priv, err := ecdh.X25519().NewPrivateKey(ok.Escrow[:])
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w", err)
	}
	ephPub, err := ecdh.X25519().NewPublicKey(sealed[:32])
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w: %w", ErrAuth, err)
	}
	shared, err := priv.ECDH(ephPub)
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w: %w", ErrAuth, err)
	}
	g := escrowAEAD(shared, sealed[:32], priv.PublicKey().Bytes())
	plain, err := g.Open(nil, zeroNonce[:], sealed[32:], ad)
	if err != nil {
		return nil, fmt.Errorf("open escrow: %w", ErrAuth)
	}
	return plain, nil
}

// escrowAEAD derives the one-time key of an escrow seal from the shared
// secret and both public keys. The ephemeral key is fresh for every seal,
// so the zero nonce is used once per key.
func escrowAEAD(shared, ephPub, ownerPub []byte) cipher.AEAD {
	material := append(append(append([]byte(nil), shared...), ephPub...), ownerPub...)
	var key [32]byte
	blake3.DeriveKey("azfs 2026 owner escrow v1", material, key[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("aes: " + err.Error()) // cannot happen
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("gcm: " + err.Error())
	}
	return g
}

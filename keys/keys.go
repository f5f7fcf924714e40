// Package keys holds a vault's key material and everything that uses it directly:
// the key set (keyed object IDs, the chunker seed, the data and index keys), the sealing of
// every stored object (AEAD with the object's kind and ID bound in, nonces derived
// from the content so that reuse is impossible by construction), and key slots that
// wrap the key set under a passphrase with Argon2id.
package keys

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/errkind"
)

// Secret is 32 bytes of key material. It never prints its bytes.
type Secret [32]byte

// String redacts the secret.
func (Secret) String() string { return "[redacted]" }

// GoString redacts the secret.
func (Secret) GoString() string { return "[redacted]" }

// Format redacts the secret for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// MarshalJSON encodes the secret as base64; only key slots and the machine's
// keyring (files kept 0600) ever serialize one.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(s[:]))
}

// UnmarshalJSON decodes a base64 secret of exactly 32 bytes.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	if len(raw) != len(s) {
		return fmt.Errorf("secret: %d bytes, want %d", len(raw), len(s))
	}
	copy(s[:], raw)
	return nil
}

func randomSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("read random: %w", err)
	}
	return s, nil
}

// ID names a stored object: a keyed BLAKE3 hash of its plaintext. Without the
// vault's ID key nobody can confirm that a vault holds a given content.
type ID [32]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for messages.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a 64-digit hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("parse id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse id %q: %w", s, err)
	}
	return id, nil
}

// KeySet is the vault's master key material. Key slots wrap it; it is never
// stored in the clear outside the machine's 0600 keyring.
type KeySet struct {
	Version int `json:"version"`
	// Vault is the ID of the vault this key set belongs to; opening a vault
	// with another vault's keys is refused.
	Vault string `json:"vault"`
	// IDKey keys the hashes that name objects, one derived key per kind.
	IDKey Secret `json:"id_key"`
	// DataKey encrypts content: chunks, tree parts and points.
	DataKey Secret `json:"data_key"`
	// IndexKey encrypts what writers need to deduplicate without reading
	// content: index files and pack trailers.
	IndexKey Secret `json:"index_key"`
	// ChunkerSeed derives the chunker's gear table, so chunk boundaries do
	// not fingerprint content either.
	ChunkerSeed Secret `json:"chunker_seed"`
	// Certificate is set on a write-only key set (certificate mode): the
	// ID of the certificate each backup's session key is wrapped to. Such a
	// key set has no DataKey, so it cannot read any content.
	Certificate string `json:"certificate,omitempty"`
}

// WriteOnly reports whether the key set can write but not read content.
func (ks *KeySet) WriteOnly() bool { return ks.Certificate != "" }

const keySetVersion = 1

// NewKeySet returns fresh random key material for the vault vaultID.
func NewKeySet(vaultID string) (*KeySet, error) {
	ks := &KeySet{Version: keySetVersion, Vault: vaultID}
	for _, s := range []*Secret{&ks.IDKey, &ks.DataKey, &ks.IndexKey, &ks.ChunkerSeed} {
		var err error
		if *s, err = randomSecret(); err != nil {
			return nil, fmt.Errorf("new key set: %w", err)
		}
	}
	return ks, nil
}

// Epoch returns the write-only key set a certificate-mode machine holds
// while it writes for certificate certID: no data key, and an ID key and
// chunker seed of that certificate's own, so that points written for one
// certificate share no chunk with points written for another (each opens
// with its own private key). They derive from the index key, which stays,
// and the certificate ID, so the same certificate always gives the same
// epoch: a rotation interrupted and run again, or back to a certificate
// used before, finds its keys as they were.
func (ks *KeySet) Epoch(certID string) *KeySet {
	c := *ks
	c.DataKey = Secret{}
	c.Certificate = certID
	material := append(append([]byte(nil), ks.IndexKey[:]...), certID...)
	blake3.DeriveKey("azfs 2026 epoch id key v1", material, c.IDKey[:])
	blake3.DeriveKey("azfs 2026 epoch chunker seed v1", material, c.ChunkerSeed[:])
	return &c
}

// NewSecret returns 32 random bytes.
func NewSecret() (Secret, error) { return randomSecret() }

// ErrKeySet reports key material that does not decode.
var ErrKeySet = errkind.New(errkind.Damaged, "malformed key set")

// ParseKeySet decodes a key set serialized by Marshal.
func ParseKeySet(b []byte) (*KeySet, error) {
	var ks KeySet
	if err := json.Unmarshal(b, &ks); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	if err := ks.Validate(); err != nil {
		return nil, err
	}
	return &ks, nil
}

// Validate refuses a key set of another version, without a vault, or with
// a missing key (an all-zero key would seal under a key anyone knows).
func (ks *KeySet) Validate() error {
	if ks.Version != keySetVersion || ks.Vault == "" {
		return fmt.Errorf("%w: version %d, vault %q", ErrKeySet, ks.Version, ks.Vault)
	}
	for _, k := range []Secret{ks.IDKey, ks.IndexKey, ks.ChunkerSeed} {
		if k == (Secret{}) {
			return fmt.Errorf("%w: a key is missing", ErrKeySet)
		}
	}
	if (ks.DataKey == Secret{}) != ks.WriteOnly() {
		return fmt.Errorf("%w: a key set has a data key exactly when it is not write-only", ErrKeySet)
	}
	return nil
}

// Marshal serializes the key set (secrets included) for a key slot or keyring.
func (ks *KeySet) Marshal() ([]byte, error) {
	b, err := json.Marshal(ks)
	if err != nil {
		return nil, fmt.Errorf("marshal key set: %w", err)
	}
	return b, nil
}

// Hasher computes object IDs of one kind. It is not safe for concurrent
// use; make one per goroutine with NewHasher.
type Hasher struct{ h *blake3.Hasher }

// NewHasher returns a Hasher for objects of kind. Each kind hashes under its
// own key, derived from the ID key, so a chunk and a tree part with the same
// bytes never share an ID.
func (ks *KeySet) NewHasher(kind Kind) *Hasher {
	var key [32]byte
	blake3.DeriveKey("azfs 2026 object id v1", append(ks.IDKey[:len(ks.IDKey):len(ks.IDKey)], byte(kind)), key[:])
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic("blake3: 32-byte key refused: " + err.Error()) // cannot happen: key is 32 bytes
	}
	return &Hasher{h: h}
}

// Sum returns the ID of data.
func (h *Hasher) Sum(data []byte) ID {
	h.h.Reset()
	_, _ = h.h.Write(data)
	var id ID
	h.h.Sum(id[:0])
	return id
}

// ID returns the ID of data as an object of kind; convenient where a Hasher
// is not at hand.
func (ks *KeySet) ID(kind Kind, data []byte) ID { return ks.NewHasher(kind).Sum(data) }

// MarshalText encodes the ID as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

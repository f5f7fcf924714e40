package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/azfs/azfs/internal/errkind"
)

// Passphrase is a secret a person types or keeps in a file. It never prints.
type Passphrase string

// String redacts the passphrase.
func (Passphrase) String() string { return "[redacted]" }

// GoString redacts the passphrase.
func (Passphrase) GoString() string { return "[redacted]" }

// Format redacts the passphrase for every verb.
func (Passphrase) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// MinPassphraseLen is the shortest passphrase accepted, in characters.
const MinPassphraseLen = 16

// ErrShortPassphrase reports a passphrase under MinPassphraseLen characters.
var ErrShortPassphrase = errkind.New(errkind.Invalid, fmt.Sprintf("passphrase must be at least %d characters", MinPassphraseLen))

// Check refuses passphrases that are too short.
func (p Passphrase) Check() error {
	if n := utf8.RuneCountInString(norm.NFC.String(string(p))); n < MinPassphraseLen {
		return fmt.Errorf("%w (this one has %d)", ErrShortPassphrase, n)
	}
	return nil
}

// generatedAlphabet avoids look-alike characters (0/O, 1/l/I).
const generatedAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassphrase returns a random passphrase of 40 characters from a
// 57-character alphabet (about 233 bits), in groups of five for reading aloud.
func GeneratePassphrase() (Passphrase, error) {
	const groups, per = 8, 5
	out := make([]byte, 0, groups*(per+1))
	var b [1]byte
	for len(out) < groups*(per+1)-1 {
		if len(out)%(per+1) == per {
			out = append(out, '-')
			continue
		}
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("generate passphrase: %w", err)
		}
		// Rejection sampling keeps the choice uniform.
		if int(b[0]) >= 256/len(generatedAlphabet)*len(generatedAlphabet) {
			continue
		}
		out = append(out, generatedAlphabet[int(b[0])%len(generatedAlphabet)])
	}
	return Passphrase(out), nil
}

// KDF names the Argon2id parameters of a passphrase slot.
type KDF struct {
	Algorithm string `json:"algorithm"` // "argon2id"
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF costs 64 MiB of memory and three passes: about a quarter of a
// second on one core of a current server, paid once per vault open.
var DefaultKDF = KDF{Algorithm: "argon2id", Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Limits on KDF parameters read from a vault, so a hostile slot cannot make
// an open allocate without bound.
const (
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
	maxKDFTime      = 64
)

// Slot wraps a key set. The only kind so far is "passphrase".
type Slot struct {
	Kind   string `json:"kind"`
	KDF    KDF    `json:"kdf"`
	Salt   []byte `json:"salt"`
	Sealed []byte `json:"sealed"`
}

// ErrWrongPassphrase reports a passphrase that opens no key slot.
var ErrWrongPassphrase = errkind.New(errkind.Permission, "wrong passphrase")

// ErrSlot reports a key slot that does not decode.
var ErrSlot = errkind.New(errkind.Damaged, "malformed key slot")

// NewPassphraseSlot wraps ks under pass. slotID names the slot in the vault and
// is bound into its authentication together with the vault ID.
func NewPassphraseSlot(ks *KeySet, slotID string, pass Passphrase, kdf KDF) (*Slot, error) {
	plain, err := ks.Marshal()
	if err != nil {
		return nil, err
	}
	return newSlot(plain, ks.Vault, slotID, pass, kdf)
}

// NewOwnerSlot wraps the owner's keys under pass, like NewPassphraseSlot.
func NewOwnerSlot(ok *OwnerKeys, slotID string, pass Passphrase, kdf KDF) (*Slot, error) {
	plain, err := ok.Marshal()
	if err != nil {
		return nil, err
	}
	return newSlot(plain, ok.Vault, slotID, pass, kdf)
}

func newSlot(plain []byte, vaultID, slotID string, pass Passphrase, kdf KDF) (*Slot, error) {
	if err := pass.Check(); err != nil {
		return nil, err
	}
	s := &Slot{Kind: "passphrase", KDF: kdf, Salt: make([]byte, 32)}
	if _, err := rand.Read(s.Salt); err != nil {
		return nil, fmt.Errorf("new key slot: %w", err)
	}
	g, err := s.wrapAEAD(pass)
	if err != nil {
		return nil, err
	}
	// The wrapping key is derived from a fresh random salt and used for this
	// one encryption only, so the fixed nonce is never reused under it.
	s.Sealed = g.Seal(nil, zeroNonce[:], plain, slotAD(vaultID, slotID))
	return s, nil
}

func slotAD(vaultID, slotID string) []byte {
	return []byte("azfs-slot-v1\x00" + vaultID + "\x00" + slotID)
}

// check refuses unknown algorithms and parameters outside the limits.
func (k KDF) check() error {
	if k.Algorithm != "argon2id" {
		return fmt.Errorf("%w: unknown kdf %q", ErrSlot, k.Algorithm)
	}
	if k.Time == 0 || k.Time > maxKDFTime || k.Threads == 0 || k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("%w: kdf parameters out of range", ErrSlot)
	}
	return nil
}

func (s *Slot) wrapAEAD(pass Passphrase) (cipher.AEAD, error) {
	if err := s.KDF.check(); err != nil {
		return nil, err
	}
	// NFC, so the same passphrase typed on systems that compose accents
	// differently derives the same key.
	kek := argon2.IDKey([]byte(norm.NFC.String(string(pass))), s.Salt, s.KDF.Time, s.KDF.MemoryKiB, s.KDF.Threads, 32)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key slot: %w", err)
	}
	return cipher.NewGCM(block)
}

// open returns the slot's plaintext.
func (s *Slot) open(vaultID, slotID string, pass Passphrase) ([]byte, error) {
	g, err := s.wrapAEAD(pass)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, zeroNonce[:], s.Sealed, slotAD(vaultID, slotID))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return plain, nil
}

// UnlockOwner opens an owner slot with pass and returns the owner's keys,
// which must belong to vaultID.
func (s *Slot) UnlockOwner(vaultID, slotID string, pass Passphrase) (*OwnerKeys, error) {
	plain, err := s.open(vaultID, slotID, pass)
	if err != nil {
		return nil, err
	}
	ok, err := ParseOwnerKeys(plain)
	if err != nil {
		return nil, err
	}
	if ok.Vault != vaultID {
		return nil, fmt.Errorf("%w: owner keys belong to vault %s", ErrSlot, ok.Vault)
	}
	return ok, nil
}

// Unlock opens the slot with pass and returns the key set it wraps, which must
// belong to vaultID.
func (s *Slot) Unlock(vaultID, slotID string, pass Passphrase) (*KeySet, error) {
	plain, err := s.open(vaultID, slotID, pass)
	if err != nil {
		return nil, err
	}
	ks, err := ParseKeySet(plain)
	if err != nil {
		return nil, err
	}
	if ks.Vault != vaultID {
		return nil, fmt.Errorf("%w: key set belongs to vault %s", ErrSlot, ks.Vault)
	}
	return ks, nil
}

// ParseSlot decodes a key slot as stored in the vault.
func ParseSlot(b []byte) (*Slot, error) {
	var s Slot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSlot, err)
	}
	if s.Kind != "passphrase" {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrSlot, s.Kind)
	}
	if err := s.KDF.check(); err != nil {
		return nil, err
	}
	if len(s.Salt) < 16 || len(s.Sealed) < 16 {
		return nil, fmt.Errorf("%w: salt or sealed key set too short", ErrSlot)
	}
	return &s, nil
}

// Marshal serializes the slot for storage in the vault.
func (s *Slot) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal key slot: %w", err)
	}
	return b, nil
}

package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/errkind"
)

// Kind is the kind of a sealed object. It is bound into the object's
// authentication, so an object of one kind is never accepted as another.
type Kind byte

// The kinds of sealed objects; their numeric values are part of the format.
const (
	KindData    Kind = 1 // file content chunk
	KindTree    Kind = 2 // part of a directory listing
	KindTrailer Kind = 3 // pack trailer listing a pack's blobs
	KindIndex   Kind = 4 // index file
	KindPoint   Kind = 5 // recovery point
	// KindTombstone is a retention tombstone: the points one application
	// of a machine's retention policy forgot. It is sealed under the index
	// key, which every key set of an area holds (write-only ones too).
	KindTombstone Kind = 6
	// KindDamage is a damage record: copies of blobs found missing or
	// damaged, so that backups store them again. Sealed under the index
	// key, as index files are.
	KindDamage Kind = 7
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindTree:
		return "tree"
	case KindTrailer:
		return "trailer"
	case KindIndex:
		return "index"
	case KindPoint:
		return "point"
	case KindTombstone:
		return "tombstone"
	case KindDamage:
		return "damage record"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// SealVersion is the first byte of every sealed object.
const SealVersion = 1

// Overhead is the number of bytes sealing adds to a payload:
// version (1) + key ID (8) + synthetic IV (32) + GCM tag (16).
const Overhead = 1 + 8 + 32 + 16

const headerLen = 1 + 8 + 32

// ErrAuth reports a sealed object that failed authentication: it was damaged,
// forged, or is not the object it is claimed to be.
var ErrAuth = errkind.New(errkind.Damaged, "authentication failed")

// ErrOtherKey reports an object sealed under a key the opener does not
// hold (a certificate-mode session it cannot unwrap, say). It wraps ErrAuth.
var ErrOtherKey = fmt.Errorf("%w: sealed with a key this machine does not hold", ErrAuth)

// Sealer seals and opens objects under one key (the data key or the index
// key). It is safe for concurrent use.
//
// Construction (deterministic AEAD in the SIV manner): siv = BLAKE3-keyed(sivKey,
// kind ‖ id ‖ payload); the object key is BLAKE3-keyed(encKey, siv); the payload
// is encrypted with AES-256-GCM under that key with an all-zero nonce, the
// associated data binding kind, id, version, key ID and siv. Two different
// payloads can only share a (key, nonce) pair if they share a 256-bit keyed
// hash, so nonce reuse cannot happen however many machines write one vault
// and without any coordination between them.
type Sealer struct {
	keyID  [8]byte
	sivKey Secret
	encKey Secret
	pool   sync.Pool // *sealState
}

type sealState struct{ siv, enc *blake3.Hasher }

// NewSealer returns the Sealer for content (chunks, tree parts, points),
// under the key set's data key.
func (ks *KeySet) NewSealer() *Sealer { return newSealer(ks.DataKey) }

// NewDataSealer returns the Sealer for content under key, such as a
// certificate-mode session key.
func NewDataSealer(key Secret) *Sealer { return newSealer(key) }

// KeyID returns the ID of the sealer's key, as sealed headers carry it.
func (s *Sealer) KeyID() [8]byte { return s.keyID }

// Openers opens objects sealed under any of several keys, choosing the
// key by the ID in the sealed header. It is safe for concurrent use once
// filled.
type Openers struct {
	m       map[[8]byte]*Sealer
	foreign map[[8]byte]bool
}

// NewOpeners returns a set holding sealers.
func NewOpeners(sealers ...*Sealer) *Openers {
	o := &Openers{m: make(map[[8]byte]*Sealer), foreign: make(map[[8]byte]bool)}
	for _, s := range sealers {
		o.Add(s)
	}
	return o
}

// Add adds a sealer's key to the set. It must not run concurrently with
// Open.
func (o *Openers) Add(s *Sealer) { o.m[s.keyID] = s }

// AddForeign records the ID of a key that exists but that the set does not
// hold: objects under it give ErrOtherKey, while objects under any other
// unknown key ID are damage (ErrAuth). It must not run concurrently with
// Open.
func (o *Openers) AddForeign(keyID [8]byte) { o.foreign[keyID] = true }

// Has reports whether the set holds the key keyID.
func (o *Openers) Has(keyID [8]byte) bool { return o.m[keyID] != nil }

// Len returns the number of keys in the set.
func (o *Openers) Len() int { return len(o.m) }

func (o *Openers) pick(kind Kind, id ID, sealed []byte) (*Sealer, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open %s %s: %w: %d bytes is too short", kind, id.Short(), ErrAuth, len(sealed))
	}
	keyID := [8]byte(sealed[1:9])
	s := o.m[keyID]
	switch {
	case s == nil && o.foreign[keyID]:
		return nil, fmt.Errorf("open %s %s: %w", kind, id.Short(), ErrOtherKey)
	case s == nil:
		return nil, fmt.Errorf("open %s %s: %w: sealed under an unknown key", kind, id.Short(), ErrAuth)
	}
	return s, nil
}

// Open is Sealer.Open under the key the object was sealed with.
func (o *Openers) Open(dst []byte, kind Kind, id ID, sealed []byte) ([]byte, error) {
	s, err := o.pick(kind, id, sealed)
	if err != nil {
		return nil, err
	}
	return s.Open(dst, kind, id, sealed)
}

// OpenInPlace is Sealer.OpenInPlace under the key the object was sealed
// with.
func (o *Openers) OpenInPlace(kind Kind, id ID, sealed []byte) ([]byte, error) {
	s, err := o.pick(kind, id, sealed)
	if err != nil {
		return nil, err
	}
	return s.OpenInPlace(kind, id, sealed)
}

// NewIndexSealer returns the Sealer for index files and pack trailers, under
// the key set's index key.
func (ks *KeySet) NewIndexSealer() *Sealer { return newSealer(ks.IndexKey) }

func newSealer(key Secret) *Sealer {
	s := &Sealer{}
	var id [32]byte
	blake3.DeriveKey("azfs 2026 key id v1", key[:], id[:])
	copy(s.keyID[:], id[:8])
	blake3.DeriveKey("azfs 2026 object siv v1", key[:], s.sivKey[:])
	blake3.DeriveKey("azfs 2026 object key v1", key[:], s.encKey[:])
	s.pool.New = func() any {
		siv, _ := blake3.NewKeyed(s.sivKey[:])
		enc, _ := blake3.NewKeyed(s.encKey[:])
		return &sealState{siv: siv, enc: enc}
	}
	return s
}

func (s *Sealer) aead(st *sealState, siv []byte) cipher.AEAD {
	var key [32]byte
	st.enc.Reset()
	_, _ = st.enc.Write(siv)
	st.enc.Sum(key[:0])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("aes: 32-byte key refused: " + err.Error()) // cannot happen
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("gcm: " + err.Error()) // cannot happen
	}
	return g
}

func additionalData(kind Kind, id ID, header []byte) []byte {
	ad := make([]byte, 0, 8+1+len(id)+len(header))
	ad = append(ad, "azfs-v1"...)
	ad = append(ad, byte(kind))
	ad = append(ad, id[:]...)
	return append(ad, header...)
}

var zeroNonce [12]byte

// Seal appends the sealed form of payload, bound to kind and id, to dst.
func (s *Sealer) Seal(dst []byte, kind Kind, id ID, payload []byte) []byte {
	st := s.pool.Get().(*sealState)
	defer s.pool.Put(st)

	var header [headerLen]byte
	header[0] = SealVersion
	copy(header[1:9], s.keyID[:])
	st.siv.Reset()
	_, _ = st.siv.Write([]byte{byte(kind)})
	_, _ = st.siv.Write(id[:])
	_, _ = st.siv.Write(payload)
	st.siv.Sum(header[9:9])

	dst = append(dst, header[:]...)
	return s.aead(st, header[9:]).Seal(dst, zeroNonce[:], payload, additionalData(kind, id, header[:]))
}

// OpenInPlace is Open decrypting over sealed itself, which it overwrites;
// the payload it returns is a subslice of sealed.
func (s *Sealer) OpenInPlace(kind Kind, id ID, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return s.Open(nil, kind, id, sealed) // reports the short input
	}
	return s.Open(sealed[headerLen:headerLen], kind, id, sealed)
}

// Open authenticates and decrypts sealed, which must have been sealed as
// (kind, id), appending the payload to dst. Any damage, a wrong key, or an
// object presented under another kind or ID gives an error wrapping ErrAuth.
func (s *Sealer) Open(dst []byte, kind Kind, id ID, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open %s %s: %w: %d bytes is too short", kind, id.Short(), ErrAuth, len(sealed))
	}
	if sealed[0] != SealVersion {
		return nil, fmt.Errorf("open %s %s: %w: unknown version %d", kind, id.Short(), ErrAuth, sealed[0])
	}
	if [8]byte(sealed[1:9]) != s.keyID {
		return nil, fmt.Errorf("open %s %s: %w: sealed with another key", kind, id.Short(), ErrAuth)
	}
	st := s.pool.Get().(*sealState)
	defer s.pool.Put(st)
	out, err := s.aead(st, sealed[9:headerLen]).Open(dst, zeroNonce[:], sealed[headerLen:], additionalData(kind, id, sealed[:headerLen]))
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", kind, id.Short(), ErrAuth)
	}
	return out, nil
}

// SealOnce encrypts plain with AES-256-GCM under key, which must be fresh
// and used for this one message (a random key wrapped to a certificate,
// say): the nonce is fixed, so a key must never seal twice.
func SealOnce(key Secret, plain, ad []byte) []byte {
	return onceAEAD(key).Seal(nil, zeroNonce[:], plain, ad)
}

// OpenOnce opens what SealOnce sealed; damage or a wrong key gives ErrAuth.
func OpenOnce(key Secret, sealed, ad []byte) ([]byte, error) {
	plain, err := onceAEAD(key).Open(nil, zeroNonce[:], sealed, ad)
	if err != nil {
		return nil, ErrAuth
	}
	return plain, nil
}

func onceAEAD(key Secret) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("aes: 32-byte key refused: " + err.Error()) // cannot happen
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("gcm: " + err.Error())
	}
	return g
}

// Package luks opens LUKS1 and LUKS2 volumes read-only from an io.ReaderAt,
// without device-mapper: it parses the header (LUKS2's JSON metadata:
// key slots, segments, digests), unlocks a key slot with a passphrase or key
// file (PBKDF2, Argon2i or Argon2id), merges the anti-forensic split key
// material, checks the volume key against the header's digest, and decrypts
// aes-xts-plain64 sectors on demand. The volume key lives only in memory,
// inside the cipher of the Volume that Unlock returns.
//
// Only the cipher cryptsetup uses by default, aes-xts-plain64, is supported,
// for the data and for the key slots; a volume in the middle of an online
// reencryption (more than one data segment) is refused.
package luks

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/pbkdf2"

	"github.com/azfs/azfs/diskimage/internal/imageio"
)

var (
	// ErrFormat is wrapped by the errors about a header that is not a
	// valid LUKS header.
	ErrFormat = errors.New("not a valid LUKS header")
	// ErrUnsupported is wrapped by the errors about a valid header that
	// uses what this package does not implement (a cipher, a hash, a
	// key derivation).
	ErrUnsupported = errors.New("unsupported LUKS volume")
	// ErrKey is wrapped by the error Unlock returns when no key slot opens
	// with the given passphrase or key.
	ErrKey = errors.New("no key slot opens with the given passphrase or key")
)

// magic starts a LUKS1 header and LUKS2's primary header.
var magic = []byte("LUKS\xba\xbe")

// sectorSize is the unit of LUKS offsets and of key slot encryption.
const sectorSize = 512

// maxKeyBytes bounds a volume key (aes-xts with AES-256 uses 64 bytes).
const maxKeyBytes = 64

// maxAreaBytes bounds a key slot's key material (cryptsetup writes 4000
// stripes of a 64-byte key, about 250 KiB).
const maxAreaBytes = 16 << 20

// Is reports whether b, the first bytes of a volume, starts a LUKS header.
func Is(b []byte) bool {
	return bytes.HasPrefix(b, magic) && len(b) >= 8 && (b[7] == 1 || b[7] == 2) && b[6] == 0
}

// Header is a parsed LUKS header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// UUID is the volume's UUID as the header stores it.
	UUID string

	cipher     string // the data segment's encryption, "aes-xts-plain64"
	keyBytes   int    // the volume key's length
	dataOffset int64  // the data segment's offset in bytes
	dataSize   int64  // its length in bytes, or -1: to the end of the volume
	sectorSize int    // the data segment's sector size
	ivTweak    uint64 // added to each data sector number for its IV
	slots      []keySlot
	digests    []keyDigest
	volumeSize int64
}

// keySlot is one key slot: where its key material is and how its key is
// derived from a passphrase.
type keySlot struct {
	id         string
	keyBytes   int // the volume key's length
	kdf        kdf
	stripes    int
	afHash     string
	areaOffset int64
	areaCipher string
	areaKey    int // the length of the key that encrypts the area
}

// kdf is a key slot's key derivation function and its parameters.
type kdf struct {
	typ        string // "pbkdf2", "argon2i" or "argon2id"
	hash       string // pbkdf2's hash
	iterations int    // pbkdf2
	time       int    // argon2
	memoryKiB  int    // argon2
	threads    int    // argon2
	salt       []byte
}

// keyDigest is a check of a volume key: PBKDF2 of the key with salt gives
// value. slots lists the IDs of the key slots it checks.
type keyDigest struct {
	hash       string
	iterations int
	salt       []byte
	value      []byte
	slots      []string
}

// Open parses the LUKS header at the start of r, a volume of size bytes.
func Open(r io.ReaderAt, size int64) (*Header, error) {
	b := make([]byte, 4096)
	if err := readAt(r, b, 0); err != nil {
		return nil, fmt.Errorf("read LUKS header: %w", err)
	}
	if !bytes.HasPrefix(b, magic) {
		return nil, fmt.Errorf("%w: no LUKS magic", ErrFormat)
	}
	var h *Header
	var err error
	switch v := binary.BigEndian.Uint16(b[6:]); v {
	case 1:
		h, err = parseV1(b)
	case 2:
		h, err = readV2(r, b)
	default:
		return nil, fmt.Errorf("%w: version %d", ErrFormat, v)
	}
	if err != nil {
		return nil, err
	}
	h.volumeSize = size
	if h.dataOffset > size {
		return nil, fmt.Errorf("%w: data offset %d beyond the volume's %d bytes", ErrFormat, h.dataOffset, size)
	}
	if h.dataSize >= 0 && h.dataSize > size-h.dataOffset {
		return nil, fmt.Errorf("%w: data segment of %d bytes at %d beyond the volume's %d bytes", ErrFormat, h.dataSize, h.dataOffset, size)
	}
	return h, nil
}

// cstring returns b up to its first NUL byte.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// LUKS1 header layout (big endian).
const (
	v1Active      = 0x00AC71F3
	v1Slots       = 8
	v1SlotsOffset = 208
	v1SlotSize    = 48
	v1DigestBytes = 20
)

// parseV1 parses a LUKS1 header, b its first 4096 bytes.
func parseV1(b []byte) (*Header, error) {
	cipherName, cipherMode, hashSpec := cstring(b[8:40]), cstring(b[40:72]), cstring(b[72:104])
	h := &Header{
		Version:    1,
		UUID:       cstring(b[168:208]),
		cipher:     cipherName + "-" + cipherMode,
		keyBytes:   int(binary.BigEndian.Uint32(b[108:])),
		dataOffset: int64(binary.BigEndian.Uint32(b[104:])) * sectorSize,
		dataSize:   -1,
		sectorSize: sectorSize,
	}
	if h.keyBytes <= 0 || h.keyBytes > maxKeyBytes {
		return nil, fmt.Errorf("%w: key of %d bytes", ErrFormat, h.keyBytes)
	}
	d := keyDigest{
		hash:       hashSpec,
		iterations: int(binary.BigEndian.Uint32(b[164:])),
		salt:       bytes.Clone(b[132:164]),
		value:      bytes.Clone(b[112 : 112+v1DigestBytes]),
	}
	for i := range v1Slots {
		s := b[v1SlotsOffset+i*v1SlotSize:][:v1SlotSize]
		if binary.BigEndian.Uint32(s) != v1Active {
			continue
		}
		id := fmt.Sprint(i)
		slot := keySlot{
			id:         id,
			keyBytes:   h.keyBytes,
			kdf:        kdf{typ: "pbkdf2", hash: hashSpec, iterations: int(binary.BigEndian.Uint32(s[4:])), salt: bytes.Clone(s[8:40])},
			stripes:    int(binary.BigEndian.Uint32(s[44:])),
			afHash:     hashSpec,
			areaOffset: int64(binary.BigEndian.Uint32(s[40:])) * sectorSize,
			areaCipher: h.cipher,
			areaKey:    h.keyBytes,
		}
		if err := slot.check(); err != nil {
			return nil, err
		}
		h.slots = append(h.slots, slot)
		d.slots = append(d.slots, id)
	}
	h.digests = []keyDigest{d}
	return h, nil
}

// check checks the sizes a key slot's header gives.
func (s *keySlot) check() error {
	if s.stripes <= 0 || s.keyBytes <= 0 || s.keyBytes > maxKeyBytes || s.stripes*s.keyBytes > maxAreaBytes {
		return fmt.Errorf("%w: key slot %s: %d stripes of %d bytes", ErrFormat, s.id, s.stripes, s.keyBytes)
	}
	if s.areaKey <= 0 || s.areaKey > maxKeyBytes {
		return fmt.Errorf("%w: key slot %s: area key of %d bytes", ErrFormat, s.id, s.areaKey)
	}
	if s.areaOffset < 0 {
		return fmt.Errorf("%w: key slot %s: area at %d", ErrFormat, s.id, s.areaOffset)
	}
	return nil
}

// Unlock derives the volume key from key, a passphrase or the content of a
// key file, trying every key slot, and returns the decrypted volume. It
// returns an error wrapping ErrKey when no slot opens.
func (h *Header) Unlock(r io.ReaderAt, key []byte) (*Volume, error) {
	if h.cipher != "aes-xts-plain64" {
		return nil, fmt.Errorf("%w: cipher %q (only aes-xts-plain64 is supported)", ErrUnsupported, h.cipher)
	}
	var unsupported error
	for _, s := range h.slots {
		vk, err := s.open(r, key)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				return nil, err
			}
			unsupported = err
			continue
		}
		ok, err := h.verify(s.id, vk)
		if err != nil {
			return nil, err
		}
		if ok {
			return h.volume(r, vk)
		}
		clear(vk)
	}
	if unsupported != nil {
		return nil, fmt.Errorf("%w (%w)", ErrKey, unsupported)
	}
	return nil, ErrKey
}

// open derives the slot's key from key, decrypts its key material and
// merges it into a candidate volume key.
func (s *keySlot) open(r io.ReaderAt, key []byte) ([]byte, error) {
	if s.areaCipher != "aes-xts-plain64" {
		return nil, fmt.Errorf("%w: key slot %s: cipher %q", ErrUnsupported, s.id, s.areaCipher)
	}
	newHash, err := hashFunc(s.afHash)
	if err != nil {
		return nil, fmt.Errorf("key slot %s: %w", s.id, err)
	}
	slotKey, err := s.kdf.derive(key, s.areaKey)
	if err != nil {
		return nil, fmt.Errorf("key slot %s: %w", s.id, err)
	}
	defer clear(slotKey)
	c, err := newXTS(slotKey)
	if err != nil {
		return nil, fmt.Errorf("%w: key slot %s: %w", ErrUnsupported, s.id, err)
	}
	n := s.stripes * s.keyBytes
	area := make([]byte, (n+sectorSize-1)/sectorSize*sectorSize)
	defer clear(area)
	if err := readAt(r, area, s.areaOffset); err != nil {
		return nil, fmt.Errorf("read key slot %s: %w", s.id, err)
	}
	c.decryptSectors(area, sectorSize, 0, 1)
	return afMerge(area[:n], s.keyBytes, s.stripes, newHash), nil
}

// derive derives a key of n bytes from pass.
func (k *kdf) derive(pass []byte, n int) ([]byte, error) {
	switch k.typ {
	case "pbkdf2":
		newHash, err := hashFunc(k.hash)
		if err != nil {
			return nil, err
		}
		if k.iterations <= 0 {
			return nil, fmt.Errorf("%w: pbkdf2 with %d iterations", ErrFormat, k.iterations)
		}
		return pbkdf2.Key(pass, k.salt, k.iterations, n, newHash), nil
	case "argon2i", "argon2id":
		if k.time <= 0 || k.memoryKiB <= 0 || k.threads <= 0 || k.threads > 255 || k.memoryKiB > maxArgonKiB {
			return nil, fmt.Errorf("%w: %s with time %d, memory %d KiB, %d threads", ErrFormat, k.typ, k.time, k.memoryKiB, k.threads)
		}
		if k.typ == "argon2i" {
			return argon2.Key(pass, k.salt, uint32(k.time), uint32(k.memoryKiB), uint8(k.threads), uint32(n)), nil
		}
		return argon2.IDKey(pass, k.salt, uint32(k.time), uint32(k.memoryKiB), uint8(k.threads), uint32(n)), nil
	}
	return nil, fmt.Errorf("%w: key derivation %q", ErrUnsupported, k.typ)
}

// maxArgonKiB is the most memory an Argon2 key slot may ask for: LUKS2's
// own limit, 4 GiB.
const maxArgonKiB = 4 << 20

// hashFunc returns the hash LUKS names name.
func hashFunc(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: hash %q", ErrUnsupported, name)
}

// afMerge merges LUKS anti-forensic split key material: stripes blocks of
// keyBytes each, XORed and diffused with the hash in turn.
func afMerge(material []byte, keyBytes, stripes int, newHash func() hash.Hash) []byte {
	d := make([]byte, keyBytes)
	for i := range stripes - 1 {
		subtle.XORBytes(d, d, material[i*keyBytes:(i+1)*keyBytes])
		diffuse(d, newHash)
	}
	subtle.XORBytes(d, d, material[(stripes-1)*keyBytes:])
	return d
}

// diffuse replaces each hash-sized block i of d with the hash of i (32-bit
// big endian) followed by the block, truncated to the block's length.
func diffuse(d []byte, newHash func() hash.Hash) {
	h := newHash()
	size := h.Size()
	var iv [4]byte
	for i := 0; i*size < len(d); i++ {
		block := d[i*size : min((i+1)*size, len(d))]
		h.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		h.Write(iv[:])
		h.Write(block)
		copy(block, h.Sum(nil))
	}
}

// verify reports whether vk, opened from slot, matches a digest that
// covers the slot.
func (h *Header) verify(slot string, vk []byte) (bool, error) {
	for _, d := range h.digests {
		if h.Version == 2 && !containsString(d.slots, slot) {
			continue
		}
		newHash, err := hashFunc(d.hash)
		if err != nil {
			return false, err
		}
		if d.iterations <= 0 || len(d.value) == 0 {
			return false, fmt.Errorf("%w: digest of %d bytes with %d iterations", ErrFormat, len(d.value), d.iterations)
		}
		got := pbkdf2.Key(vk, d.salt, d.iterations, len(d.value), newHash)
		if subtle.ConstantTimeCompare(got, d.value) == 1 {
			return true, nil
		}
	}
	return false, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// volume returns the decrypted data segment, keyed with vk.
func (h *Header) volume(r io.ReaderAt, vk []byte) (*Volume, error) {
	c, err := newXTS(vk)
	clear(vk)
	if err != nil {
		return nil, fmt.Errorf("%w: volume key: %w", ErrUnsupported, err)
	}
	size := h.dataSize
	if size < 0 {
		size = h.volumeSize - h.dataOffset
	}
	size -= size % int64(h.sectorSize)
	return &Volume{r: r, c: c, offset: h.dataOffset, size: size, sectorSize: int64(h.sectorSize), ivTweak: h.ivTweak}, nil
}

// Volume is an unlocked LUKS volume: its data segment, decrypted on read.
// It is safe for concurrent use.
type Volume struct {
	r          io.ReaderAt
	c          *xtsCipher
	offset     int64 // the data segment's offset in r
	size       int64
	sectorSize int64
	// ivTweak is added to each IV. IVs count 512-byte sectors whatever
	// the sector size (cryptsetup does not set dm-crypt's
	// iv_large_sectors for LUKS2).
	ivTweak uint64
}

// Size returns the length of the decrypted data in bytes.
func (v *Volume) Size() int64 { return v.size }

// ReadAt reads len(p) decrypted bytes at off. It reads the sectors the
// range covers in one call to the underlying reader.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("luks: read at %d: negative offset", off)
	}
	if off >= v.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := v.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	first := off / v.sectorSize
	last := (off + int64(len(p)) + v.sectorSize - 1) / v.sectorSize
	// A read of whole sectors (a file system's blocks) is decrypted in
	// place; another goes through a buffer of the sectors it touches.
	inPlace := off%v.sectorSize == 0 && int64(len(p))%v.sectorSize == 0
	buf := p
	if !inPlace {
		buf = make([]byte, (last-first)*v.sectorSize)
	}
	if _, err := v.r.ReadAt(buf, v.offset+first*v.sectorSize); err != nil {
		return 0, fmt.Errorf("luks: read sectors %d-%d: %w", first, last-1, err)
	}
	step := uint64(v.sectorSize / sectorSize)
	v.c.decryptSectors(buf, int(v.sectorSize), uint64(first)*step+v.ivTweak, step)
	n := len(p)
	if !inPlace {
		n = copy(p, buf[off-first*v.sectorSize:])
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readAt fills b from r at off; running into the end means a malformed
// image.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	return imageio.ReadAt(r, b, off, ErrFormat)
}

// On returns the volume read from r instead, a reader of the same bytes
// (the same image in another recovery point): the key is not derived
// again.
func (v *Volume) On(r io.ReaderAt) *Volume {
	w := *v
	w.r = r
	return &w
}

// ReadKeys reads the keys to try on LUKS volumes: each passphrase file's
// content without one trailing newline (as a passphrase typed at
// cryptsetup's prompt), and each key file's whole content (as cryptsetup
// --key-file reads it).
func ReadKeys(passphraseFiles, keyFiles []string) ([][]byte, error) {
	var keys [][]byte
	for _, name := range passphraseFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read LUKS passphrase file: %w", err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		if len(b) == 0 {
			return nil, fmt.Errorf("LUKS passphrase file %q is empty", name)
		}
		keys = append(keys, b)
	}
	for _, name := range keyFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read LUKS key file: %w", err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("LUKS key file %q is empty", name)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

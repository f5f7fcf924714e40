package guard

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
)

// Object names in a machine's area (format.md §13.4).
const (
	MarksPrefix = "prune/marks/"
	KeepsPrefix = "prune/keeps/"
)

// signContext is the owner-signature context of marks (format §4.7).
const signContext = "prune-mark"

// MarkID names a mark: 16 random bytes, 32 hex digits in its object name.
type MarkID [16]byte

func (id MarkID) String() string { return hex.EncodeToString(id[:]) }

func NewMarkID() (MarkID, error) {
	var id MarkID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("new mark: %w", err)
	}
	return id, nil
}

func ParseMarkID(s string) (MarkID, bool) {
	var id MarkID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) || hex.EncodeToString(b) != s {
		return id, false
	}
	return MarkID(b), true
}

// Mark is phase 1 of a prune: the packs that held no blob any point needed
// when it was made. None of them is deleted before Created+Margin, and then
// only if still unneeded (format.md §13.4).
type Mark struct {
	Area    string        // the machine area's config ID
	ID      MarkID        // also its object name
	Created time.Time     // by the pruning machine's clock
	Margin  time.Duration // the safety margin it was made with
	Packs   []keys.ID     // sorted, no duplicates
}

// Due reports whether the mark's packs may be deleted by a prune with
// margin whose points were listed at listed: its own margin, or a smaller
// one, has passed since it was made.
func (m *Mark) Due(listed time.Time, margin time.Duration) bool {
	return !listed.Before(m.Created.Add(min(m.Margin, margin)))
}

// ErrFormat reports a mark or keep object that does not decode.
var ErrFormat = errkind.New(errkind.Damaged, "malformed prune object")

const (
	markMagic = "AZM1"
	keepMagic = "AZU1"
	maxArea   = 64 // bytes of an area ID in a mark
)

// markBody encodes everything a mark's signature covers:
//
//	"AZM1" ‖ uvarint len(area) ‖ area ‖ id(16) ‖ varint created (Unix ns)
//	‖ uvarint margin (ns) ‖ uvarint n ‖ n × pack(32)
func (m *Mark) body() []byte {
	b := make([]byte, 0, len(markMagic)+1+len(m.Area)+16+20+binary.MaxVarintLen64+32*len(m.Packs))
	b = append(b, markMagic...)
	b = binary.AppendUvarint(b, uint64(len(m.Area)))
	b = append(b, m.Area...)
	b = append(b, m.ID[:]...)
	b = binary.AppendVarint(b, m.Created.UnixNano())
	b = binary.AppendUvarint(b, uint64(m.Margin))
	b = binary.AppendUvarint(b, uint64(len(m.Packs)))
	for _, p := range m.Packs {
		b = append(b, p[:]...)
	}
	return b
}

// Encode returns the mark's object: its body and the owner's signature
// over it (64 bytes).
func (m *Mark) Encode(owner *keys.OwnerKeys) []byte {
	body := m.body()
	return append(body, owner.Sign(signContext, body)...)
}

// DecodeMark parses a mark object without checking its signature. It
// refuses anything that is not exactly an encoding Encode writes.
func DecodeMark(b []byte) (*Mark, error) {
	if len(b) < ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: mark of %d bytes", ErrFormat, len(b))
	}
	r := reader{b: b[:len(b)-ed25519.SignatureSize]}
	if !r.magic(markMagic) {
		return nil, fmt.Errorf("%w: not a mark", ErrFormat)
	}
	m := &Mark{}
	n := r.uvarint()
	if n > maxArea {
		return nil, fmt.Errorf("%w: area ID of %d bytes", ErrFormat, n)
	}
	m.Area = string(r.bytes(int(n)))
	copy(m.ID[:], r.bytes(len(m.ID)))
	created := r.varint()
	margin := r.uvarint()
	if r.err == nil && (margin > 1<<62 || created == 0) {
		return nil, fmt.Errorf("%w: mark time or margin out of range", ErrFormat)
	}
	m.Created, m.Margin = time.Unix(0, created).UTC(), time.Duration(margin)
	packs, err := r.packs()
	if err != nil {
		return nil, err
	}
	m.Packs = packs
	return m, nil
}

// VerifyMark decodes a mark object and checks its owner signature, that it
// belongs to area and that it is stored under its own ID.
func VerifyMark(b []byte, owner keys.OwnerPublic, area string, name MarkID) (*Mark, error) {
	m, err := DecodeMark(b)
	if err != nil {
		return nil, err
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	if err := owner.Verify(signContext, body, sig); err != nil {
		return nil, fmt.Errorf("mark %s: %w", name, err)
	}
	if m.Area != area || m.ID != name {
		return nil, fmt.Errorf("mark %s: %w: made for area %q as mark %s", name, ErrFormat, m.Area, m.ID)
	}
	return m, nil
}

// EncodeKeep encodes a keep object, which a backup writes to say that it
// depends on packs of mark id:
//
//	"AZU1" ‖ id(16) ‖ uvarint n ‖ n × pack(32)        packs sorted, no duplicates
func EncodeKeep(id MarkID, packs []keys.ID) []byte {
	b := make([]byte, 0, len(keepMagic)+len(id)+binary.MaxVarintLen64+32*len(packs))
	b = append(b, keepMagic...)
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, uint64(len(packs)))
	for _, p := range packs {
		b = append(b, p[:]...)
	}
	return b
}

// DecodeKeep parses a keep object: the mark it answers and the packs.
func DecodeKeep(b []byte) (MarkID, []keys.ID, error) {
	var id MarkID
	r := reader{b: b}
	if !r.magic(keepMagic) {
		return id, nil, fmt.Errorf("%w: not a keep", ErrFormat)
	}
	copy(id[:], r.bytes(len(id)))
	packs, err := r.packs()
	return id, packs, err
}

// reader decodes the fields of marks and keeps; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrFormat, what)
	}
	r.b = nil
}

func (r *reader) magic(m string) bool {
	if !bytes.HasPrefix(r.b, []byte(m)) {
		return false
	}
	r.b = r.b[len(m):]
	return true
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.fail("length")
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// packs reads a count and that many sorted, distinct pack IDs, which must
// end the input.
func (r *reader) packs() ([]keys.ID, error) {
	n := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	if n != uint64(len(r.b)/32) || len(r.b)%32 != 0 {
		return nil, fmt.Errorf("%w: %d packs in %d bytes", ErrFormat, n, len(r.b))
	}
	packs := make([]keys.ID, n)
	for i := range packs {
		copy(packs[i][:], r.b[32*i:])
		if i > 0 && bytes.Compare(packs[i-1][:], packs[i][:]) >= 0 {
			return nil, fmt.Errorf("%w: packs out of order", ErrFormat)
		}
	}
	return packs, nil
}

// SortPacks sorts packs and drops duplicates, as marks and keeps hold them.
func SortPacks(packs []keys.ID) []keys.ID {
	slices.SortFunc(packs, func(a, b keys.ID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(packs)
}

// Package index maps blob IDs to their place in the vault's packs, and encodes
// the index files that record it. Index files are a cache of what the packs'
// trailers say: the index can always be rebuilt from the packs alone.
package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

// Location is where a blob is stored.
type Location struct {
	Pack   keys.ID
	Kind   keys.Kind
	Offset uint32
	Length uint32
}

type entry struct {
	pack   uint32 // position in Index.packs
	offset uint32
	length uint32
	kind   keys.Kind
}

// copyKey names one copy of a blob: the blob and the pack it is in.
type copyKey struct {
	blob keys.ID
	pack uint32
}

// Index is an in-memory map from blob ID to location, compact enough for tens
// of millions of blobs (about 70 bytes each). It is safe for concurrent use.
//
// A blob may be stored in several packs (a backup stored it again because
// its first copy was lost or damaged, or two backups raced). The index keeps
// every copy, in a fixed order: copies not known to be bad first, then by
// pack ID. The first of that order is the blob's preferred copy, the one
// Lookup returns; a blob stored once costs no more than before.
type Index struct {
	mu      sync.RWMutex
	packs   []keys.ID
	packPos map[keys.ID]uint32
	ends    []uint64 // per pack: where its last indexed blob ends
	blobs   map[keys.ID]entry
	more    map[keys.ID][]entry // further copies of blobs stored more than once
	bad     map[copyKey]struct{}
	badPack map[uint32]bool // packs whose every copy is bad (the pack is gone)
}

// New returns an empty index.
func New() *Index {
	return &Index{packPos: make(map[keys.ID]uint32), blobs: make(map[keys.ID]entry), more: make(map[keys.ID][]entry), bad: make(map[copyKey]struct{}), badPack: make(map[uint32]bool)}
}

// AddPack records the blobs of one pack. A blob already known in another
// pack gains a copy; adding a pack again adds nothing.
func (x *Index) AddPack(packID keys.ID, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos := x.packPosition(packID)
	for _, e := range entries {
		if end := uint64(e.Offset) + uint64(e.Length); end > x.ends[pos] {
			x.ends[pos] = end
		}
		add := entry{pack: pos, offset: e.Offset, length: e.Length, kind: e.Kind}
		first, dup := x.blobs[e.ID]
		if !dup {
			x.blobs[e.ID] = add
			continue
		}
		if first.pack == pos || slices.ContainsFunc(x.more[e.ID], func(c entry) bool { return c.pack == pos }) {
			continue
		}
		x.more[e.ID] = append(x.more[e.ID], add)
		x.reorder(e.ID)
	}
}

func (x *Index) packPosition(packID keys.ID) uint32 {
	pos, ok := x.packPos[packID]
	if !ok {
		pos = uint32(len(x.packs))
		x.packs = append(x.packs, packID)
		x.ends = append(x.ends, 0)
		x.packPos[packID] = pos
	}
	return pos
}

// reorder puts the copies of a blob stored more than once in their fixed
// order. Called with x.mu held.
func (x *Index) reorder(id keys.ID) {
	copies := append([]entry{x.blobs[id]}, x.more[id]...)
	slices.SortFunc(copies, func(a, b entry) int {
		aBad, bBad := x.isBad(id, a.pack), x.isBad(id, b.pack)
		if aBad != bBad {
			if aBad {
				return 1
			}
			return -1
		}
		return bytes.Compare(x.packs[a.pack][:], x.packs[b.pack][:])
	})
	x.blobs[id] = copies[0]
	x.more[id] = copies[1:]
}

// isBad reports whether the copy of blob in pack pos is known to be bad.
// Called with x.mu held.
func (x *Index) isBad(blob keys.ID, pos uint32) bool {
	if x.badPack[pos] {
		return true
	}
	_, bad := x.bad[copyKey{blob, pos}]
	return bad
}

func (x *Index) location(e entry) Location {
	return Location{Pack: x.packs[e.pack], Kind: e.kind, Offset: e.offset, Length: e.length}
}

// Lookup returns the preferred location of a blob: a copy not known to be
// bad if it has one.
func (x *Index) Lookup(id keys.ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return Location{}, false
	}
	return x.location(e), true
}

// Locations returns every copy of a blob in the order readers should try
// them: copies not known to be bad first, then by pack ID.
func (x *Index) Locations(id keys.ID) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return nil
	}
	out := make([]Location, 0, 1+len(x.more[id]))
	out = append(out, x.location(e))
	for _, c := range x.more[id] {
		out = append(out, x.location(c))
	}
	return out
}

// Good returns the preferred location of a blob if it has a copy not known
// to be bad.
func (x *Index) Good(id keys.ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return Location{}, false
	}
	if x.isBad(id, e.pack) {
		return Location{}, false
	}
	return x.location(e), true
}

// IsBad reports whether the copy of blob in pack is known to be bad.
func (x *Index) IsBad(blob, packID keys.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	pos, ok := x.packPos[packID]
	return ok && x.isBad(blob, pos)
}

// MarkBad records that the copy of blob in pack is missing or damaged, so
// that its other copies are preferred. It reports whether that was news: a
// copy the index does not hold, or one already marked, is not.
func (x *Index) MarkBad(blob, packID keys.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packPos[packID]
	if !ok || !x.holds(blob, pos) {
		return false
	}
	if x.isBad(blob, pos) {
		return false
	}
	x.bad[copyKey{blob, pos}] = struct{}{}
	if len(x.more[blob]) > 0 {
		x.reorder(blob)
	}
	return true
}

// MarkPackBad records that every copy in pack is missing (the pack is gone
// from the storage), as MarkBad does for one copy. It reports whether that
// was news.
func (x *Index) MarkPackBad(packID keys.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packPos[packID]
	if !ok || x.badPack[pos] {
		return false
	}
	x.badPack[pos] = true
	for id, more := range x.more {
		if x.blobs[id].pack == pos || slices.ContainsFunc(more, func(c entry) bool { return c.pack == pos }) {
			x.reorder(id)
		}
	}
	return true
}

// holds reports whether the index has a copy of blob in pack pos. Called
// with x.mu held.
func (x *Index) holds(blob keys.ID, pos uint32) bool {
	e, ok := x.blobs[blob]
	if !ok {
		return false
	}
	return e.pack == pos || slices.ContainsFunc(x.more[blob], func(c entry) bool { return c.pack == pos })
}

// Has reports whether the blob is indexed.
func (x *Index) Has(id keys.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.blobs[id]
	return ok
}

// HasPack reports whether any index entry names the pack.
func (x *Index) HasPack(id keys.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.packPos[id]
	return ok
}

// PackEnd returns where the last blob the index places in pack id ends: a
// pack stored shorter than that (and its footer) was truncated.
func (x *Index) PackEnd(id keys.ID) uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	pos, ok := x.packPos[id]
	if !ok {
		return 0
	}
	return x.ends[pos]
}

// Len returns the number of blobs indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// Packs returns the IDs of all indexed packs.
func (x *Index) Packs() []keys.ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]keys.ID(nil), x.packs...)
}

// Each calls fn for every blob, with its preferred location, until fn
// returns false.
func (x *Index) Each(fn func(id keys.ID, loc Location) bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, e := range x.blobs {
		if !fn(id, x.location(e)) {
			return
		}
	}
}

// EachCopy calls fn for every copy of every blob until fn returns false.
func (x *Index) EachCopy(fn func(id keys.ID, loc Location) bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, e := range x.blobs {
		if !fn(id, x.location(e)) {
			return
		}
		for _, c := range x.more[id] {
			if !fn(id, x.location(c)) {
				return
			}
		}
	}
}

// PackBlobs is the content of one pack as an index file records it.
type PackBlobs struct {
	Pack    keys.ID
	Entries []pack.Entry
}

// File is the plaintext of an index file.
//
// Encoding: "AZX1", a varint pack count, then per pack its 32-byte name, a
// varint entry count and the entries as in a pack trailer (kind byte, 32-byte
// ID, varint offset, varint length).
type File struct {
	Packs []PackBlobs
}

const fileMagic = "AZX1"

// ErrFormat reports index bytes that do not decode.
var ErrFormat = errkind.New(errkind.Damaged, "malformed index")

// Encode returns the encoding of f.
func (f *File) Encode() []byte {
	b := append([]byte(nil), fileMagic...)
	b = binary.AppendUvarint(b, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.Pack[:]...)
		b = binary.AppendUvarint(b, uint64(len(p.Entries)))
		for _, e := range p.Entries {
			b = append(b, byte(e.Kind))
			b = append(b, e.ID[:]...)
			b = binary.AppendUvarint(b, uint64(e.Offset))
			b = binary.AppendUvarint(b, uint64(e.Length))
		}
	}
	return b
}

// DecodeFile parses an index file's plaintext.
func DecodeFile(b []byte) (*File, error) {
	if !bytes.HasPrefix(b, []byte(fileMagic)) {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	b = b[len(fileMagic):]
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("%w: bad %s", ErrFormat, what)
		}
		b = b[n:]
		return v, nil
	}
	np, err := uv("pack count")
	if err != nil {
		return nil, err
	}
	if np > uint64(len(b)/33) {
		return nil, fmt.Errorf("%w: pack count %d too large", ErrFormat, np)
	}
	f := &File{Packs: make([]PackBlobs, 0, np)}
	for range np {
		if len(b) < 32 {
			return nil, fmt.Errorf("%w: truncated pack name", ErrFormat)
		}
		var p PackBlobs
		copy(p.Pack[:], b)
		b = b[32:]
		ne, err := uv("entry count")
		if err != nil {
			return nil, err
		}
		if ne > uint64(len(b)/35) {
			return nil, fmt.Errorf("%w: entry count %d too large", ErrFormat, ne)
		}
		p.Entries = make([]pack.Entry, 0, ne)
		for range ne {
			if len(b) < 33 {
				return nil, fmt.Errorf("%w: truncated entry", ErrFormat)
			}
			e := pack.Entry{Kind: keys.Kind(b[0])}
			copy(e.ID[:], b[1:33])
			b = b[33:]
			off, err := uv("offset")
			if err != nil {
				return nil, err
			}
			length, err := uv("length")
			if err != nil {
				return nil, err
			}
			if (e.Kind != keys.KindData && e.Kind != keys.KindTree) || off > 1<<32-1 || length > 1<<32-1 || length < keys.Overhead {
				return nil, fmt.Errorf("%w: bad entry", ErrFormat)
			}
			e.Offset, e.Length = uint32(off), uint32(length)
			p.Entries = append(p.Entries, e)
		}
		f.Packs = append(f.Packs, p)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(b))
	}
	return f, nil
}

// BadCopy names a copy of a blob found missing or damaged: the blob in
// Pack, or with a zero Blob every blob of Pack (the pack is gone).
type BadCopy struct {
	Blob keys.ID
	Pack keys.ID
}

// DamageRecord is the plaintext of a damage record: copies found bad.
//
// Encoding: "AZD1", a varint count, then per copy the blob's 32-byte ID
// (all zero: the whole pack) and the pack's 32-byte name.
type DamageRecord struct {
	Bad []BadCopy
}

const damageMagic = "AZD1"

// Encode returns the encoding of r.
func (r *DamageRecord) Encode() []byte {
	b := append([]byte(nil), damageMagic...)
	b = binary.AppendUvarint(b, uint64(len(r.Bad)))
	for _, c := range r.Bad {
		b = append(b, c.Blob[:]...)
		b = append(b, c.Pack[:]...)
	}
	return b
}

// DecodeDamageRecord parses a damage record's plaintext.
func DecodeDamageRecord(b []byte) (*DamageRecord, error) {
	if !bytes.HasPrefix(b, []byte(damageMagic)) {
		return nil, fmt.Errorf("%w: damage record: bad magic", ErrFormat)
	}
	b = b[len(damageMagic):]
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(b)-k)/64 || uint64(len(b)-k)%64 != 0 {
		return nil, fmt.Errorf("%w: damage record: bad count", ErrFormat)
	}
	b = b[k:]
	r := &DamageRecord{Bad: make([]BadCopy, n)}
	for i := range r.Bad {
		copy(r.Bad[i].Blob[:], b[:32])
		copy(r.Bad[i].Pack[:], b[32:64])
		b = b[64:]
	}
	return r, nil
}

// Apply marks the copies r names bad in x.
func (r *DamageRecord) Apply(x *Index) {
	for _, c := range r.Bad {
		if c.Blob.IsZero() {
			x.MarkPackBad(c.Pack)
		} else {
			x.MarkBad(c.Blob, c.Pack)
		}
	}
}

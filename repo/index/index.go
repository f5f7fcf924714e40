// Package index maps blob IDs to their place in the vault's packs, and encodes
// the index files that record it. Index files are a cache of what the packs'
// trailers say: the index can always be rebuilt from the packs alone.
package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

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

// Index is an in-memory map from blob ID to location, compact enough for tens
// of millions of blobs (about 70 bytes each). It is safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   []keys.ID
	packPos map[keys.ID]uint32
	blobs   map[keys.ID]entry
}

// New returns an empty index.
func New() *Index {
	return &Index{packPos: make(map[keys.ID]uint32), blobs: make(map[keys.ID]entry)}
}

// AddPack records the blobs of one pack. A blob already known keeps its first
// location.
func (x *Index) AddPack(packID keys.ID, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pos, ok := x.packPos[packID]
	if !ok {
		pos = uint32(len(x.packs))
		x.packs = append(x.packs, packID)
		x.packPos[packID] = pos
	}
	for _, e := range entries {
		if _, dup := x.blobs[e.ID]; dup {
			continue
		}
		x.blobs[e.ID] = entry{pack: pos, offset: e.Offset, length: e.Length, kind: e.Kind}
	}
}

// Lookup returns the location of a blob.
func (x *Index) Lookup(id keys.ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return Location{}, false
	}
	return Location{Pack: x.packs[e.pack], Kind: e.kind, Offset: e.offset, Length: e.length}, true
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

// Each calls fn for every blob until fn returns false.
func (x *Index) Each(fn func(id keys.ID, loc Location) bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, e := range x.blobs {
		if !fn(id, Location{Pack: x.packs[e.pack], Kind: e.kind, Offset: e.offset, Length: e.length}) {
			return
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
var ErrFormat = errors.New("malformed index")

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

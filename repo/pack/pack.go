// Package pack builds and parses packs: files holding many sealed blobs
// followed by a sealed trailer that lists them, so that the index can always be
// rebuilt from the packs alone.
//
// Layout of a pack:
//
//	blob 0 sealed ‖ blob 1 sealed ‖ … ‖ trailer sealed ‖ footer
//	footer = trailer ID (32 bytes) ‖ trailer length (uint32 little endian) ‖ "AZP1"
//
// The trailer is sealed as kind keys.KindTrailer under its own ID, the keyed
// hash of its plaintext. A pack's name is the unkeyed BLAKE3 hash of its bytes,
// so anyone can check that a pack is intact without holding any key.
package pack

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/zeebo/blake3"
)

// TargetSize is the size at which a pack is finished.
const TargetSize = 16 << 20

// FooterLen is the length of the fixed footer at the end of every pack.
const FooterLen = 32 + 4 + 4

const (
	footerMagic  = "AZP1"
	trailerMagic = "AZK1"
)

// Entry locates one blob inside a pack.
type Entry struct {
	Kind   keys.Kind
	ID     keys.ID
	Offset uint32 // of the sealed blob from the start of the pack
	Length uint32 // of the sealed blob
}

// ErrFormat reports pack bytes that do not parse.
var ErrFormat = errkind.New(errkind.Damaged, "malformed pack")

// Name returns the name of a pack with the given bytes.
func Name(b []byte) keys.ID { return keys.ID(blake3.Sum256(b)) }

// EncodeTrailer encodes a trailer: "AZK1", a varint count, then per entry the
// kind (1 byte), the ID (32 bytes), the offset and the length (varints).
func EncodeTrailer(entries []Entry) []byte {
	b := make([]byte, 0, 4+binary.MaxVarintLen64+len(entries)*(1+32+8))
	b = append(b, trailerMagic...)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, byte(e.Kind))
		b = append(b, e.ID[:]...)
		b = binary.AppendUvarint(b, uint64(e.Offset))
		b = binary.AppendUvarint(b, uint64(e.Length))
	}
	return b
}

// DecodeTrailer parses a trailer. Entries must be in order, not overlap and
// each be long enough to be a sealed blob; dataLen (the bytes before the
// trailer) bounds them.
func DecodeTrailer(b []byte, dataLen uint32) ([]Entry, error) {
	if !bytes.HasPrefix(b, []byte(trailerMagic)) {
		return nil, fmt.Errorf("%w: bad trailer magic", ErrFormat)
	}
	b = b[len(trailerMagic):]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)/35) {
		return nil, fmt.Errorf("%w: bad trailer count", ErrFormat)
	}
	b = b[k:]
	entries := make([]Entry, 0, n)
	var end uint64
	for i := uint64(0); i < n; i++ {
		if len(b) < 33 {
			return nil, fmt.Errorf("%w: trailer truncated", ErrFormat)
		}
		e := Entry{Kind: keys.Kind(b[0])}
		copy(e.ID[:], b[1:33])
		b = b[33:]
		off, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: bad offset", ErrFormat)
		}
		b = b[k1:]
		length, k2 := binary.Uvarint(b)
		if k2 <= 0 {
			return nil, fmt.Errorf("%w: bad length", ErrFormat)
		}
		b = b[k2:]
		if e.Kind != keys.KindData && e.Kind != keys.KindTree {
			return nil, fmt.Errorf("%w: entry %d has kind %s", ErrFormat, i, e.Kind)
		}
		if off < end || length < keys.Overhead || off > uint64(dataLen) || length > uint64(dataLen)-off {
			return nil, fmt.Errorf("%w: entry %d out of range", ErrFormat, i)
		}
		e.Offset, e.Length = uint32(off), uint32(length)
		end = off + length
		entries = append(entries, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in trailer", ErrFormat, len(b))
	}
	return entries, nil
}

// Footer is the parsed fixed footer of a pack.
type Footer struct {
	TrailerID  keys.ID
	TrailerLen uint32
}

// DecodeFooter parses the last FooterLen bytes of a pack of size packSize.
func DecodeFooter(b []byte, packSize int64) (Footer, error) {
	var f Footer
	if len(b) != FooterLen || string(b[FooterLen-4:]) != footerMagic {
		return f, fmt.Errorf("%w: bad footer", ErrFormat)
	}
	copy(f.TrailerID[:], b[:32])
	f.TrailerLen = binary.LittleEndian.Uint32(b[32:36])
	if int64(f.TrailerLen)+FooterLen > packSize || f.TrailerLen < keys.Overhead {
		return f, fmt.Errorf("%w: trailer length %d does not fit a pack of %d bytes", ErrFormat, f.TrailerLen, packSize)
	}
	return f, nil
}

// OpenTrailer authenticates and parses the sealed trailer of a pack of size
// packSize, given its footer.
func OpenTrailer(sealer *keys.Sealer, f Footer, sealed []byte, packSize int64) ([]Entry, error) {
	plain, err := sealer.Open(nil, keys.KindTrailer, f.TrailerID, sealed)
	if err != nil {
		return nil, err
	}
	return DecodeTrailer(plain, uint32(packSize-FooterLen-int64(f.TrailerLen)))
}

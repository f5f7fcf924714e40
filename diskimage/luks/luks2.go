package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// LUKS2 binary header layout (big endian).
const (
	v2CsumOffset = 448
	v2CsumLen    = 64
	v2BinaryLen  = 4096
)

// v2Sizes are the sizes a LUKS2 header (binary header plus JSON area) may
// have; the secondary header follows the primary at that offset.
var v2Sizes = []int64{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// readV2 reads and parses a LUKS2 header whose first 4096 bytes are b. A
// primary header whose checksum fails gives way to the secondary one.
func readV2(r io.ReaderAt, b []byte) (*Header, error) {
	h, err := readV2At(r, b, 0)
	if err == nil {
		return h, nil
	}
	for _, off := range v2Sizes {
		sb := make([]byte, v2BinaryLen)
		if rerr := readAt(r, sb, off); rerr != nil || !bytes.HasPrefix(sb, []byte("SKUL\xba\xbe")) {
			continue
		}
		if h2, err2 := readV2At(r, sb, off); err2 == nil {
			return h2, nil
		}
	}
	return nil, err
}

// readV2At reads the LUKS2 header at off, whose binary header is b, checks
// its checksum and parses its JSON metadata.
func readV2At(r io.ReaderAt, b []byte, off int64) (*Header, error) {
	size := int64(binary.BigEndian.Uint64(b[8:]))
	if !slices.Contains(v2Sizes, size) {
		return nil, fmt.Errorf("%w: LUKS2 header of %d bytes", ErrFormat, size)
	}
	if alg := cstring(b[72:104]); alg != "sha256" {
		return nil, fmt.Errorf("%w: header checksum %q", ErrUnsupported, alg)
	}
	all := make([]byte, size)
	if err := readAt(r, all, off); err != nil {
		return nil, fmt.Errorf("read LUKS2 header: %w", err)
	}
	want := bytes.Clone(all[v2CsumOffset : v2CsumOffset+sha256.Size])
	clear(all[v2CsumOffset : v2CsumOffset+v2CsumLen])
	if sum := sha256.Sum256(all); !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("%w: LUKS2 header checksum mismatch", ErrFormat)
	}
	js := all[v2BinaryLen:]
	if i := bytes.IndexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	return parseV2JSON(js, cstring(b[168:208]))
}

// v2Metadata is the part of LUKS2's JSON metadata this package reads.
type v2Metadata struct {
	Keyslots map[string]struct {
		Type    string `json:"type"`
		KeySize int    `json:"key_size"`
		AF      struct {
			Type    string `json:"type"`
			Stripes int    `json:"stripes"`
			Hash    string `json:"hash"`
		} `json:"af"`
		Area struct {
			Type       string     `json:"type"`
			Offset     jsonUint64 `json:"offset"`
			Size       jsonUint64 `json:"size"`
			Encryption string     `json:"encryption"`
			KeySize    int        `json:"key_size"`
		} `json:"area"`
		KDF struct {
			Type       string `json:"type"`
			Hash       string `json:"hash"`
			Iterations int    `json:"iterations"`
			Time       int    `json:"time"`
			Memory     int    `json:"memory"`
			CPUs       int    `json:"cpus"`
			Salt       string `json:"salt"`
		} `json:"kdf"`
		Priority *int `json:"priority"`
	} `json:"keyslots"`
	Segments map[string]struct {
		Type       string     `json:"type"`
		Offset     jsonUint64 `json:"offset"`
		Size       string     `json:"size"`
		IVTweak    jsonUint64 `json:"iv_tweak"`
		Encryption string     `json:"encryption"`
		SectorSize int        `json:"sector_size"`
	} `json:"segments"`
	Digests map[string]struct {
		Type       string   `json:"type"`
		Keyslots   []string `json:"keyslots"`
		Segments   []string `json:"segments"`
		Hash       string   `json:"hash"`
		Iterations int      `json:"iterations"`
		Salt       string   `json:"salt"`
		Digest     string   `json:"digest"`
	} `json:"digests"`
}

// jsonUint64 is an unsigned integer that LUKS2 writes as a JSON string.
type jsonUint64 uint64

func (u *jsonUint64) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return err
	}
	*u = jsonUint64(v)
	return nil
}

// parseV2JSON parses LUKS2's JSON metadata.
func parseV2JSON(js []byte, uuid string) (*Header, error) {
	var m v2Metadata
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%w: LUKS2 metadata: %w", ErrFormat, err)
	}
	if len(m.Segments) != 1 {
		return nil, fmt.Errorf("%w: %d data segments (a reencryption in progress?)", ErrUnsupported, len(m.Segments))
	}
	h := &Header{Version: 2, UUID: uuid}
	var segID string
	for id, s := range m.Segments {
		if s.Type != "crypt" {
			return nil, fmt.Errorf("%w: segment type %q", ErrUnsupported, s.Type)
		}
		if s.SectorSize < sectorSize || s.SectorSize > 4096 || s.SectorSize&(s.SectorSize-1) != 0 {
			return nil, fmt.Errorf("%w: sector size %d", ErrFormat, s.SectorSize)
		}
		segID = id
		h.cipher = s.Encryption
		h.dataOffset = int64(s.Offset)
		h.sectorSize = s.SectorSize
		h.ivTweak = uint64(s.IVTweak)
		h.dataSize = -1
		if s.Size != "dynamic" {
			n, err := strconv.ParseInt(s.Size, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: segment size %q", ErrFormat, s.Size)
			}
			h.dataSize = n
		}
	}
	for _, d := range m.Digests {
		if d.Type != "pbkdf2" || !slices.Contains(d.Segments, segID) {
			continue
		}
		salt, err1 := base64.StdEncoding.DecodeString(d.Salt)
		value, err2 := base64.StdEncoding.DecodeString(d.Digest)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: digest salt or value is not base64", ErrFormat)
		}
		h.digests = append(h.digests, keyDigest{hash: d.Hash, iterations: d.Iterations, salt: salt, value: value, slots: d.Keyslots})
	}
	ids := make([]string, 0, len(m.Keyslots))
	for id := range m.Keyslots {
		ids = append(ids, id)
	}
	// Higher priority first (2 high, 1 normal, 0 ignore: tried last),
	// then by ID.
	prio := func(id string) int {
		if p := m.Keyslots[id].Priority; p != nil {
			return *p
		}
		return 1
	}
	slices.SortFunc(ids, func(a, b string) int {
		if pa, pb := prio(a), prio(b); pa != pb {
			return pb - pa
		}
		na, _ := strconv.Atoi(a)
		nb, _ := strconv.Atoi(b)
		return na - nb
	})
	for _, id := range ids {
		k := m.Keyslots[id]
		if k.Type != "luks2" || k.AF.Type != "luks1" || k.Area.Type != "raw" {
			continue
		}
		salt, err := base64.StdEncoding.DecodeString(k.KDF.Salt)
		if err != nil {
			return nil, fmt.Errorf("%w: key slot %s: salt is not base64", ErrFormat, id)
		}
		slot := keySlot{
			id:       id,
			keyBytes: k.KeySize,
			kdf: kdf{typ: k.KDF.Type, hash: k.KDF.Hash, iterations: k.KDF.Iterations,
				time: k.KDF.Time, memoryKiB: k.KDF.Memory, threads: k.KDF.CPUs, salt: salt},
			stripes:    k.AF.Stripes,
			afHash:     k.AF.Hash,
			areaOffset: int64(k.Area.Offset),
			areaCipher: k.Area.Encryption,
			areaKey:    k.Area.KeySize,
		}
		if err := slot.check(); err != nil {
			return nil, err
		}
		if uint64(slot.stripes*slot.keyBytes) > uint64(k.Area.Size) {
			return nil, fmt.Errorf("%w: key slot %s: %d stripes of %d bytes exceed its area of %d bytes", ErrFormat, id, slot.stripes, slot.keyBytes, k.Area.Size)
		}
		h.slots = append(h.slots, slot)
	}
	for _, s := range h.slots {
		if h.keyBytes == 0 {
			h.keyBytes = s.keyBytes
		}
	}
	return h, nil
}

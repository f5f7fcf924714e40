package pack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

func testKeys() *keys.KeySet {
	ks := &keys.KeySet{Version: 1, Vault: "pack-test"}
	for i := range 32 {
		ks.IDKey[i] = byte(i)
		ks.DataKey[i] = byte(0x40 + i)
		ks.IndexKey[i] = byte(0x60 + i)
		ks.ChunkerSeed[i] = byte(0x80 + i)
	}
	return ks
}

type blob struct {
	kind  keys.Kind
	id    keys.ID
	plain []byte
}

// buildPack seals blobs into a pack and returns what Finish returns.
func buildPack(t *testing.T, ks *keys.KeySet, blobs []blob) (keys.ID, []byte, []pack.Entry) {
	t.Helper()
	s := ks.NewSealer()
	w := pack.NewWriter()
	size := 0
	for i, b := range blobs {
		payload := pack.EncodePayload(nil, b.plain, pack.CompressFast)
		sealed := s.Seal(nil, b.kind, b.id, payload)
		w.Add(b.kind, b.id, sealed)
		size += len(sealed)
		if w.Count() != i+1 || w.Size() != size {
			t.Fatalf("after %d blobs: Count %d, Size %d; want %d, %d", i+1, w.Count(), w.Size(), i+1, size)
		}
	}
	name, b, entries := w.Finish(ks, ks.NewIndexSealer())
	return name, bytes.Clone(b), entries
}

func TestPackRoundTrip(t *testing.T) {
	ks := testKeys()
	s := ks.NewSealer()
	var blobs []blob
	for i, n := range []int{0, 1, 100, 4096, 200 << 10, 1 << 20} {
		plain := testfiles.RandomBytes(n, uint64(i))
		if i%2 == 1 {
			plain = bytes.Repeat([]byte("compressible "), n/13+1)[:n]
		}
		kind := keys.KindData
		if i == 2 {
			kind = keys.KindTree
		}
		blobs = append(blobs, blob{kind, ks.ID(kind, plain), plain})
	}

	name, b, entries := buildPack(t, ks, blobs)

	if want := keys.ID(blake3.Sum256(b)); name != want || pack.Name(b) != want {
		t.Errorf("pack name %s, Name(bytes) %s; want BLAKE3 of the bytes %s", name.Short(), pack.Name(b).Short(), want.Short())
	}
	if len(entries) != len(blobs) {
		t.Fatalf("Finish returned %d entries for %d blobs", len(entries), len(blobs))
	}
	var off uint32
	for i, e := range entries {
		if e.Kind != blobs[i].kind || e.ID != blobs[i].id || e.Offset != off || e.Length < keys.Overhead {
			t.Errorf("entry %d = %+v; want kind %s, offset %d", i, e, blobs[i].kind, off)
		}
		off += e.Length
	}

	// Parse the pack the way a reader does: footer, trailer, blobs.
	size := int64(len(b))
	f, err := pack.DecodeFooter(b[size-pack.FooterLen:], size)
	if err != nil {
		t.Fatalf("DecodeFooter: %v", err)
	}
	if int64(off)+int64(f.TrailerLen)+pack.FooterLen != size {
		t.Errorf("blobs (%d) + trailer (%d) + footer (%d) != pack size %d", off, f.TrailerLen, pack.FooterLen, size)
	}
	if f.TrailerID != ks.ID(keys.KindTrailer, pack.EncodeTrailer(entries)) {
		t.Errorf("footer names trailer %s, want the keyed hash of the trailer", f.TrailerID.Short())
	}
	trailer := b[size-pack.FooterLen-int64(f.TrailerLen) : size-pack.FooterLen]
	// Trailers are sealed under the index key, so that writers can
	// deduplicate without the data key.
	meta := ks.NewIndexSealer()
	if _, err := pack.OpenTrailer(s, f, trailer, size); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("trailer opened with the data key: err = %v, want ErrAuth", err)
	}
	got, err := pack.OpenTrailer(meta, f, trailer, size)
	if err != nil {
		t.Fatalf("OpenTrailer: %v", err)
	}
	if !reflect.DeepEqual(got, entries) {
		t.Errorf("trailer entries differ from Finish's:\n got %+v\nwant %+v", got, entries)
	}
	for i, e := range got {
		payload, err := s.Open(nil, e.Kind, e.ID, b[e.Offset:e.Offset+e.Length])
		if err != nil {
			t.Fatalf("blob %d: Open: %v", i, err)
		}
		plain, err := pack.DecodePayload(nil, payload, 4<<20)
		if err != nil {
			t.Fatalf("blob %d: DecodePayload: %v", i, err)
		}
		if !bytes.Equal(plain, blobs[i].plain) {
			t.Errorf("blob %d: content differs", i)
		}
	}

	// A damaged trailer does not open; another key set cannot open it.
	bad := bytes.Clone(trailer)
	bad[len(bad)/2] ^= 1
	if _, err := pack.OpenTrailer(meta, f, bad, size); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("damaged trailer: err = %v, want ErrAuth", err)
	}
	other := testKeys()
	other.IndexKey[0] ^= 1
	if _, err := pack.OpenTrailer(other.NewIndexSealer(), f, trailer, size); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("trailer opened with another key: err = %v, want ErrAuth", err)
	}
}

func TestEmptyPack(t *testing.T) {
	ks := testKeys()
	name, b, entries := buildPack(t, ks, nil)
	if len(entries) != 0 || name != pack.Name(b) {
		t.Fatalf("empty pack: %d entries, name %s", len(entries), name.Short())
	}
	f, err := pack.DecodeFooter(b[len(b)-pack.FooterLen:], int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pack.OpenTrailer(ks.NewIndexSealer(), f, b[:len(b)-pack.FooterLen], int64(len(b)))
	if err != nil || len(got) != 0 {
		t.Fatalf("OpenTrailer of an empty pack = %v, %v", got, err)
	}
}

func TestWriterReset(t *testing.T) {
	ks := testKeys()
	s := ks.NewSealer()
	w := pack.NewWriter()
	w.Add(keys.KindData, keys.ID{1}, s.Seal(nil, keys.KindData, keys.ID{1}, []byte{0, 'a'}))
	first, b1, _ := w.Finish(ks, ks.NewIndexSealer())
	b1 = bytes.Clone(b1) // Finish's bytes belong to the writer until Reset
	w.Reset()
	if w.Size() != 0 || w.Count() != 0 {
		t.Fatalf("after Reset: Size %d, Count %d", w.Size(), w.Count())
	}
	w.Add(keys.KindData, keys.ID{2}, s.Seal(nil, keys.KindData, keys.ID{2}, []byte{0, 'b'}))
	second, b2, entries := w.Finish(ks, ks.NewIndexSealer())
	if first == second || bytes.Equal(b1, b2) {
		t.Fatalf("a reused writer produced the same pack")
	}
	if len(entries) != 1 || entries[0].ID != (keys.ID{2}) || entries[0].Offset != 0 {
		t.Errorf("reused writer entries = %+v, want only the new blob at offset 0", entries)
	}
}

// trailerBytes hand-encodes a trailer, to make ones EncodeTrailer would not.
func trailerBytes(count uint64, entries ...[3]uint64) []byte {
	b := []byte("AZK1")
	b = binary.AppendUvarint(b, count)
	for _, e := range entries {
		b = append(b, byte(e[0]))
		b = append(b, make([]byte, 32)...)
		b = binary.AppendUvarint(b, e[1])
		b = binary.AppendUvarint(b, e[2])
	}
	return b
}

func TestDecodeTrailer(t *testing.T) {
	const dataLen = 1000
	valid := []pack.Entry{
		{Kind: keys.KindData, ID: keys.ID{1}, Offset: 0, Length: 100},
		{Kind: keys.KindTree, ID: keys.ID{2}, Offset: 100, Length: keys.Overhead},
		{Kind: keys.KindData, ID: keys.ID{3}, Offset: 500, Length: 500}, // gap before, ends at dataLen
	}
	got, err := pack.DecodeTrailer(pack.EncodeTrailer(valid), dataLen)
	if err != nil || !reflect.DeepEqual(got, valid) {
		t.Fatalf("DecodeTrailer(EncodeTrailer(x)) = %+v, %v", got, err)
	}
	if got, err := pack.DecodeTrailer(pack.EncodeTrailer(nil), 0); err != nil || len(got) != 0 {
		t.Errorf("empty trailer = %v, %v", got, err)
	}

	data, tree := uint64(keys.KindData), uint64(keys.KindTree)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("AZK2"), pack.EncodeTrailer(valid)[4:]...)},
		{"no count", []byte("AZK1")},
		{"count beyond input", trailerBytes(2, [3]uint64{data, 0, 100})},
		{"huge count", trailerBytes(1 << 62)},
		{"truncated", pack.EncodeTrailer(valid)[:40]},
		{"trailing byte", append(pack.EncodeTrailer(valid), 0)},
		{"index kind", trailerBytes(1, [3]uint64{uint64(keys.KindIndex), 0, 100})},
		{"trailer kind", trailerBytes(1, [3]uint64{uint64(keys.KindTrailer), 0, 100})},
		{"kind 0", trailerBytes(1, [3]uint64{0, 0, 100})},
		{"shorter than a sealed blob", trailerBytes(1, [3]uint64{data, 0, keys.Overhead - 1})},
		{"zero length", trailerBytes(1, [3]uint64{data, 0, 0})},
		{"overlapping", trailerBytes(2, [3]uint64{data, 0, 100}, [3]uint64{tree, 99, 100})},
		{"out of order", trailerBytes(2, [3]uint64{data, 200, 100}, [3]uint64{tree, 0, 100})},
		{"beyond data", trailerBytes(1, [3]uint64{data, 901, 100})},
		{"offset beyond 4 GiB", trailerBytes(1, [3]uint64{data, 1 << 32, 100})},
		// off + length wraps around 2^64 to a small number.
		{"offset+length overflows", trailerBytes(1, [3]uint64{data, 1<<64 - keys.Overhead, keys.Overhead + 10})},
		{"length overflows", trailerBytes(1, [3]uint64{data, 10, 1<<64 - 5})},
	} {
		entries, err := pack.DecodeTrailer(tc.b, dataLen)
		if !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: DecodeTrailer = %+v, %v; want ErrFormat", tc.name, entries, err)
		}
	}
}

func TestDecodeFooter(t *testing.T) {
	footer := func(tlen uint32, magic string) []byte {
		b := bytes.Repeat([]byte{7}, 32)
		b = binary.LittleEndian.AppendUint32(b, tlen)
		return append(b, magic...)
	}
	f, err := pack.DecodeFooter(footer(100, "AZP1"), 140)
	if err != nil || f.TrailerLen != 100 || f.TrailerID != keys.ID(bytes.Repeat([]byte{7}, 32)) {
		t.Fatalf("DecodeFooter(valid) = %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		size int64
	}{
		{"bad magic", footer(100, "AZP2"), 1000},
		{"short", footer(100, "AZP1")[1:], 1000},
		{"long", append([]byte{0}, footer(100, "AZP1")...), 1000},
		{"trailer larger than pack", footer(100, "AZP1"), 139},
		{"trailer shorter than a sealed object", footer(keys.Overhead-1, "AZP1"), 1000},
		{"max trailer length", footer(1<<32-1, "AZP1"), 1000},
		{"negative pack size", footer(100, "AZP1"), -1},
	} {
		if _, err := pack.DecodeFooter(tc.b, tc.size); !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", tc.name, err)
		}
	}
}

func TestPayloadCompression(t *testing.T) {
	text := []byte(strings.Repeat("All work and no play makes Jack a dull boy. ", 5000)) // 220 KB
	random := testfiles.RandomBytes(1<<20, 99)
	for _, tc := range []struct {
		name     string
		plain    []byte
		encoding byte
	}{
		{"empty", nil, 0},
		{"one byte", []byte{'x'}, 0},
		{"short text", text[:300], 1},
		{"long text", text, 1},
		{"small random", random[:1000], 0},
		{"random 1 MiB (sampled)", random, 0},
		{"zeros 4 MiB", make([]byte, 4<<20), 1},
	} {
		for _, z := range pack.PayloadCodecs {
			testPayloadEncoding(t, z, tc.name, tc.plain, tc.encoding)
		}
	}
}

// testPayloadEncoding checks that codec z encodes plain as encoding (raw 0
// or zstd 1), appending to a dst, and decodes it back.
func testPayloadEncoding(t *testing.T, z pack.PayloadCodec, name string, plain []byte, encoding byte) {
	t.Helper()
	name = z.Name + ": " + name
	payload := z.EncodePayload(nil, plain, pack.CompressFast)
	if len(payload) == 0 || payload[0] != encoding {
		t.Errorf("%s: encoding byte %v, want %d", name, payload[:min(1, len(payload))], encoding)
		return
	}
	switch encoding {
	case 0:
		if !bytes.Equal(payload[1:], plain) {
			t.Errorf("%s: raw payload is not the plaintext", name)
		}
	case 1:
		if len(payload) >= len(plain) {
			t.Errorf("%s: compressed payload %d bytes for %d of plaintext", name, len(payload), len(plain))
		}
	}
	back, err := z.DecodePayload(nil, payload, 4<<20)
	if err != nil || !bytes.Equal(back, plain) {
		t.Errorf("%s: DecodePayload = %d bytes, %v; want the plaintext back", name, len(back), err)
	}
	// Both append to dst.
	prefix := []byte("dst")
	withPrefix := z.EncodePayload(bytes.Clone(prefix), plain, pack.CompressFast)
	if !bytes.Equal(withPrefix[:3], prefix) || !bytes.Equal(withPrefix[3:], payload) {
		t.Errorf("%s: EncodePayload with a dst does not append the same payload", name)
	}
	out, err := z.DecodePayload(bytes.Clone(prefix), payload, 4<<20)
	if err != nil || !bytes.Equal(out, append(bytes.Clone(prefix), plain...)) {
		t.Errorf("%s: DecodePayload with a dst = %d bytes, %v", name, len(out), err)
	}
}

func TestDecodePayloadRejects(t *testing.T) {
	zeros := pack.EncodePayload(nil, make([]byte, 1<<20), pack.CompressFast)
	if zeros[0] != 1 {
		t.Fatalf("1 MiB of zeros was not compressed")
	}
	raw := pack.EncodePayload(nil, testfiles.RandomBytes(1000, 1), pack.CompressFast)
	corrupt := bytes.Clone(zeros)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, tc := range []struct {
		name    string
		payload []byte
		maxLen  int
	}{
		{"empty", nil, 100},
		{"unknown encoding", []byte{2, 'a'}, 100},
		{"encoding 255", []byte{255}, 100},
		{"raw beyond maxLen", raw, 999},
		{"compressed beyond maxLen", zeros, 1<<20 - 1},
		{"compressed, tiny maxLen", zeros, 0},
		{"not zstd", []byte{1, 'n', 'o', 't', ' ', 'z', 's', 't', 'd'}, 100},
		{"truncated zstd", zeros[:len(zeros)/2], 4 << 20},
		{"corrupt zstd", corrupt, 4 << 20},
		{"skippable frame", []byte{1, 0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, 100},
		{"legacy zstd v0.7 magic", []byte{1, 0x27, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, 100},
	} {
		for _, z := range pack.PayloadCodecs {
			if out, err := z.DecodePayload(nil, tc.payload, tc.maxLen); !errors.Is(err, pack.ErrFormat) {
				t.Errorf("%s: %s: DecodePayload = %d bytes, %v; want ErrFormat", z.Name, tc.name, len(out), err)
			}
		}
	}
	// The limits are inclusive.
	for _, z := range pack.PayloadCodecs {
		if out, err := z.DecodePayload(nil, zeros, 1<<20); err != nil || len(out) != 1<<20 {
			t.Errorf("%s: compressed at exactly maxLen: %d bytes, %v", z.Name, len(out), err)
		}
		if out, err := z.DecodePayload(nil, raw, 1000); err != nil || len(out) != 1000 {
			t.Errorf("%s: raw at exactly maxLen: %d bytes, %v", z.Name, len(out), err)
		}
	}
}

// TestRegap: a pack made over with a gap holds the same blobs, under
// another name, and decodes like any pack.
func TestRegap(t *testing.T) {
	ks := testKeys()
	sealer := ks.NewSealer()
	w := pack.NewWriter()
	var sealed [][]byte
	for i := range 3 {
		plain := testfiles.RandomBytes(1000+i, uint64(i))
		id := ks.ID(keys.KindData, plain)
		b := sealer.Seal(nil, keys.KindData, id, pack.EncodePayload(nil, plain, pack.CompressFast))
		sealed = append(sealed, b)
		w.Add(keys.KindData, id, b)
	}
	first, _, _ := w.Finish(ks, ks.NewIndexSealer())
	gap := []byte("0123456789abcdef")
	name, b, entries := w.Regap(ks, ks.NewIndexSealer(), gap)
	if name == first || name != pack.Name(b) {
		t.Fatalf("regapped pack named %s (first %s, content %s)", name.Short(), first.Short(), pack.Name(b).Short())
	}
	f, err := pack.DecodeFooter(b[len(b)-pack.FooterLen:], int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pack.OpenTrailer(ks.NewIndexSealer(), f, b[len(b)-pack.FooterLen-int(f.TrailerLen):len(b)-pack.FooterLen], int64(len(b)))
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("trailer: %v, %v; want %v", got, err, entries)
	}
	if entries[0].Offset != uint32(len(gap)) {
		t.Errorf("first blob at %d, want after the gap", entries[0].Offset)
	}
	for i, e := range entries {
		if !bytes.Equal(b[e.Offset:e.Offset+e.Length], sealed[i]) {
			t.Errorf("blob %d moved wrongly", i)
		}
	}
}

// TestPayloadSampling: a chunk whose middle is incompressible but whose
// rest compresses (an archive with stored and deflated members by turns)
// is compressed; one sample in the middle stored it raw.
func TestPayloadSampling(t *testing.T) {
	text := []byte(strings.Repeat("All work and no play makes Jack a dull boy. ", 10000))[:400<<10]
	plain := append(append(bytes.Clone(text), testfiles.RandomBytes(200<<10, 7)...), text...)
	for _, z := range pack.PayloadCodecs {
		payload := z.EncodePayload(nil, plain, pack.CompressFast)
		if payload[0] != 1 || len(payload) > len(plain)/2 {
			t.Errorf("%s: payload of %d bytes, encoding %d, for %d bytes of which 200 KiB in the middle are random: want it compressed", z.Name, len(payload), payload[0], len(plain))
		}
		if back, err := z.DecodePayload(nil, payload, len(plain)); err != nil || !bytes.Equal(back, plain) {
			t.Errorf("%s: DecodePayload = %d bytes, %v; want the plaintext back", z.Name, len(back), err)
		}
	}
}

// TestPayloadNoChecksum: zstd frames carry no checksum of their own (the
// seal authenticates the payload), and payloads written with one by the
// starting binary's writer (pure-Go zstd, fastest level, checksum, lower
// encoder memory) still decode with every codec.
func TestPayloadNoChecksum(t *testing.T) {
	plain := []byte(strings.Repeat("compressible text, ", 1000))
	old, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true), zstd.WithLowerEncoderMem(true))
	if err != nil {
		t.Fatal(err)
	}
	withSum := old.EncodeAll(plain, []byte{1})
	var h zstd.Header
	if err := h.Decode(withSum[1:]); err != nil || !h.HasCheckSum {
		t.Fatalf("the old writer's frame: %v, checksum %v", err, h.HasCheckSum)
	}
	for _, z := range pack.PayloadCodecs {
		for _, c := range []pack.Compression{pack.CompressFast, pack.CompressSmall} {
			payload := z.EncodePayload(nil, plain, c)
			if err := h.Decode(payload[1:]); err != nil {
				t.Fatal(err)
			}
			if h.HasCheckSum {
				t.Errorf("%s: the zstd frame of a %s payload carries a checksum", z.Name, c)
			}
			if !h.HasFCS || h.FrameContentSize != uint64(len(plain)) {
				t.Errorf("%s: the zstd frame of a %s payload states its size as %d (%v), want %d", z.Name, c, h.FrameContentSize, h.HasFCS, len(plain))
			}
		}
		if back, err := z.DecodePayload(nil, withSum, len(plain)); err != nil || !bytes.Equal(back, plain) {
			t.Errorf("%s: DecodePayload of a payload with a checksum = %d bytes, %v", z.Name, len(back), err)
		}
	}
}

// TestPayloadCodecsInterchange: the C and pure-Go codecs write the same
// format: what one encodes, at every Compression, the other decodes, into
// a caller's buffer with room (no reallocation) or without.
func TestPayloadCodecsInterchange(t *testing.T) {
	if len(pack.PayloadCodecs) < 2 {
		t.Skip("one codec in a build without cgo")
	}
	text := []byte(strings.Repeat("All work and no play makes Jack a dull boy. ", 30000))
	mixed := append(append(bytes.Clone(text[:300<<10]), testfiles.RandomBytes(300<<10, 3)...), text[:300<<10]...)
	inputs := map[string][]byte{
		"empty": nil, "short text": text[:100], "text 1.3 MB": text, "zeros 4 MiB": make([]byte, 4<<20),
		"random 64 KiB": testfiles.RandomBytes(64<<10, 5), "text, random, text": mixed,
	}
	for name, plain := range inputs {
		for _, enc := range pack.PayloadCodecs {
			for _, c := range []pack.Compression{pack.CompressFast, pack.CompressSmall} {
				payload := enc.EncodePayload(nil, plain, c)
				for _, dec := range pack.PayloadCodecs {
					// A frame stating no size (the Go encoder's, below 256
					// bytes) is decoded into room for its window (1 KiB).
					buf := make([]byte, 3, 3+max(len(plain), 1<<10))
					out, err := dec.DecodePayload(buf, payload, 4<<20)
					if err != nil || !bytes.Equal(out[3:], plain) {
						t.Errorf("%s at %s by %s, read by %s: %d bytes, %v", name, c, enc.Name, dec.Name, len(out), err)
						continue
					}
					if len(plain) > 0 && &out[0] != &buf[0] {
						t.Errorf("%s at %s by %s, read by %s: decoded into a new buffer although dst had room", name, c, enc.Name, dec.Name)
					}
				}
			}
		}
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range []pack.Compression{pack.CompressSmall, pack.CompressFast, pack.CompressBalanced} {
		if got, err := pack.ParseCompression(c.String()); err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	for _, bad := range []string{"", "max", "Default", "default", "off"} {
		if _, err := pack.ParseCompression(bad); err == nil {
			t.Errorf("ParseCompression(%q) accepted", bad)
		}
	}
}

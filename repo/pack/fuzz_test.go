package pack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

func FuzzDecodeTrailer(f *testing.F) {
	f.Add(pack.EncodeTrailer(nil), uint32(0))
	f.Add(pack.EncodeTrailer([]pack.Entry{{Kind: keys.KindData, ID: keys.ID{1}, Offset: 0, Length: 100}}), uint32(100))
	f.Add(pack.EncodeTrailer([]pack.Entry{
		{Kind: keys.KindData, ID: keys.ID{1}, Offset: 0, Length: 100},
		{Kind: keys.KindTree, ID: keys.ID{2}, Offset: 200, Length: 1 << 20},
	}), uint32(16<<20))
	f.Add(trailerBytes(1, [3]uint64{1, 1<<64 - keys.Overhead, keys.Overhead + 10}), uint32(1000))
	f.Add([]byte("AZK1\xff\xff\xff\xff\x0f"), uint32(1<<32-1))

	f.Fuzz(func(t *testing.T, b []byte, dataLen uint32) {
		entries, err := pack.DecodeTrailer(b, dataLen)
		if err != nil {
			if !errors.Is(err, pack.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if len(entries) > len(b)/35 {
			t.Fatalf("%d entries from %d bytes", len(entries), len(b))
		}
		var end uint64
		for i, e := range entries {
			if e.Kind != keys.KindData && e.Kind != keys.KindTree {
				t.Fatalf("entry %d has kind %s", i, e.Kind)
			}
			if uint64(e.Offset) < end || e.Length < keys.Overhead || uint64(e.Offset)+uint64(e.Length) > uint64(dataLen) {
				t.Fatalf("entry %d (%d+%d) overlaps or exceeds %d bytes of data", i, e.Offset, e.Length, dataLen)
			}
			end = uint64(e.Offset) + uint64(e.Length)
		}
		back, err := pack.DecodeTrailer(pack.EncodeTrailer(entries), dataLen)
		if err != nil {
			t.Fatalf("re-encoded trailer does not decode: %v", err)
		}
		if len(back) != len(entries) || (len(back) > 0 && !reflect.DeepEqual(back, entries)) {
			t.Fatalf("round trip changed the entries")
		}
	})
}

func FuzzDecodeFooter(f *testing.F) {
	footer := func(id byte, tlen uint32) []byte {
		b := bytes.Repeat([]byte{id}, 32)
		b = binary.LittleEndian.AppendUint32(b, tlen)
		return append(b, "AZP1"...)
	}
	f.Add(footer(1, 100), int64(1000))
	f.Add(footer(0, keys.Overhead), int64(keys.Overhead+pack.FooterLen))
	f.Add(footer(9, 1<<32-1), int64(1<<40))
	f.Add(footer(1, 100), int64(139))
	f.Add([]byte("AZP1"), int64(4))

	f.Fuzz(func(t *testing.T, b []byte, packSize int64) {
		foot, err := pack.DecodeFooter(b, packSize)
		if err != nil {
			if !errors.Is(err, pack.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if foot.TrailerLen < keys.Overhead || int64(foot.TrailerLen)+pack.FooterLen > packSize {
			t.Fatalf("trailer of %d bytes accepted in a pack of %d", foot.TrailerLen, packSize)
		}
		// The footer is fixed-size: its encoding is the input.
		again := binary.LittleEndian.AppendUint32(bytes.Clone(foot.TrailerID[:]), foot.TrailerLen)
		again = append(again, "AZP1"...)
		if !bytes.Equal(again, b) {
			t.Fatalf("footer re-encodes to %x, input %x", again, b)
		}
	})
}

// FuzzDecodePayload decodes the same bytes with every codec of the build
// (C and pure-Go zstd in a cgo build): each either fails with ErrFormat or
// returns at most maxLen bytes that re-encode and decode back, and two
// codecs that both succeed return the same bytes. (They may disagree on
// acceptance: C zstd checks an old frame's checksum, which the pure-Go
// decoder skips because the seal authenticates the payload.)
func FuzzDecodePayload(f *testing.F) {
	f.Add(pack.EncodePayload(nil, nil, pack.CompressSmall))
	f.Add(pack.EncodePayload(nil, []byte("raw"), pack.CompressSmall))
	f.Add(pack.EncodePayload(nil, []byte(strings.Repeat("compress me ", 100)), pack.CompressSmall))
	f.Add(pack.EncodePayload(nil, make([]byte, 5<<20), pack.CompressSmall)) // beyond maxLen once decompressed
	for _, z := range pack.PayloadCodecs {
		f.Add(z.EncodePayload(nil, []byte(strings.Repeat("both codecs ", 30)), pack.CompressFast))
		f.Add(z.EncodePayload(nil, []byte(strings.Repeat("both codecs, small ", 30)), pack.CompressSmall))
	}
	f.Add(pack.EncodePayload(nil, []byte(strings.Repeat("decoded by steps, block by block ", 20000)), pack.CompressFast))
	f.Add([]byte{2, 0})
	f.Add([]byte{1, 0x28, 0xb5, 0x2f, 0xfd})

	const maxLen = 4 << 20
	f.Fuzz(func(t *testing.T, payload []byte) {
		var first []byte
		var firstBy string
		for _, z := range pack.PayloadCodecs {
			plain, err := z.DecodePayload(nil, payload, maxLen)
			if err != nil {
				if !errors.Is(err, pack.ErrFormat) {
					t.Fatalf("%s: error %v does not wrap ErrFormat", z.Name, err)
				}
				if plain != nil {
					t.Fatalf("%s: failed decode returned %d bytes", z.Name, len(plain))
				}
				continue
			}
			if len(plain) > maxLen {
				t.Fatalf("%s: decoded %d bytes, beyond maxLen %d", z.Name, len(plain), maxLen)
			}
			if payload[0] == 0 && !bytes.Equal(plain, payload[1:]) {
				t.Fatalf("%s: raw payload decoded to different bytes", z.Name)
			}
			if firstBy != "" && !bytes.Equal(plain, first) {
				t.Fatalf("%s decodes %d bytes, %s %d other bytes", z.Name, len(plain), firstBy, len(first))
			}
			first, firstBy = plain, z.Name
			// Decoded by steps into a buffer, the payload gives the same
			// bytes, each prefix handed out a prefix of them (or fails:
			// it takes one frame and nothing after it).
			var prefixes [][]byte
			stepped, err := z.DecodePayloadSteps(make([]byte, 0, 1), payload, maxLen, func(p []byte) { prefixes = append(prefixes, bytes.Clone(p)) })
			if err == nil && !bytes.Equal(stepped, plain) {
				t.Fatalf("%s: decoded by steps to %d bytes, at once to %d other bytes", z.Name, len(stepped), len(plain))
			}
			if err != nil && !errors.Is(err, pack.ErrFormat) {
				t.Fatalf("%s: error %v by steps does not wrap ErrFormat", z.Name, err)
			}
			for _, p := range prefixes {
				if !bytes.HasPrefix(plain, p) {
					t.Fatalf("%s: a prefix handed out by steps (%d bytes) is not the data's", z.Name, len(p))
				}
			}
			back, err := z.DecodePayload(nil, z.EncodePayload(nil, plain, pack.CompressSmall), maxLen)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("%s: re-encoded payload decodes to %d bytes, %v; want the %d bytes back", z.Name, len(back), err, len(plain))
			}
		}
	})
}

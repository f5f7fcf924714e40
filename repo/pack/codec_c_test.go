//go:build cgo && !race

package pack

import (
	"bytes"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
)

// TestCgoPayloadCodec: a cgo build writes payloads with C zstd, and
// encoding or decoding a chunk into a buffer with room allocates nothing:
// the codec's contexts are reused, not made per chunk. (Not under -race,
// whose sync.Pool drops entries at random.)
func TestCgoPayloadCodec(t *testing.T) {
	text := []byte(strings.Repeat("All work and no play makes Jack a dull boy. ", 20000))
	plain := append(append(bytes.Clone(text[:400<<10]), testfiles.RandomBytes(200<<10, 1)...), text[:400<<10]...)
	payload := EncodePayload(nil, plain, CompressBalanced)
	if want := encodePayload(cZstd, nil, plain, CompressBalanced); !bytes.Equal(payload, want) {
		t.Errorf("EncodePayload wrote %d bytes, C zstd %d: the cgo build does not use C zstd", len(payload), len(want))
	}
	enc := make([]byte, 0, 2*len(plain))
	dec := make([]byte, 0, len(plain))
	for _, c := range []Compression{CompressBalanced, CompressFast, CompressSmall} {
		if n := testing.AllocsPerRun(5, func() { enc = EncodePayload(enc[:0], plain, c) }); n != 0 {
			t.Errorf("%s: %.1f allocations per EncodePayload, want 0", c, n)
		}
		if n := testing.AllocsPerRun(5, func() {
			var err error
			if dec, err = DecodePayload(dec[:0], enc, len(plain)); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per DecodePayload, want 0", c, n)
		}
		if !bytes.Equal(dec, plain) {
			t.Errorf("%s: payload does not decode back", c)
		}
	}
}

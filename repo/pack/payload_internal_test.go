package pack

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
)

// countingCodec counts the frames a codec encodes.
type countingCodec struct {
	zstdCodec
	frames int
}

func (c *countingCodec) encode(dst, src []byte, level codecLevel) []byte {
	c.frames++
	return c.zstdCodec.encode(dst, src, level)
}

// allSamplesCompressible is compressible's guess from all sampleCount
// samples, as it was made before it learned to stop early.
func allSamplesCompressible(z zstdCodec, plain []byte) bool {
	if len(plain) <= sampleFrom {
		return true
	}
	size := 0
	for i := 1; i <= sampleCount; i++ {
		at := len(plain)*i/(sampleCount+1) - sampleLen/2
		size += len(z.encode(nil, plain[at:at+sampleLen], levelSample))
	}
	const all = sampleCount * sampleLen
	return size < all-all/64
}

// TestCompressibleStopsEarly: a chunk whose first sample compresses is
// judged on that one sample (it took four trials, about 0.2 s of CPU per GB
// of the bench corpus); incompressible data still takes all four; and on
// chunks mixing text and random runs the guess is the one all four samples
// give.
func TestCompressibleStopsEarly(t *testing.T) {
	text := []byte(strings.Repeat("All work and no play makes Jack a dull boy. ", 30000))[:1<<20]
	random := testfiles.RandomBytes(1<<20, 3)
	for _, pc := range PayloadCodecs {
		z := &countingCodec{zstdCodec: pc.z}
		if !compressible(z, text) || z.frames != 1 {
			t.Errorf("%s: text: compressible after %d trial frames, want true after 1", pc.Name, z.frames)
		}
		z.frames = 0
		if compressible(z, random) || z.frames != sampleCount {
			t.Errorf("%s: random: compressible after %d trial frames, want false after %d", pc.Name, z.frames, sampleCount)
		}
		if n := len(pc.z.encode(nil, random[:sampleLen], levelSample)); n > sampleBound {
			t.Errorf("%s: a random sample's frame takes %d bytes, beyond sampleBound %d", pc.Name, n, sampleBound)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range 200 {
			// Runs of text and random bytes, so that samples land in
			// either and some chunks are near the threshold.
			var plain []byte
			size := sampleFrom + rng.IntN(3<<20)
			for len(plain) < size {
				run := 1 + rng.IntN(96<<10)
				if rng.IntN(8) == 0 {
					plain = append(plain, text[:min(run, len(text))]...)
				} else {
					off := rng.IntN(len(random) - run)
					plain = append(plain, random[off:off+run]...)
				}
			}
			if got, want := compressible(pc.z, plain), allSamplesCompressible(pc.z, plain); got != want {
				t.Fatalf("%s: mix %d (%d bytes): compressible = %v, all four samples say %v", pc.Name, i, len(plain), got, want)
			}
		}
	}
}

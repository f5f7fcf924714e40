package pack

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A blob's payload (what is sealed) is one byte naming its encoding followed
// by the data.
const (
	payloadRaw  = 0
	payloadZstd = 1
)

// Compression is how hard EncodePayload compresses: a trade of CPU for
// stored bytes. Readers need not know it.
type Compression uint8

const (
	// CompressFast is zstd's fastest level, the default.
	CompressFast Compression = iota
	// CompressSmall is zstd's default level (about 3): on the bench corpus
	// about 4% fewer stored bytes than CompressFast for about 1.6 times
	// its compression CPU (1.6 times a whole first backup's CPU).
	CompressSmall
)

// compressionNames are the names ParseCompression takes, by Compression.
var compressionNames = [...]string{CompressFast: "fast", CompressSmall: "small"}

func (c Compression) String() string {
	if int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", c)
}

// ParseCompression returns the Compression named s ("fast" or "small").
func ParseCompression(s string) (Compression, error) {
	for c, name := range compressionNames {
		if s == name {
			return Compression(c), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q: want fast or small", s)
}

var (
	encoderOnce sync.Once
	encoders    [len(compressionNames)]*zstd.Encoder // by Compression
	decoder     *zstd.Decoder
	samples     = sync.Pool{New: func() any { return new([]byte) }}
)

func codecs() {
	encoderOnce.Do(func() {
		// EncodeAll runs at most "concurrency" encodings at once: one per
		// core. The sealed payload is authenticated (AEAD), so zstd's own
		// checksum would only cost an xxhash of every chunk written and read.
		// Entropy-coding the literals of blocks without matches (the
		// default level's habit) saves about 0.5% at the fastest level on the
		// bench corpus, for no measurable CPU.
		for c, level := range [...]zstd.EncoderLevel{CompressFast: zstd.SpeedFastest, CompressSmall: zstd.SpeedDefault} {
			var err error
			encoders[c], err = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true))
			if err != nil {
				panic("zstd encoder: " + err.Error()) // only fails on invalid options
			}
		}
		var err error
		decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20), zstd.IgnoreChecksum(true))
		if err != nil {
			panic("zstd decoder: " + err.Error())
		}
	})
}

// EncodePayload appends the payload for plain to dst: zstd-compressed as c
// says when that saves at least 1/32 of the size, raw otherwise.
// Incompressible data costs one fast trial on samples, not a full
// compression.
func EncodePayload(dst, plain []byte, c Compression) []byte {
	codecs()
	start := len(dst)
	if compressible(plain) {
		dst = append(dst, payloadZstd)
		dst = encoders[c].EncodeAll(plain, dst)
		if len(dst)-start-1 <= len(plain)-len(plain)/32 {
			return dst
		}
	}
	dst = append(dst[:start], payloadRaw)
	return append(dst, plain...)
}

// Above sampleFrom bytes, compressible tries sampleCount samples of
// sampleLen bytes spread over the input: one sample in the middle misjudges
// files such as archives whose members are stored and deflated by turns.
const (
	sampleFrom  = 128 << 10
	sampleCount = 4
	sampleLen   = 16 << 10
)

// compressible guesses from samples spread over plain, compressed at zstd's
// fastest level, whether zstd will save 1/64 of it; small inputs are always
// tried.
func compressible(plain []byte) bool {
	if len(plain) <= sampleFrom {
		return true
	}
	bp := samples.Get().(*[]byte)
	defer samples.Put(bp)
	out := (*bp)[:0]
	for i := 1; i <= sampleCount; i++ {
		at := len(plain)*i/(sampleCount+1) - sampleLen/2
		out = encoders[CompressFast].EncodeAll(plain[at:at+sampleLen], out)
	}
	*bp = out
	const all = sampleCount * sampleLen
	return len(out) < all-all/64
}

// DecodePayload appends the data of a payload to dst. maxLen bounds the
// decompressed size. With a nil dst, the data of a raw payload is returned
// as a subslice of payload, without a copy.
func DecodePayload(dst, payload []byte, maxLen int) ([]byte, error) {
	codecs()
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrFormat)
	}
	switch payload[0] {
	case payloadRaw:
		if len(payload)-1 > maxLen {
			return nil, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrFormat, len(payload)-1, maxLen)
		}
		if dst == nil {
			return payload[1:], nil
		}
		return append(dst, payload[1:]...), nil
	case payloadZstd:
		start := len(dst)
		out, err := decoder.DecodeAll(payload[1:], dst)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", ErrFormat, err)
		}
		if len(out)-start > maxLen {
			return nil, fmt.Errorf("%w: payload decompresses beyond %d bytes", ErrFormat, maxLen)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown payload encoding %d", ErrFormat, payload[0])
}

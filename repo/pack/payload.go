package pack

import (
	"fmt"
	"sync"
)

// A blob's payload (what is sealed) is one byte naming its encoding followed
// by the data.
const (
	payloadRaw  = 0
	payloadZstd = 1
)

// Compression is how hard EncodePayload compresses: a trade of CPU for
// stored bytes. Readers need not know it. The levels each is, with C zstd
// and with the pure-Go codec, are in docs/performance.md §2.2.
type Compression uint8

const (
	// CompressFast is the default: the least CPU (zstd's level 1). It
	// stores the bench corpus in about 5% more than restic does (at zstd's
	// default level) for about 56% of CompressBalanced's compression CPU,
	// and keeps a first backup faster than the binary issue 15 started
	// from (CompressBalanced made it 0.83-0.90x; docs/performance.md §2.2).
	CompressFast Compression = iota
	// CompressBalanced stores the bench corpus in no more than restic does
	// for as little CPU as measured: C zstd's level 3 with smaller match
	// tables.
	CompressBalanced
	// CompressSmall (C zstd's level 5) stores about 3% less than
	// CompressBalanced for about 2.5 times its compression CPU.
	CompressSmall
)

// compressionNames are the names ParseCompression takes, by Compression.
var compressionNames = [...]string{CompressFast: "fast", CompressBalanced: "balanced", CompressSmall: "small"}

func (c Compression) String() string {
	if int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", c)
}

// ParseCompression returns the Compression named s ("fast", "balanced" or
// "small").
func ParseCompression(s string) (Compression, error) {
	for c, name := range compressionNames {
		if s == name {
			return Compression(c), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q: want fast, balanced or small", s)
}

// samples holds the scratch buffers of compressible's trials.
var samples = sync.Pool{New: func() any { return new([]byte) }}

// EncodePayload appends the payload for plain to dst: zstd-compressed as c
// says when that saves at least 1/32 of the size, raw otherwise.
// Incompressible data costs one fast trial on samples, not a full
// compression.
func EncodePayload(dst, plain []byte, c Compression) []byte {
	return encodePayload(defaultCodec, dst, plain, c)
}

func encodePayload(z zstdCodec, dst, plain []byte, c Compression) []byte {
	start := len(dst)
	if compressible(z, plain) {
		dst = append(dst, payloadZstd)
		dst = z.encode(dst, plain, codecLevel(c))
		if len(dst)-start-1 <= len(plain)-len(plain)/32 {
			return dst
		}
	}
	dst = append(dst[:start], payloadRaw)
	return append(dst, plain...)
}

// Above sampleFrom bytes, compressible tries up to sampleCount samples of
// sampleLen bytes spread over the input: one sample in the middle misjudges
// files such as archives whose members are stored and deflated by turns.
const (
	sampleFrom  = 128 << 10
	sampleCount = 4
	sampleLen   = 16 << 10
	// sampleBound is the most bytes a sample's frame can take, whatever
	// the codec: zstd's ZSTD_COMPRESSBOUND of sampleLen (an encoder stores
	// a block raw rather than let it grow).
	sampleBound = sampleLen + sampleLen>>8 + (128<<10-sampleLen)>>11
)

// compressible guesses from samples spread over plain, compressed at zstd's
// fastest level, whether zstd will save 1/64 of it; small inputs are always
// tried. The guess is that the samples' frames together take less than
// 63/64 of the samples' bytes; it stops trying samples as soon as the
// frames so far settle that whatever the rest would take (at most
// sampleBound each): on compressible data after the first sample, where it
// took all four (docs/performance.md §2.3).
func compressible(z zstdCodec, plain []byte) bool {
	if len(plain) <= sampleFrom {
		return true
	}
	bp := samples.Get().(*[]byte)
	defer samples.Put(bp)
	const all = sampleCount * sampleLen
	size := 0
	for i := 1; i <= sampleCount; i++ {
		at := len(plain)*i/(sampleCount+1) - sampleLen/2
		*bp = z.encode((*bp)[:0], plain[at:at+sampleLen], levelSample)
		size += len(*bp)
		if size+(sampleCount-i)*sampleBound < all-all/64 {
			return true
		}
	}
	return false
}

// decodeStep is about how many bytes DecodePayloadSteps decodes between
// two calls of its decoded: zstd's blocks are of up to 128 KiB, and a
// reader of a few KiB in a 1 MiB chunk waits for the blocks up to its
// range, not for the whole chunk.
const decodeStep = 64 << 10

// stepDecoder is a zstdCodec that hands out a frame's data as it decodes
// it (cCodec; the pure-Go decoder has no way to decode into the caller's
// buffer by steps).
type stepDecoder interface {
	decodeSteps(dst, frame []byte, maxLen int, decoded func(prefix []byte)) ([]byte, error)
}

// DecodePayloadSteps is DecodePayload (with a non-nil dst) for a reader
// that serves the data as it is decoded: as a compressed payload of more
// than decodeStep bytes is decoded in place in dst's room, block by block,
// decoded is called on the caller's goroutine with each longer prefix of
// the result (dst included) that is final, and the result is that prefix
// grown to its end. It is not called at all for a raw or small payload, a
// frame that states no size, or in a build without cgo.
//
// The payload must be authenticated before (the seal's tag): prefixes are
// handed out before the rest of the frame is checked, so an error may
// follow them.
func DecodePayloadSteps(dst, payload []byte, maxLen int, decoded func(prefix []byte)) ([]byte, error) {
	return decodePayloadSteps(defaultCodec, dst, payload, maxLen, decoded)
}

func decodePayloadSteps(z zstdCodec, dst, payload []byte, maxLen int, decoded func(prefix []byte)) ([]byte, error) {
	s, ok := z.(stepDecoder)
	if !ok || len(payload) == 0 || payload[0] != payloadZstd {
		return decodePayload(z, dst, payload, maxLen)
	}
	return s.decodeSteps(dst, payload[1:], maxLen, decoded)
}

// Uncompressed reports whether payload holds its data as is: DecodePayload
// with a nil dst returns a subslice of it.
func Uncompressed(payload []byte) bool { return len(payload) > 0 && payload[0] == payloadRaw }

// DecodePayload appends the data of a payload to dst. maxLen bounds the
// decompressed size. With a nil dst, the data of a raw payload is returned
// as a subslice of payload, without a copy.
func DecodePayload(dst, payload []byte, maxLen int) ([]byte, error) {
	return decodePayload(defaultCodec, dst, payload, maxLen)
}

func decodePayload(z zstdCodec, dst, payload []byte, maxLen int) ([]byte, error) {
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
		return z.decode(dst, payload[1:], maxLen)
	}
	return nil, fmt.Errorf("%w: unknown payload encoding %d", ErrFormat, payload[0])
}

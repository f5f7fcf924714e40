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

var (
	encoderOnce sync.Once
	encoder     *zstd.Encoder
	decoder     *zstd.Decoder
)

func codecs() {
	encoderOnce.Do(func() {
		var err error
		// EncodeAll runs at most "concurrency" encodings at once: one per core.
		encoder, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("zstd encoder: " + err.Error()) // only fails on invalid options
		}
		decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			panic("zstd decoder: " + err.Error())
		}
	})
}

// EncodePayload appends the payload for plain to dst: zstd-compressed when that
// saves at least 1/32 of the size, raw otherwise (incompressible data costs
// one fast trial on a sample, not a full compression).
func EncodePayload(dst, plain []byte) []byte {
	codecs()
	start := len(dst)
	if compressible(plain) {
		dst = append(dst, payloadZstd)
		dst = encoder.EncodeAll(plain, dst)
		if len(dst)-start-1 <= len(plain)-len(plain)/32 {
			return dst
		}
		dst = dst[:start]
	}
	dst = append(dst, payloadRaw)
	return append(dst, plain...)
}

// compressible guesses from a 64 KiB sample in the middle of plain whether
// zstd will shrink it; small inputs are always tried.
func compressible(plain []byte) bool {
	const sample = 64 << 10
	if len(plain) <= 2*sample {
		return true
	}
	mid := len(plain)/2 - sample/2
	var buf [sample + 1024]byte
	out := encoder.EncodeAll(plain[mid:mid+sample], buf[:0])
	return len(out) < sample-sample/16
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

package pack

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// goCodec is klauspost/compress's pure-Go zstd: the codec of builds
// without cgo, about twice C zstd's CPU per byte at the same level
// (docs/performance.md §2.2). Its encoders and decoder are made on first
// use, each shared by all callers (EncodeAll and DecodeAll run one call
// per core at once on reused state).
type goCodec struct {
	encoders [levelSample + 1]struct {
		once sync.Once
		enc  *zstd.Encoder
	}
	decoderOnce sync.Once
	decoder     *zstd.Decoder
}

var goZstd = new(goCodec)

// goLevels are goCodec's encoder levels by codecLevel.
var goLevels = [...]zstd.EncoderLevel{
	CompressBalanced: zstd.SpeedDefault,
	CompressFast:     zstd.SpeedFastest,
	CompressSmall:    zstd.SpeedBetterCompression,
	levelSample:      zstd.SpeedFastest,
}

func (g *goCodec) encode(dst, src []byte, level codecLevel) []byte {
	e := &g.encoders[level]
	e.once.Do(func() {
		// The sealed payload is authenticated (AEAD), so zstd's own
		// checksum would only cost an xxhash of every chunk written and
		// read. Entropy-coding the literals of blocks without matches (the
		// default level's habit) saves about 0.5% at the fastest level on
		// the bench corpus, for no measurable CPU.
		var err error
		e.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(goLevels[level]), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			panic("zstd encoder: " + err.Error()) // only fails on invalid options
		}
	})
	return e.enc.EncodeAll(src, dst)
}

func (g *goCodec) decode(dst, frame []byte, maxLen int) ([]byte, error) {
	g.decoderOnce.Do(func() {
		var err error
		g.decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20), zstd.IgnoreChecksum(true))
		if err != nil {
			panic("zstd decoder: " + err.Error())
		}
	})
	if _, _, err := frameSize(frame, maxLen); err != nil {
		return nil, err
	}
	start := len(dst)
	out, err := g.decoder.DecodeAll(frame, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrFormat, err)
	}
	if len(out)-start > maxLen {
		return nil, fmt.Errorf("%w: payload decompresses beyond %d bytes", ErrFormat, maxLen)
	}
	return out, nil
}

package pack

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// zstdCodec is one implementation of zstd for payloads. Both write and read
// plain zstd frames (RFC 8878), so a payload written by one is read by the
// other: the choice is a matter of speed, not of format. defaultCodec is C
// zstd (codec_c.go) in a cgo build, the pure-Go one (codec_go.go)
// otherwise.
type zstdCodec interface {
	// encode appends one zstd frame of src, compressed as level says, to
	// dst.
	encode(dst, src []byte, level codecLevel) []byte
	// decode appends the data of the zstd frame to dst: at most maxLen
	// bytes, or an error wrapping ErrFormat.
	decode(dst, frame []byte, maxLen int) ([]byte, error)
}

// codecLevel is what a codec compresses for: a Compression the user
// chose, or levelSample, the trial EncodePayload makes on samples of a
// large chunk to find incompressible data.
type codecLevel uint8

const levelSample = codecLevel(len(compressionNames))

// frameSize checks that frame starts with a zstd frame header (not a
// legacy or skippable frame's) and returns the decoded size the header
// states, if it states one (the pure-Go encoder leaves it out below 256
// bytes); a stated size beyond maxLen is an error.
func frameSize(frame []byte, maxLen int) (size int, stated bool, err error) {
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		return 0, false, fmt.Errorf("%w: zstd: %w", ErrFormat, err)
	}
	if h.Skippable {
		return 0, false, fmt.Errorf("%w: zstd: skippable frame", ErrFormat)
	}
	if !h.HasFCS {
		return 0, false, nil
	}
	if h.FrameContentSize > uint64(maxLen) {
		return 0, false, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrFormat, h.FrameContentSize, maxLen)
	}
	return int(h.FrameContentSize), true, nil
}

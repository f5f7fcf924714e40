//go:build cgo

package pack

/*
// The part of zstd.h's stable API that cCodec calls. The library is the copy
// of zstd's C sources that github.com/DataDog/zstd compiles (imported below
// for that alone): its Go API sets no parameter beyond the level.
#include <stddef.h>
#include <stdint.h>

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
ZSTD_CCtx* ZSTD_createCCtx(void);
size_t ZSTD_freeCCtx(ZSTD_CCtx* cctx);
size_t ZSTD_CCtx_reset(ZSTD_CCtx* cctx, int reset);
size_t ZSTD_CCtx_setParameter(ZSTD_CCtx* cctx, int param, int value);
size_t ZSTD_compress2(ZSTD_CCtx* cctx, void* dst, size_t dstCapacity, const void* src, size_t srcSize);
ZSTD_DCtx* ZSTD_createDCtx(void);
size_t ZSTD_freeDCtx(ZSTD_DCtx* dctx);
unsigned long long ZSTD_decompressBound(const void* src, size_t srcSize);
size_t ZSTD_decompressDCtx(ZSTD_DCtx* dctx, void* dst, size_t dstCapacity, const void* src, size_t srcSize);
unsigned ZSTD_isError(size_t code);
// zstd's buffer-less streaming decoder (zstd.h, ZSTD_STATIC_LINKING_ONLY):
// it decodes a frame block by block straight into one contiguous buffer.
size_t ZSTD_decompressBegin(ZSTD_DCtx* dctx);
size_t ZSTD_nextSrcSizeToDecompress(ZSTD_DCtx* dctx);
size_t ZSTD_decompressContinue(ZSTD_DCtx* dctx, void* dst, size_t dstCapacity, const void* src, size_t srcSize);
const char* ZSTD_getErrorName(size_t code);

// azfs_compress sets the parameters (pairs of ZSTD_cParameter and value) on
// cctx, which forgets those of its last use, and compresses src into dst:
// one cgo call per frame.
static size_t azfs_compress(ZSTD_CCtx* cctx, const int32_t* params, int n, void* dst, size_t dstCapacity, const void* src, size_t srcSize) {
	size_t r = ZSTD_CCtx_reset(cctx, 3); // ZSTD_reset_session_and_parameters
	for (int i = 0; i + 1 < n && !ZSTD_isError(r); i += 2) {
		r = ZSTD_CCtx_setParameter(cctx, params[i], params[i + 1]);
	}
	if (ZSTD_isError(r)) {
		return r;
	}
	return ZSTD_compress2(cctx, dst, dstCapacity, src, srcSize);
}

// azfs_step is where azfs_decode_step left a frame: input and output
// consumed, and status: 0 more to decode, 1 the frame's end, 2 a zstd error
// (err), 3 the input ends inside the frame.
typedef struct {
	size_t in, out, err;
	int status;
} azfs_step;

// azfs_decode_step goes on decoding src[in:] into dst[out:] with dctx's
// buffer-less streaming state (begun afresh when in is 0) until out
// reaches want or the frame ends: one cgo call for each step of
// cCodec.decodeSteps, not one per block and header.
static azfs_step azfs_decode_step(ZSTD_DCtx* dctx, void* dst, size_t dstCapacity, size_t out, const void* src, size_t srcSize, size_t in, size_t want) {
	azfs_step s = {in, out, 0, 0};
	if (in == 0) {
		size_t r = ZSTD_decompressBegin(dctx);
		if (ZSTD_isError(r)) {
			s.err = r;
			s.status = 2;
			return s;
		}
	}
	while (s.out < want) {
		size_t n = ZSTD_nextSrcSizeToDecompress(dctx);
		if (n == 0) {
			s.status = 1;
			return s;
		}
		if (n > srcSize - s.in) {
			s.status = 3;
			return s;
		}
		size_t r = ZSTD_decompressContinue(dctx, (char*)dst + s.out, dstCapacity - s.out, (const char*)src + s.in, n);
		if (ZSTD_isError(r)) {
			s.err = r;
			s.status = 2;
			return s;
		}
		s.in += n;
		s.out += r;
	}
	if (ZSTD_nextSrcSizeToDecompress(dctx) == 0) {
		s.status = 1;
	}
	return s;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	_ "github.com/DataDog/zstd" // zstd's C library
)

// defaultCodec is C zstd in a cgo build.
var defaultCodec zstdCodec = cZstd

// cCodec is the reference C zstd: about half the pure-Go encoder's CPU at
// the same level and 80-90% of its decoder's (docs/performance.md §2.2).
// Its frames have their content size and no checksum.
type cCodec struct {
	// cctxs and dctxs hold compression and decompression contexts (with
	// their tables) for reuse, so that no chunk pays for allocating and
	// clearing codec state; a context beyond their capacity is freed.
	cctxs chan *C.ZSTD_CCtx
	dctxs chan *C.ZSTD_DCtx
}

var cZstd = &cCodec{
	cctxs: make(chan *C.ZSTD_CCtx, 2*runtime.GOMAXPROCS(0)),
	dctxs: make(chan *C.ZSTD_DCtx, 2*runtime.GOMAXPROCS(0)),
}

// ZSTD_CONTENTSIZE_ERROR of zstd.h (ZSTD_CONTENTSIZE_UNKNOWN is one more).
const zstdContentSizeError = 1<<64 - 2

// ZSTD_cParameter values of zstd.h.
const (
	zstdLevel    = 100
	zstdHashLog  = 102
	zstdChainLog = 103
)

// cSetting is a C zstd level and the parameters set beyond it: pairs of
// ZSTD_cParameter and value.
type cSetting []int32

// cSettings are cCodec's settings by codecLevel (chosen with
// BenchmarkCodecCorpus; docs/performance.md §2.2).
var cSettings = [...]cSetting{
	CompressBalanced: {zstdLevel, 3, zstdHashLog, 15, zstdChainLog, 16},
	CompressFast:     {zstdLevel, 1},
	CompressSmall:    {zstdLevel, 5},
	levelSample:      {zstdLevel, -1},
}

func (c *cCodec) encode(dst, src []byte, level codecLevel) []byte {
	return c.encodeWith(dst, src, cSettings[level])
}

// encodeWith compresses straight into dst's spare room, grown to zstd's
// bound when smaller.
func (c *cCodec) encodeWith(dst, src []byte, s cSetting) []byte {
	start := len(dst)
	dst = slices.Grow(dst, compressBound(len(src)))
	room := dst[start:cap(dst)]
	var cctx *C.ZSTD_CCtx
	select {
	case cctx = <-c.cctxs:
	default:
		cctx = C.ZSTD_createCCtx()
	}
	var in unsafe.Pointer
	if len(src) > 0 {
		in = unsafe.Pointer(&src[0])
	}
	n := C.azfs_compress(cctx, (*C.int32_t)(unsafe.Pointer(&s[0])), C.int(len(s)), unsafe.Pointer(&room[0]), C.size_t(len(room)), in, C.size_t(len(src)))
	select {
	case c.cctxs <- cctx:
	default:
		C.ZSTD_freeCCtx(cctx)
	}
	if err := zstdError(n); err != nil {
		panic("zstd encoder: " + err.Error()) // out of memory: the room is zstd's bound
	}
	return dst[:start+int(n)]
}

// decode decompresses straight into dst's spare room, grown when smaller
// to the size the frame states, or to a bound from its block headers when
// it states none. C zstd checks the stated size and, in frames written with
// one, the checksum.
func (c *cCodec) decode(dst, frame []byte, maxLen int) ([]byte, error) {
	size, stated, err := frameSize(frame, maxLen)
	if err != nil {
		return nil, err
	}
	if !stated {
		bound := C.ZSTD_decompressBound(unsafe.Pointer(&frame[0]), C.size_t(len(frame)))
		if bound >= zstdContentSizeError {
			return nil, fmt.Errorf("%w: zstd: invalid frame", ErrFormat)
		}
		size = int(min(bound, C.ulonglong(maxLen)))
	}
	start := len(dst)
	dst = slices.Grow(dst, max(size, 1)) // one byte to point at when size is 0
	room := dst[start : start+max(size, 1)]
	dctx := c.getDCtx()
	n := C.ZSTD_decompressDCtx(dctx, unsafe.Pointer(&room[0]), C.size_t(len(room)), unsafe.Pointer(&frame[0]), C.size_t(len(frame)))
	c.putDCtx(dctx)
	if err := zstdError(n); err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrFormat, err)
	}
	if int(n) > maxLen {
		return nil, fmt.Errorf("%w: payload decompresses beyond %d bytes", ErrFormat, maxLen)
	}
	return dst[:start+int(n)], nil
}

// getDCtx returns a kept decompression context, or a new one.
func (c *cCodec) getDCtx() *C.ZSTD_DCtx {
	select {
	case dctx := <-c.dctxs:
		return dctx
	default:
		return C.ZSTD_createDCtx()
	}
}

// putDCtx keeps dctx for the next decode, or frees it.
func (c *cCodec) putDCtx(dctx *C.ZSTD_DCtx) {
	select {
	case c.dctxs <- dctx:
	default:
		C.ZSTD_freeDCtx(dctx)
	}
}

// decodeSteps is decode for a frame that states its size, which it
// decodes in place in dst's room (grown to that size when smaller) by
// steps of about decodeStep bytes (zstd's blocks, of up to 128 KiB, are
// the unit), calling decoded with the result's prefix decoded so far after
// each step but the last. Other frames are decoded as decode does, with no
// call. Unlike decode it takes one frame and nothing after it: a payload
// holds one.
func (c *cCodec) decodeSteps(dst, frame []byte, maxLen int, decoded func(prefix []byte)) ([]byte, error) {
	size, stated, err := frameSize(frame, maxLen)
	if err != nil {
		return nil, err
	}
	if !stated || size <= decodeStep {
		return c.decode(dst, frame, maxLen)
	}
	start := len(dst)
	dst = slices.Grow(dst, size)
	room := dst[start : start+size]
	dctx := c.getDCtx()
	defer c.putDCtx(dctx)
	var in, out C.size_t
	for {
		// Past size, the step decodes what is left of the frame (its last
		// block's end, a checksum) and fails if that is more data.
		want := min(int(out)+decodeStep, size+1)
		s := C.azfs_decode_step(dctx, unsafe.Pointer(&room[0]), C.size_t(size), out, unsafe.Pointer(&frame[0]), C.size_t(len(frame)), in, C.size_t(want))
		in, out = s.in, s.out
		switch s.status {
		case 0:
			decoded(dst[:start+int(out)])
			continue
		case 2:
			return nil, fmt.Errorf("%w: zstd: %w", ErrFormat, zstdError(s.err))
		case 3:
			return nil, fmt.Errorf("%w: zstd: frame truncated", ErrFormat)
		}
		if int(in) != len(frame) {
			return nil, fmt.Errorf("%w: zstd: %d bytes after the frame", ErrFormat, len(frame)-int(in))
		}
		if int(out) != size {
			return nil, fmt.Errorf("%w: zstd: frame decodes to %d bytes, its header states %d", ErrFormat, out, size)
		}
		return dst[:start+size], nil
	}
}

// compressBound is ZSTD_COMPRESSBOUND: the largest frame of n bytes.
func compressBound(n int) int {
	bound := n + n>>8
	if n < 128<<10 {
		bound += (128<<10 - n) >> 11
	}
	return bound
}

// zstdError returns the error a C zstd result code means, if it is one.
func zstdError(code C.size_t) error {
	if C.ZSTD_isError(code) == 0 {
		return nil
	}
	return errors.New(C.GoString(C.ZSTD_getErrorName(code)))
}

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
	var dctx *C.ZSTD_DCtx
	select {
	case dctx = <-c.dctxs:
	default:
		dctx = C.ZSTD_createDCtx()
	}
	n := C.ZSTD_decompressDCtx(dctx, unsafe.Pointer(&room[0]), C.size_t(len(room)), unsafe.Pointer(&frame[0]), C.size_t(len(frame)))
	select {
	case c.dctxs <- dctx:
	default:
		C.ZSTD_freeDCtx(dctx)
	}
	if err := zstdError(n); err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrFormat, err)
	}
	if int(n) > maxLen {
		return nil, fmt.Errorf("%w: payload decompresses beyond %d bytes", ErrFormat, maxLen)
	}
	return dst[:start+int(n)], nil
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

// Package chunker splits a byte stream into content-defined chunks.
//
// It implements FastCDC (Xia et al., "FastCDC: a Fast and Efficient
// Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016)
// with normalized chunking at level 2: after skipping the first Min bytes of
// a chunk, a cut point is searched with a strict mask (two bits more than
// log2(Avg)) up to Avg bytes and with a loose mask (two bits fewer) beyond
// it, and a chunk is always cut at Max bytes. Chunk sizes therefore cluster
// around Avg, and an edit only disturbs the chunks around it.
//
// The gear table of the rolling hash is derived from a per-vault secret
// seed, so that chunk boundaries (and thus the chunk sizes visible in a
// repository) do not fingerprint well-known content for anyone who lacks the
// seed.
package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/zeebo/blake3"
)

// Params are the chunk size bounds.
//
// They must satisfy 0 <= Min <= Avg <= Max and Max > 0. Avg need not be a
// power of two; the masks are derived from floor(log2(Avg)).
type Params struct{ Min, Avg, Max int }

// DefaultParams are the chunk size bounds used for file data: Min 256 KiB,
// Avg 1 MiB, Max 4 MiB.
var DefaultParams = Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

// gearContext is the BLAKE3 key-derivation context for the gear table.
// Changing it changes every chunk boundary of every vault.
const gearContext = "azfs 2025-01-01 repo/chunker FastCDC gear table v1"

// Reads from the underlying reader go straight into the chunk's buffer, so a
// chunk's bytes are copied only when a read ran past its end (the rest is
// kept for the next chunk). The read size starts at minReadSize (or at the
// input's size, up to maxReadSize, when the reader states it: firstReadSize)
// and doubles, up to maxReadSize, whenever a read fills it, so that chunking a tiny file
// costs only a tiny buffer; a reader at full size reads a chunk's first Min
// bytes, which are never hashed, in the same call as the next maxReadSize.
const (
	minReadSize = 4 << 10
	maxReadSize = 64 << 10
)

// gearTables caches gear tables by seed ([32]byte -> *[256]uint64); a vault
// has one seed, so this holds very few entries.
var gearTables sync.Map

// gearTable returns the gear table for seed, deriving it on first use.
func gearTable(seed [32]byte) *[256]uint64 {
	if t, ok := gearTables.Load(seed); ok {
		return t.(*[256]uint64)
	}
	var raw [256 * 8]byte
	blake3.DeriveKey(gearContext, seed[:], raw[:])
	t := new([256]uint64)
	for i := range t {
		t[i] = binary.LittleEndian.Uint64(raw[i*8:])
	}
	actual, _ := gearTables.LoadOrStore(seed, t)
	return actual.(*[256]uint64)
}

// Chunker splits the data of an io.Reader into content-defined chunks.
// A Chunker is not safe for concurrent use.
type Chunker struct {
	gear         *[256]uint64
	p            Params
	maskS, maskL uint64 // strict mask below Avg, loose mask above it

	r     io.Reader
	carry []byte // bytes read past the end of the last chunk
	step  int    // the next read's size (minReadSize to maxReadSize)
	eof   bool   // r is exhausted
	err   error  // sticky read error
}

// New returns a Chunker reading r. The gear table is derived from the
// per-vault secret seed with BLAKE3 in key-derivation mode, so chunk
// boundaries do not fingerprint content for anyone without the seed. Tables
// are cached per seed, so calling New for every file is cheap.
//
// New panics if p does not satisfy 0 <= Min <= Avg <= Max and Max > 0.
func New(r io.Reader, seed [32]byte, p Params) *Chunker {
	if p.Min < 0 || p.Min > p.Avg || p.Avg > p.Max || p.Max <= 0 {
		panic(fmt.Sprintf("chunker: invalid params %+v", p))
	}
	// Normalization level 2. The masks select high bits of the hash, which
	// depend on the most bytes. A left shift by 64 or more yields 0, so a
	// tiny Avg degrades to "cut at the first opportunity" above Avg.
	avgBits := bits.Len(uint(p.Avg)) - 1
	return &Chunker{
		gear:  gearTable(seed),
		p:     p,
		maskS: ^uint64(0) << (64 - min(avgBits+2, 64)),
		maskL: ^uint64(0) << (64 - max(avgBits-2, 0)),
		r:     r,
		step:  firstReadSize(r),
	}
}

// Reset reuses the Chunker (and its internal read buffer) for a new reader
// with the same seed and params. It clears any read error or end of input.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.carry = c.carry[:0]
	c.step = firstReadSize(r)
	c.eof = false
	c.err = nil
}

// firstReadSize is the size of the first read from r: minReadSize, or
// when r states its size (an io.SectionReader of a file does), that size
// up to maxReadSize, so that a small file takes one read, not one per
// doubling.
func firstReadSize(r io.Reader) int {
	sized, ok := r.(interface{ Size() int64 })
	if !ok {
		return minReadSize
	}
	return int(min(max(sized.Size(), minReadSize), maxReadSize))
}

// Next reads the next chunk into buf (grown when cap(buf) is smaller than
// the chunk; callers should pass cap(buf) >= Max) and returns it.
//
// It returns io.EOF (and a nil slice) after the last chunk. A read error
// from r is returned wrapped; the partial chunk is then discarded and every
// later call returns the same error.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	chunk := append(buf[:0], c.carry...)
	c.carry = c.carry[:0]
	var fp uint64
	scanned := 0 // chunk[:scanned] is hashed (or skipped) and holds no cut point
	for {
		if scanned < len(chunk) {
			n, h, done := c.scan(fp, scanned, chunk[scanned:])
			fp = h
			scanned += n
			if done {
				c.carry = append(c.carry, chunk[scanned:]...)
				return chunk[:scanned], nil
			}
		}
		if c.eof {
			break
		}
		var err error
		if chunk, err = c.read(chunk); err != nil {
			c.err = err
			return nil, err
		}
	}
	if len(chunk) == 0 {
		return nil, io.EOF
	}
	return chunk, nil
}

// read appends the next bytes of r to chunk, growing it when needed, and
// never beyond Max bytes. Because the rolling hash state carries over
// between reads, cut points do not depend on how r splits its data.
func (c *Chunker) read(chunk []byte) ([]byte, error) {
	want := c.step
	if len(chunk) < c.p.Min && c.step == maxReadSize {
		want += c.p.Min - len(chunk)
	}
	want = min(want, c.p.Max-len(chunk))
	if cap(chunk)-len(chunk) < want {
		grown := make([]byte, len(chunk), min(max(2*cap(chunk), len(chunk)+want), c.p.Max))
		copy(grown, chunk)
		chunk = grown
	}
	n, err := io.ReadFull(c.r, chunk[len(chunk):len(chunk)+want])
	chunk = chunk[:len(chunk)+n]
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		c.eof = true
	case err != nil:
		return chunk, fmt.Errorf("chunker: read: %w", err)
	case n == c.step:
		c.step = min(2*c.step, maxReadSize)
	}
	return chunk, nil
}

// scan continues the chunk that already holds have bytes and whose rolling
// hash is fp with the bytes of data. It returns how many bytes of data belong
// to the chunk, the updated hash, and whether the chunk ends after them.
//
// The first Min bytes of a chunk are not hashed, bytes up to Avg are tested
// against the strict mask, later ones against the loose mask, and a chunk
// ends unconditionally at Max bytes.
func (c *Chunker) scan(fp uint64, have int, data []byte) (int, uint64, bool) {
	if room := c.p.Max - have; len(data) > room {
		data = data[:room]
	}
	clamp := func(x int) int { return min(max(x, 0), len(data)) }
	skip, normal := clamp(c.p.Min-have), clamp(c.p.Avg-have)

	n, fp, found := roll(c.gear, fp, data[skip:normal], c.maskS)
	if found {
		return skip + n, fp, true
	}
	n, fp, found = roll(c.gear, fp, data[normal:], c.maskL)
	if found {
		return normal + n, fp, true
	}
	return len(data), fp, have+len(data) == c.p.Max
}

// roll advances the gear hash fp = fp<<1 + gear[b] over data. It stops after
// the first byte at which fp&mask == 0 and returns the number of bytes
// consumed, the hash, and whether it stopped at such a cut point.
func roll(gear *[256]uint64, fp uint64, data []byte, mask uint64) (int, uint64, bool) {
	i := 0
	// The hash is one serial dependency chain; testing four positions per
	// iteration trims loop overhead around it. On a hit, the byte-wise loop
	// below re-hashes the four bytes to find the exact position.
	for ; i+4 <= len(data); i += 4 {
		d := data[i : i+4 : i+4]
		f1 := fp<<1 + gear[d[0]]
		f2 := f1<<1 + gear[d[1]]
		f3 := f2<<1 + gear[d[2]]
		f4 := f3<<1 + gear[d[3]]
		if f1&mask == 0 || f2&mask == 0 || f3&mask == 0 || f4&mask == 0 {
			break
		}
		fp = f4
	}
	for ; i < len(data); i++ {
		fp = fp<<1 + gear[data[i]]
		if fp&mask == 0 {
			return i + 1, fp, true
		}
	}
	return len(data), fp, false
}

package fs

import (
	"math/bits"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Chunk buffers are recycled: a chunk is decoded into the buffer of one the
// cache evicted, so that copying a point out of the mount does not allocate
// a fresh plaintext per chunk (about as many bytes as it copies), whose
// garbage drove the collector and the process's memory beyond the cache's
// bound. A READ's reply points into the cached chunks, and go-fuse writes it
// to the kernel after Read has returned, so a buffer is reused only once
// nothing can still read it: each chunk counts its holders (the cache while
// it keeps the chunk, and each reply being written), and the last to let go
// hands the buffer back.

// chunk is a decrypted chunk in the mount's cache.
type chunk struct {
	// data is the chunk's content, somewhere in buf's room (a source may
	// read an uncompressed chunk's sealed bytes into buf and open them in
	// place: sealedRoom).
	data []byte
	// buf is the buffer the chunk lies in, recycled when the last holder
	// lets go.
	buf []byte
	// refs counts the chunk's holders: the cache while it keeps it, and
	// each reply not yet written. At zero the buffer is handed back; refs
	// never rises from zero again.
	refs holders
}

// newChunk returns a chunk of data, lying in buf, held once: by the cache
// that it is added to, or by the caller that loaded it alone.
func newChunk(data, buf []byte) *chunk {
	c := &chunk{data: data, buf: buf}
	c.refs.first()
	return c
}

// pin adds a holder, unless the last one has already let go (the chunk
// left the cache and its buffer may be in use for another).
func (c *chunk) pin() bool { return c.refs.hold() }

// unpin drops a holder; the last hands the buffer to free.
func (c *chunk) unpin(free *buffers) {
	if c.refs.release("chunk") {
		free.put(c.buf)
		c.data, c.buf = nil, nil
	}
}

// Buffers of fewer than minPooled or more than maxPooled bytes are not
// recycled: small ones cost the allocator little, and a larger one is no
// chunk of a sane vault (chunks are at most 4 MiB), so its length, from a
// tree, is not trusted to size an allocation.
const (
	minPooled = 32 << 10
	maxPooled = 16 << 20
	// classesUp is how many size classes get tries, from n's up.
	classesUp = 3
	// sealedRoom is the room a chunk's buffer has beyond its length, for a
	// source to read an uncompressed chunk's sealed form into it (a
	// header, the payload's encoding byte and the tag: keys.Overhead + 1
	// bytes) and open it in place, with no copy.
	sealedRoom = 64
)

// sizeClass returns the capacity of the buffers that hold n bytes: n
// rounded up to a quarter of the power of two below it (at most 25% more),
// so that a buffer serves chunks of about its size, not only of its
// length. Sizes outside the pooled range are their own class.
func sizeClass(n int) int {
	if n <= minPooled || n > maxPooled {
		return n
	}
	step := 1 << (bits.Len(uint(n-1)) - 3)
	return (n + step - 1) &^ (step - 1)
}

// buffers keeps the buffers of chunks that left the cache for the next
// loads, by size class, up to max bytes in all; beyond that a buffer is
// left to the collector.
type buffers struct {
	max int64

	mu    sync.Mutex
	free  map[int][][]byte // by capacity (a size class)
	bytes int64
}

func newBuffers(max int64) *buffers {
	return &buffers{max: max, free: make(map[int][][]byte)}
}

// get returns an empty buffer with room for n bytes and sealedRoom: a
// kept one of its size class or the next, else a new one; or nil for a
// size not pooled (the decoder then allocates what it needs).
func (b *buffers) get(n int) []byte {
	n += sealedRoom
	if n < minPooled || n > maxPooled {
		return nil
	}
	class := sizeClass(n)
	b.mu.Lock()
	for c, k := class, 0; k < classesUp && c <= maxPooled; c, k = sizeClass(c+1), k+1 {
		if l := b.free[c]; len(l) > 0 {
			buf := l[len(l)-1]
			l[len(l)-1] = nil
			b.free[c] = l[:len(l)-1]
			b.bytes -= int64(c)
			b.mu.Unlock()
			return buf[:0]
		}
	}
	b.mu.Unlock()
	return make([]byte, 0, class)
}

// put keeps buf for a later get, if it is of a size class. When that
// exceeds the bound, buffers of the class holding the most bytes go to the
// collector first (buf itself if that is its class): the chunks evicted
// come from a part of the tree read long before, whose sizes need not be
// those loaded now, and a bound taken by one class would leave the others
// nothing to reuse.
func (b *buffers) put(buf []byte) {
	c := cap(buf)
	if c < minPooled || c > maxPooled || c != sizeClass(c) || int64(c) > b.max {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.bytes+int64(c) > b.max {
		most, mostBytes := c, int64(len(b.free[c])+1)*int64(c)
		for k, l := range b.free {
			if n := int64(len(l)) * int64(k); n > mostBytes {
				most, mostBytes = k, n
			}
		}
		if most == c {
			return
		}
		l := b.free[most]
		l[len(l)-1] = nil
		b.free[most] = l[:len(l)-1]
		b.bytes -= int64(most)
	}
	b.free[c] = append(b.free[c], buf[:0])
	b.bytes += int64(c)
}

// inRoom reports whether data lies in buf's room (ends where buf's room
// ends: a source appends to buf or opens the chunk in place there).
func inRoom(data, buf []byte) bool {
	return cap(data) > 0 && cap(buf) > 0 && &data[:cap(data)][cap(data)-1] == &buf[:cap(buf)][cap(buf)-1]
}

// kept returns the bytes of the buffers kept.
func (b *buffers) kept() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}

// reply is a READ's answer: slices of pinned chunks (and of zeros for
// holes), written by go-fuse with writev; Done, called once it is written
// (or dropped), unpins the chunks.
type reply struct {
	free   *buffers
	vec    [][]byte
	pinned []*chunk
}

var replies = sync.Pool{New: func() any { return new(reply) }}

// newReply returns an empty reply whose chunks go back to free.
func newReply(free *buffers) *reply {
	r := replies.Get().(*reply)
	r.free = free
	return r
}

// add appends data, a part of c, which the reply takes a pin of, or of
// the zeros when c is nil.
func (r *reply) add(c *chunk, data []byte) {
	if c != nil {
		r.pinned = append(r.pinned, c)
	}
	r.vec = append(r.vec, data)
}

// Size returns the reply's length.
func (r *reply) Size() int {
	n := 0
	for _, b := range r.vec {
		n += len(b)
	}
	return n
}

// Bytes returns the reply in one slice, copied into buf's room.
func (r *reply) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, b := range r.vec {
		buf = append(buf, b...)
	}
	return buf, fuse.OK
}

// Slices returns the reply's parts; go-fuse writes them with writev
// instead of copying them into one buffer.
func (r *reply) Slices() ([][]byte, fuse.Status) {
	return r.vec, fuse.OK
}

// Done unpins the reply's chunks: the kernel holds its copy now.
func (r *reply) Done() {
	for _, c := range r.pinned {
		c.unpin(r.free)
	}
	clear(r.pinned)
	clear(r.vec)
	r.pinned, r.vec, r.free = r.pinned[:0], r.vec[:0], nil
	replies.Put(r)
}

package fs

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

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
	// decoding is set for a chunk handed out while it is decoded
	// (chunkLoader): how much of data is final.
	decoding *decoding
}

// decoding is how far a chunk handed out early has been decoded.
type decoding struct {
	// ready is how many bytes of the chunk's data are final.
	ready atomic.Int64
	mu    sync.Mutex
	cond  *sync.Cond // on mu; made by the first reader that waits
	err   error      // why decoding stopped short
}

// advance notes that the chunk's first n bytes are final.
func (d *decoding) advance(n int) {
	d.mu.Lock()
	d.ready.Store(int64(n))
	if d.cond != nil {
		d.cond.Broadcast()
	}
	d.mu.Unlock()
}

// fail notes that decoding stopped short with err.
func (d *decoding) fail(err error) {
	d.mu.Lock()
	d.err = err
	if d.cond != nil {
		d.cond.Broadcast()
	}
	d.mu.Unlock()
}

// await waits until the chunk's first n bytes are decoded, or returns
// why they will not be. A chunk loaded whole does not wait.
func (c *chunk) await(n int) error {
	d := c.decoding
	if d == nil || d.ready.Load() >= int64(n) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cond == nil {
		d.cond = sync.NewCond(&d.mu)
	}
	for d.ready.Load() < int64(n) && d.err == nil {
		d.cond.Wait()
	}
	if d.ready.Load() >= int64(n) {
		return nil
	}
	return d.err
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
// loads, by size class, up to max bytes in all. The buffers it makes lie
// outside the Go heap on Linux (mapChunkBuffer): one not kept is unmapped
// at once, its pages back to the kernel and no garbage for the collector,
// so the chunk cache needs no room for the collector within the bound
// (chunkShares). A buffer is put back only by the last holder of its chunk
// (chunk.unpin), so nothing reads it once it is unmapped.
type buffers struct {
	max int64

	mu    sync.Mutex
	free  map[int][][]byte // by capacity (a size class)
	bytes int64
	// mapped holds every buffer get made and put has not dropped, by its
	// first byte: put takes back only those (a chunk decoded outside its
	// buffer lies in the decoder's own, from the heap), and release
	// unmaps them.
	mapped *mappedBuffers
}

// mappedBuffers is the set of a buffers' mapped buffers.
type mappedBuffers struct {
	mu    sync.Mutex
	bufs  map[*byte][]byte
	bytes int64
}

func newBuffers(max int64) *buffers {
	b := &buffers{max: max, free: make(map[int][][]byte), mapped: &mappedBuffers{bufs: make(map[*byte][]byte)}}
	// Once b is unreachable so is every holder of its chunks (each unpins
	// into b: the cache's eviction, replies, readers), and nothing can read
	// the buffers still mapped.
	runtime.AddCleanup(b, (*mappedBuffers).unmapAll, b.mapped)
	return b
}

// add records buf, just mapped.
func (m *mappedBuffers) add(buf []byte) {
	m.mu.Lock()
	m.bufs[&buf[:1][0]] = buf[:cap(buf)]
	m.bytes += int64(cap(buf))
	m.mu.Unlock()
}

// owns reports whether buf is one of m's.
func (m *mappedBuffers) owns(buf []byte) bool {
	if cap(buf) == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.bufs[&buf[:1][0]]
	return ok
}

// drop unmaps buf, one of m's that nothing holds any more.
func (m *mappedBuffers) drop(buf []byte) {
	m.mu.Lock()
	delete(m.bufs, &buf[:1][0])
	m.bytes -= int64(cap(buf))
	m.mu.Unlock()
	if err := unmapChunkBuffer(buf); err != nil {
		panic("fs: unmap chunk buffer: " + err.Error())
	}
}

// resize returns buf, one of m's that nothing holds, resized to n bytes
// (remapChunkBuffer), or nil if it cannot be (buf is then unmapped).
func (m *mappedBuffers) resize(buf []byte, n int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.bufs, &buf[:1][0])
	m.bytes -= int64(cap(buf))
	resized, err := remapChunkBuffer(buf, n)
	if err != nil {
		if err := unmapChunkBuffer(buf); err != nil {
			panic("fs: unmap chunk buffer: " + err.Error())
		}
		return nil
	}
	m.bufs[&resized[:1][0]] = resized
	m.bytes += int64(n)
	return resized
}

// unmapAll unmaps every buffer of m.
func (m *mappedBuffers) unmapAll() {
	m.mu.Lock()
	bufs := m.bufs
	m.bufs, m.bytes = make(map[*byte][]byte), 0
	m.mu.Unlock()
	for _, buf := range bufs {
		_ = unmapChunkBuffer(buf) // nothing to report to
	}
}

// mappedBytes returns the bytes of the buffers mapped and not unmapped.
func (b *buffers) mappedBytes() int64 {
	b.mapped.mu.Lock()
	defer b.mapped.mu.Unlock()
	return b.mapped.bytes
}

// get returns an empty buffer with room for n bytes and sealedRoom: a
// kept one of its size class or the next, else a kept one of another class
// resized, else a new one; or nil for a
// size not pooled (the decoder then allocates what it needs) or when no
// memory can be mapped.
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
	// None of its classes: a kept buffer of the class holding the most
	// bytes is resized, its pages already in memory (a new mapping faults
	// each page in, zeroed, when first touched).
	most, mostBytes := 0, int64(0)
	for c, l := range b.free {
		if n := int64(len(l)) * int64(c); n > mostBytes {
			most, mostBytes = c, n
		}
	}
	if most != 0 {
		l := b.free[most]
		buf := l[len(l)-1]
		l[len(l)-1] = nil
		b.free[most] = l[:len(l)-1]
		b.bytes -= int64(most)
		b.mu.Unlock()
		if buf = b.mapped.resize(buf, class); buf != nil {
			return buf[:0]
		}
	} else {
		b.mu.Unlock()
	}
	buf, err := mapChunkBuffer(class)
	if err != nil {
		return nil
	}
	b.mapped.add(buf)
	return buf[:0]
}

// put keeps buf, from get, for a later get, or unmaps it. When the kept
// exceed the bound, buffers of the class holding the most bytes are
// unmapped first (buf itself if that is its class): the chunks evicted
// come from a part of the tree read long before, whose sizes need not be
// those loaded now, and a bound taken by one class would leave the others
// nothing to reuse. A buffer get did not make is left to the collector.
func (b *buffers) put(buf []byte) {
	if !b.mapped.owns(buf) {
		return
	}
	c := cap(buf)
	if int64(c) > b.max {
		b.mapped.drop(buf)
		return
	}
	var drop [][]byte
	b.mu.Lock()
	for b.bytes+int64(c) > b.max {
		most, mostBytes := c, int64(len(b.free[c])+1)*int64(c)
		for k, l := range b.free {
			if n := int64(len(l)) * int64(k); n > mostBytes {
				most, mostBytes = k, n
			}
		}
		if most == c {
			b.mu.Unlock()
			b.mapped.drop(buf)
			for _, d := range drop {
				b.mapped.drop(d)
			}
			return
		}
		l := b.free[most]
		drop = append(drop, l[len(l)-1])
		l[len(l)-1] = nil
		b.free[most] = l[:len(l)-1]
		b.bytes -= int64(most)
	}
	b.free[c] = append(b.free[c], buf[:0])
	b.bytes += int64(c)
	b.mu.Unlock()
	for _, d := range drop {
		b.mapped.drop(d)
	}
}

// inRoom reports whether data lies in buf's room (a source appends to buf
// or opens the chunk in place there), so that buf is not handed back while
// data is in use.
func inRoom(data, buf []byte) bool {
	if cap(data) == 0 || cap(buf) == 0 {
		return false
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return d >= start && d < start+uintptr(cap(buf))
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

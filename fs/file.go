package fs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// seqWindow is how far a read may start from the end of the previous one
// and still count as sequential: the kernel's read-ahead sends several
// requests at once, and they may arrive out of order. Random small reads
// that land this near each other read ahead too: with two cores, the chunks
// around are decoded on the idle one, and later random reads find more of
// them cached (counting such reads as random, in 81ceadd, made the median
// of 200 random 4 KiB reads of a 200 MB file slower: 3.0 ms against 2.4 ms
// in interleaved runs under load).
const seqWindow = 8 << 20

// fileNode is a regular file. It has no file handles: OPEN is answered
// with ENOSYS, after which the kernel sends no OPEN, FLUSH or RELEASE for
// any file of the mount, keeps their page cache, and sends READ with no
// handle, which this node serves.
type fileNode struct {
	gofs.Inode
	leaf
	seq sequence
	// blocks reads a disk image's blocks by windows (imagewindows.go).
	blocks blockFile
}

// sequence is where a file's readers are: what read-ahead needs to know.
type sequence struct {
	mu sync.Mutex // guards the fields below
	// end is the end offset of the previous read.
	end int64
	// read is set by the first read.
	read bool
	// ahead is the index of the first extent not yet prefetched in the
	// current sequential run.
	ahead int
}

var (
	_ gofs.NodeGetattrer   = (*fileNode)(nil)
	_ gofs.NodeOpener      = (*fileNode)(nil)
	_ gofs.NodeReader      = (*fileNode)(nil)
	_ gofs.NodeFlusher     = (*fileNode)(nil)
	_ gofs.NodeLseeker     = (*fileNode)(nil)
	_ gofs.NodeGetxattrer  = (*fileNode)(nil)
	_ gofs.NodeListxattrer = (*fileNode)(nil)
	_ gofs.NodeStatfser    = (*fileNode)(nil)
)

// Open answers ENOSYS, which the kernel takes as "opens always succeed, keep
// the page cache" for the whole mount. (A node without Open would make
// go-fuse answer ENOTSUP, failing the open.)
func (f *fileNode) Open(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, syscall.ENOSYS
}

// Flush answers ENOSYS, so the kernel stops sending FLUSH on close.
func (f *fileNode) Flush(context.Context, gofs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
}

// Read reads len(dest) bytes at off, fetching only the chunks the range
// covers. Holes read as zeros; the result is short at the end of the file.
// The result points into the cached chunks, pinned until go-fuse has
// written it to the kernel (reply.Done), so that it is written without a
// copy and their buffers are not reused meanwhile.
func (f *fileNode) Read(ctx context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	start := uint64(off)
	if start >= f.node.Size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	if b := f.blocks.reader(f.pt.v, &f.node, f.path); b != nil {
		return readBlocks(b, dest, off)
	}
	end := min(start+uint64(len(dest)), f.node.Size)
	if f.pt.v.readAheadFor(&f.seq, &f.node, start, end) {
		f.readAheadSiblings()
	}

	exts := f.node.Extents
	first := f.node.FindExtent(start)
	// Fetch the range's later chunks in parallel with the first.
	for i := first + 1; i < len(exts) && exts[i].Offset < end; i++ {
		f.pt.v.prefetch(exts[i])
	}
	r := newReply(f.pt.v.free)
	pos := start
	for i := first; i < len(exts) && exts[i].Offset < end; i++ {
		e := exts[i]
		if e.Offset > pos {
			addZeros(r, e.Offset-pos)
			pos = e.Offset
		}
		n := min(end, e.Offset+uint64(e.Length)) - pos
		c, err := f.pt.v.pinChunkUpTo(ctx, e, int(pos-e.Offset+n))
		if err != nil {
			r.Done()
			return nil, f.pt.v.fail(err, "chunk", e.ID, f.path)
		}
		r.add(c, c.data[pos-e.Offset:pos-e.Offset+n])
		pos += n
	}
	addZeros(r, end-pos)
	return r, 0
}

// zeros is the content of holes. It is never written.
var zeros [1 << 20]byte

// addZeros appends n zero bytes to r.
func addZeros(r *reply, n uint64) {
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		r.add(nil, zeros[:k])
		n -= k
	}
}

// firstSequential is the least a file's first read asks for, from its
// start, to count as the start of a sequential run: the kernel's first read
// for a reader of the whole file is its read-ahead window, 128 KiB or more.
const firstSequential = 64 << 10

// readAheadFor notes a read of [start, end) of file node, whose readers are at
// seq. If it continues a sequential run, it starts fetching the chunks of
// the v.readAhead extents after the range that it has not started yet. A
// file's first read starts a run only when it reads the whole file or at
// least firstSequential bytes from the start: a small read elsewhere loads
// no more than the chunks it covers. It reports whether the read is the
// first of a run from the file's start.
func (v *vault) readAheadFor(seq *sequence, node *tree.Node, start, end uint64) (fromStart bool) {
	n := v.readAhead
	if n == 0 {
		return false
	}
	seq.mu.Lock()
	defer seq.mu.Unlock()
	prev, started := seq.end, seq.read
	seq.end, seq.read = int64(end), true
	sequential := int64(start) >= prev-seqWindow && int64(start) <= prev+seqWindow
	if !started {
		fromStart = start == 0 && (end == node.Size || end-start >= firstSequential)
		sequential = fromStart
	}
	if !sequential {
		seq.ahead = 0
		return false
	}
	exts := node.Extents
	first := node.FindExtent(end)
	if first < len(exts) && exts[first].Offset < end {
		// This read loads the extent holding end itself.
		first++
	}
	last := min(first+n, len(exts))
	for j := max(first, seq.ahead); j < last; j++ {
		if !v.prefetch(exts[j]) {
			break
		}
		seq.ahead = j + 1
	}
	return !started
}

// readAheadSiblings starts loading the first chunks of the files listed
// after f in its directory, up to the vault's read-ahead in chunks, as far
// as the queue of read-ahead takes them: cp -a, tar and rsync read a
// directory's files in listing order, one at a time, and each small file
// would otherwise wait for its chunk to be fetched and decoded. It only
// looks at the directory's part already cached (the lookup of f loaded
// it), never loading one. Of those files, it leaves out the ones up to
// where the read of a file listed shortly before already started read-ahead
// (dirNode.siblingsAhead): a reader in listing order then starts one load
// per file, not ReadAhead (each a closure and a look-up in the chunk
// cache under its lock).
func (f *fileNode) readAheadSiblings() {
	name, parent := f.Parent()
	if parent == nil {
		return
	}
	d, ok := parent.Operations().(*dirNode)
	if !ok {
		return
	}
	m := d.meta.Load()
	if m == nil || len(m.node.Parts) == 0 {
		return
	}
	pi := m.node.PartFor(name)
	part, ok := d.pt.v.parts.cached(m.node.Parts[pi].ID)
	if !ok {
		return
	}
	i, found := slices.BinarySearchFunc(part.Nodes, name, func(n tree.Node, name string) int { return cmp.Compare(n.Name, name) })
	if !found {
		return
	}
	// The window: up to the ReadAhead-th file after f.
	end := -1
	for j, n := i+1, 0; j < len(part.Nodes) && n < f.pt.v.readAhead; j++ {
		if hasChunks(&part.Nodes[j]) {
			n++
			end = j
		}
	}
	if end < 0 {
		return
	}
	// Started already: up to the end of an earlier read's window that ends
	// within this one (a reader further on in the directory covered other
	// files).
	done := i
	if p, j := unpackSiblingsAhead(d.siblingsAhead.Load()); p == pi && j > i && j <= end {
		done = j
	}
	last := done
	for j := done + 1; j <= end; j++ {
		if !hasChunks(&part.Nodes[j]) {
			continue
		}
		if !f.pt.v.prefetch(part.Nodes[j].Extents[0]) {
			break
		}
		last = j
	}
	if last > done {
		d.siblingsAhead.Store(packSiblingsAhead(pi, last))
	}
}

// hasChunks reports whether n is a file with content to read ahead.
func hasChunks(n *tree.Node) bool {
	return n.Type == tree.File && len(n.Extents) > 0
}

// packSiblingsAhead packs the position of an entry of a directory, entry j
// of its part pi, for dirNode.siblingsAhead; 0 is no entry.
func packSiblingsAhead(pi, j int) uint64 {
	return uint64(pi)<<32 | uint64(j+1)
}

// unpackSiblingsAhead returns the position packSiblingsAhead packed into
// p, or part -1 for none.
func unpackSiblingsAhead(p uint64) (pi, j int) {
	if p == 0 {
		return -1, -1
	}
	return int(p >> 32), int(p&(1<<32-1)) - 1
}

// Lseek finds data and holes (SEEK_DATA, SEEK_HOLE) from the extents.
func (f *fileNode) Lseek(_ context.Context, _ gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	if off >= f.node.Size {
		return 0, syscall.ENXIO
	}
	exts := f.node.Extents
	i := f.node.FindExtent(off)
	switch whence {
	case unix.SEEK_DATA:
		if i == len(exts) {
			return 0, syscall.ENXIO
		}
		return max(off, exts[i].Offset), 0
	case unix.SEEK_HOLE:
		for ; i < len(exts) && exts[i].Offset <= off; i++ {
			off = exts[i].Offset + uint64(exts[i].Length)
		}
		return off, 0
	}
	return 0, syscall.EINVAL
}

// pinnedTries is how often pinChunk takes a chunk from the cache before it
// loads it alone: each failure means the chunk was evicted and recycled
// between the cache's answer and the pin.
const pinnedTries = 3

// pinChunk returns extent e's chunk, checked against e's length, through
// the chunk cache, pinned for the caller, who unpins it, once it is
// decoded whole.
func (v *vault) pinChunk(ctx context.Context, e tree.Extent) (*chunk, error) {
	return v.pinChunkUpTo(ctx, e, int(e.Length))
}

// pinChunkUpTo is pinChunk for a reader of the chunk's first n bytes: it
// returns as soon as they are decoded (a chunk is handed out as it is
// decoded: chunkLoader).
func (v *vault) pinChunkUpTo(ctx context.Context, e tree.Extent, n int) (*chunk, error) {
	c, err := v.cachedChunk(ctx, e)
	if err != nil {
		return nil, err
	}
	if err := checkChunkLength(e, c.data); err != nil {
		c.unpin(v.free)
		return nil, err
	}
	if err := c.await(n); err != nil {
		c.unpin(v.free)
		return nil, err
	}
	return c, nil
}

// cachedChunk returns extent e's chunk through the cache, pinned; when the
// cache lets go of it before it can be pinned pinnedTries times over (a
// cache too small for the loads in flight), it loads it alone. A chunk the
// cache holds (most READs find theirs loaded ahead) costs no loader: that
// closure is an allocation.
func (v *vault) cachedChunk(ctx context.Context, e tree.Extent) (*chunk, error) {
	for range pinnedTries {
		c, ok := v.chunks.Get(e.ID)
		if !ok {
			var err error
			if c, err = v.chunks.GetOrLoad(ctx, e.ID, v.chunkLoader(e)); err != nil {
				return nil, err
			}
		}
		if c.pin() {
			return c, nil
		}
	}
	return v.chunkLoader(e)(ctx)
}

// loadChunk loads chunk id from the source into a new buffer, not through
// the cache.
func (v *vault) loadChunk(ctx context.Context, id keys.ID) ([]byte, error) {
	return v.loadChunkInto(ctx, nil, id, nil)
}

// loadChunkInto appends chunk id, loaded from the source, to dst, handing
// decoded its prefixes unless it is nil (Source.ChunkIntoSteps).
func (v *vault) loadChunkInto(ctx context.Context, dst []byte, id keys.ID, decoded func(prefix []byte)) ([]byte, error) {
	data, err := v.src.ChunkIntoSteps(ctx, dst, id, decoded)
	if err != nil {
		return nil, fmt.Errorf("load chunk %s: %w", id.Short(), err)
	}
	return data, nil
}

// checkChunkLength checks that data, extent e's chunk, is as long as e.
func checkChunkLength(e tree.Extent, data []byte) error {
	if len(data) != int(e.Length) {
		return fmt.Errorf("chunk %s: %w: %d bytes, extent has %d", e.ID.Short(), errChunkSize, len(data), e.Length)
	}
	return nil
}

// chunkLoader returns the load of extent e's chunk for the chunk cache: into
// a recycled buffer of its size, or for a chunk smaller than those
// (minPooled) a new one of its size from the heap. Either way the source
// decodes into the buffer given and reads the sealed bytes into a buffer
// of its own pool (or, for a chunk stored uncompressed, into the buffer's
// room): with no buffer it read them into a new one too, garbage at once,
// for every small file read. A chunk the source decodes by steps
// (Source.ChunkIntoSteps) is handed to the cache and its readers after the
// first step (lru.Publisher), and its readers wait only for the bytes they
// read (chunk.await): a read of 4 KiB at a random offset of a 1 MiB chunk
// then waits for the blocks up to its range, on average half the decoding
// (docs/performance.md §3.9). The bytes handed out are authenticated: the
// source verified the chunk's tag before decoding any.
func (v *vault) chunkLoader(e tree.Extent) func(context.Context) (*chunk, error) {
	return func(ctx context.Context) (*chunk, error) {
		buf := v.free.get(int(e.Length))
		if buf == nil && int(e.Length)+sealedRoom < minPooled {
			buf = make([]byte, 0, int(e.Length)+sealedRoom)
		}
		var early *chunk
		var decoded func(prefix []byte)
		if publish, ok := lru.Publisher[*chunk](ctx); ok && buf != nil {
			decoded = func(prefix []byte) {
				if early != nil {
					early.decoding.advance(len(prefix))
					return
				}
				if !inRoom(prefix, buf) || cap(prefix) < int(e.Length) {
					return // not decoded into buf: handed out once whole
				}
				early = newChunk(prefix[:e.Length], buf)
				early.decoding = &decoding{}
				early.decoding.advance(len(prefix))
				early.pin() // the load's, until it is decoded
				publish(early)
			}
		}
		data, err := v.loadChunkInto(ctx, buf, e.ID, decoded)
		if early != nil {
			if err == nil && (len(data) != len(early.data) || !inRoom(data, buf)) {
				err = fmt.Errorf("chunk %s: %w: %d bytes decoded, extent has %d", e.ID.Short(), errChunkSize, len(data), e.Length)
			}
			if err != nil {
				// Out of the cache before its readers learn of the
				// failure: a read after theirs loads the chunk again.
				v.chunks.Discard(e.ID, func(c *chunk) bool { return c == early })
				early.decoding.fail(err)
			} else {
				early.decoding.advance(len(data))
			}
			early.unpin(v.free)
			return early, err
		}
		if err != nil {
			v.free.put(buf)
			return nil, err
		}
		if !inRoom(data, buf) {
			// Not decoded into buf: a size not pooled, or a chunk longer
			// than its extent says.
			v.free.put(buf)
			buf = data
		}
		return newChunk(data, buf), nil
	}
}

// prefetch starts loading extent e's chunk into the cache in the
// background, behind the loads readers wait for, unless it is cached or
// loading. It reports false when the queue of read-ahead is full. A
// failure is not reported here: the read that needs the chunk loads it
// again and reports.
func (v *vault) prefetch(e tree.Extent) bool {
	return v.chunks.Prefetch(context.Background(), e.ID, v.chunkLoader(e))
}

package fs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/tree"
)

// Disk images are stored in small fixed blocks (16 KiB for an image of up
// to 16 GiB, package repo/backup), one blob each, written one after the
// other into their packs. Loading each block on its own (a storage read
// into a fresh buffer, an open, a cache entry) costs more than the block,
// so an image's blocks load by aligned windows of imageWindow bytes of the
// file: the blocks of a window lying next to each other in one pack are
// read with one storage request (a span, as package restore fetches), each
// opened in place in the span's buffer, and the window (its spans' buffers
// and where each block's content lies in them) is kept in the mount's
// cache of windows as one entry, counted by the bytes it holds. A window
// loads once however many reads want it, in parallel with the other
// windows of a read, a sequential reader's next imageReadAhead windows in
// the background (lru.Cache.Prefetch).
//
// A block that does not load in its window (its span's request failed, it
// does not authenticate there, or the index does not place it in a pack)
// is left out of the window, and the reader that needs it loads it alone
// through the chunk cache (vault.pinChunk), which tries the block's other
// copies and reports: a damaged block fails only the reads that need it.
const (
	// imageWindow is the span of a file whose blocks load together, and
	// the most one storage request of a window loads.
	imageWindow = 1 << 20
	// imageReadAhead is how many windows past a sequential read are
	// loaded ahead of it, when the cache of windows holds twice as many
	// (images.readAhead).
	imageReadAhead = 8
)

// packReader loads runs of blobs lying next to each other in a pack with
// one storage request, and opens them there (repo.Area does, as package
// restore uses it). A Source without it has a window's blocks loaded one
// by one (Source.Chunk).
type packReader interface {
	// Index places blobs in packs.
	Index() *index.Index
	// LoadPackRangeInto appends length bytes of pack from off to dst,
	// into dst's room when that suffices.
	LoadPackRangeInto(ctx context.Context, dst []byte, pack keys.ID, off, length int64) ([]byte, error)
	// OpenBlobInto authenticates sealed, opening it in place; with a nil
	// dst, the content of an uncompressed blob is a subslice of sealed.
	OpenBlobInto(dst []byte, kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error)
	// NoteBadCopy notes that pack's copy of blob is damaged, for the load
	// of the blob alone to try the others first.
	NoteBadCopy(blob, pack keys.ID)
}

// window is the loaded blocks of a window of a file: the content of each
// of its extents, in order, nil for one that did not load.
type window struct {
	chunks [][]byte
	// bytes is the memory the window holds: its spans' buffers and the
	// contents decoded outside them.
	bytes int64
	// spans are the buffers its blocks lie in, handed back for the next
	// windows when the last holder lets go.
	spans [][]byte
	// refs counts the window's holders: the cache while it keeps it, and
	// each read copying out of it.
	refs holders
}

// pin adds a holder, unless the last one has let go (the window left the
// cache and its buffers may hold another's blocks).
func (w *window) pin() bool { return w.refs.hold() }

// unpin drops a holder; the last hands the span buffers to free.
func (w *window) unpin(free *spanBuffers) {
	if w.refs.release("window") {
		for _, b := range w.spans {
			free.put(b)
		}
	}
}

// spanBufferCap is the capacity of a recycled span buffer: a window's
// blobs and their sealing (just over imageWindow) and a few gaps.
const spanBufferCap = imageWindow + imageWindow/4

// spanBuffers keeps the span buffers of windows the cache let go, for the
// next windows' loads: reading into memory already mapped and cleared costs
// far less than a fresh buffer per window.
type spanBuffers struct {
	mu   sync.Mutex
	free [][]byte
	max  int // buffers kept at most
}

// get returns an empty buffer of spanBufferCap bytes of room.
func (s *spanBuffers) get() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, spanBufferCap)
}

// put keeps b for a later get, if it is of the size get returns and
// fewer than max are kept.
func (s *spanBuffers) put(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(b) == spanBufferCap && len(s.free) < s.max {
		s.free = append(s.free, b)
	}
}

// windowKey names a window by its extents (offsets from the window's
// start, lengths, IDs): the same window of an image in many points, or of
// the same image seen as a file and as a partition's base, is loaded once.
type windowKey [sha256.Size]byte

// newWindowCache returns the cache of windows and the free list of their
// span buffers, holding at most maxBytes together (a quarter of it for the
// free list), with at most loads windows loading at once.
func newWindowCache(maxBytes int64, loads int) (*lru.Cache[windowKey, *window], *spanBuffers) {
	free := &spanBuffers{max: int(max(maxBytes, 0) / 4 / spanBufferCap)}
	c := lru.New[windowKey](maxBytes-int64(free.max)*spanBufferCap, func(w *window) int64 { return w.bytes })
	c.OnEvict(func(w *window) { w.unpin(free) })
	c.LimitLoads(loads)
	return c, free
}

// windowExtents returns the extents of node that start in window k (the
// bytes from k*imageWindow on, imageWindow of them): node.Extents[i:j].
func windowExtents(node *tree.Node, k uint64) (i, j int) {
	lo := k * imageWindow
	exts := node.Extents
	i = node.FindExtent(lo)
	if i < len(exts) && exts[i].Offset < lo {
		i++ // it starts in an earlier window
	}
	j = i
	for j < len(exts) && exts[j].Offset < lo+imageWindow {
		j++
	}
	return i, j
}

// keyOf returns the key of the window at lo whose extents are exts.
func keyOf(exts []tree.Extent, lo uint64) windowKey {
	h := sha256.New()
	var b [12]byte
	for _, e := range exts {
		binary.LittleEndian.PutUint64(b[:8], e.Offset-lo)
		binary.LittleEndian.PutUint32(b[8:], e.Length)
		h.Write(b[:])
		h.Write(e.ID[:])
	}
	var k windowKey
	h.Sum(k[:0])
	return k
}

// errWindowUnread reports a window none of whose blocks loaded: it is not
// cached, and its readers load each block alone.
var errWindowUnread = errors.New("no block of the window loaded")

// loadWindow loads the blocks of exts, a window's extents: by spans of
// blobs lying next to each other in one pack when the source reads packs,
// else one by one.
func (v *vault) loadWindow(ctx context.Context, exts []tree.Extent) (*window, error) {
	w := &window{chunks: make([][]byte, len(exts))}
	w.refs.first() // the cache's
	if pr, ok := v.src.(packReader); ok {
		w.loadSpans(ctx, pr, exts, v.images.spans)
	} else {
		for i, e := range exts {
			if data, err := v.loadChunk(ctx, e.ID); err == nil && checkChunkLength(e, data) == nil {
				w.chunks[i] = data
				w.bytes += int64(cap(data))
			}
		}
	}
	for _, c := range w.chunks {
		if c != nil {
			return w, nil
		}
	}
	w.unpin(v.images.spans)
	return nil, fmt.Errorf("load window of %d blocks: %w", len(exts), errWindowUnread)
}

const (
	// maxSpan bounds the bytes one request of a window loads: a window's
	// blobs and their sealing, and the gaps between them.
	maxSpan = 2 * imageWindow
	// maxGap is the most bytes of other blobs a span reads between two
	// of the window's: a backup's workers pack an image's blocks nearly,
	// not exactly, in order, so that a window's blobs lie in a pack with
	// a few of the next window's among them.
	maxGap = 64 << 10
)

// windowBlob is a block of a window to load: where its blob is, and its
// index in the window's extents.
type windowBlob struct {
	loc index.Location
	i   int
}

// loadSpans loads the blocks of exts by spans: the window's blobs, in pack
// order, those of one pack at most maxGap apart loaded with one request of
// at most maxSpan bytes, each opened in place in the span's buffer. A
// block whose blob the index does not place, whose span does not load, or
// that does not authenticate or has not its extent's length, is left out.
func (w *window) loadSpans(ctx context.Context, pr packReader, exts []tree.Extent, free *spanBuffers) {
	idx := pr.Index()
	blobs := make([]windowBlob, 0, len(exts))
	for i, e := range exts {
		if loc, ok := idx.Lookup(e.ID); ok && loc.Kind == keys.KindData {
			blobs = append(blobs, windowBlob{loc: loc, i: i})
		} // else loaded alone by its reader, which reports why
	}
	// By place in the packs: a block the window holds twice (the same
	// blob) comes right after its first.
	slices.SortFunc(blobs, func(a, b windowBlob) int {
		if c := bytes.Compare(a.loc.Pack[:], b.loc.Pack[:]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.loc.Offset, b.loc.Offset), cmp.Compare(a.i, b.i))
	})
	for len(blobs) > 0 {
		first := blobs[0].loc
		start, end := int64(first.Offset), int64(first.Offset)+int64(first.Length)
		n := 1
		for ; n < len(blobs); n++ {
			loc := blobs[n].loc
			off, next := int64(loc.Offset), int64(loc.Offset)+int64(loc.Length)
			if loc.Pack != first.Pack || off > end+maxGap || next-start > maxSpan {
				break
			}
			end = max(end, next)
		}
		w.loadSpan(ctx, pr, exts, blobs[:n], start, end, free)
		blobs = blobs[n:]
	}
}

// loadSpan loads bytes start to end of the pack of blobs, which lie there,
// into a buffer from free, and opens each blob in place.
func (w *window) loadSpan(ctx context.Context, pr packReader, exts []tree.Extent, blobs []windowBlob, start, end int64, free *spanBuffers) {
	// A span of most of a window goes into a recycled buffer; a smaller
	// one (blocks scattered in the packs, a window of few blocks) into
	// one of its size.
	var buf []byte
	if length := end - start; length > spanBufferCap/2 && length <= spanBufferCap {
		buf = free.get()
	}
	data, err := pr.LoadPackRangeInto(ctx, buf, blobs[0].loc.Pack, start, end-start)
	if err != nil {
		free.put(buf)
		return // each loaded alone by its reader, trying other copies
	}
	if buf != nil && cap(data) != cap(buf) {
		free.put(buf) // not read into: the storage cannot
	}
	w.spans = append(w.spans, data)
	w.bytes += int64(cap(data))
	for k, b := range blobs {
		if k > 0 && blobs[k-1].loc == b.loc {
			w.chunks[b.i] = w.chunks[blobs[k-1].i] // the same block again
			continue
		}
		e := exts[b.i]
		rel, length := int64(b.loc.Offset)-start, int64(b.loc.Length)
		sealed := data[rel : rel+length : rel+length]
		plain, err := pr.OpenBlobInto(nil, keys.KindData, e.ID, sealed)
		if err != nil {
			if isDamage(err) {
				pr.NoteBadCopy(e.ID, b.loc.Pack)
			}
			continue
		}
		if checkChunkLength(e, plain) != nil {
			continue
		}
		if !sharesEnd(plain, sealed) {
			w.bytes += int64(cap(plain)) // decompressed outside the span
		}
		w.chunks[b.i] = plain[:len(plain):len(plain)]
	}
}

// sharesEnd reports whether plain is a subslice of sealed reaching to its
// end (as OpenBlobInto returns the content of an uncompressed blob): not
// decoded into memory of its own.
func sharesEnd(plain, sealed []byte) bool {
	c := cap(plain)
	return c > 0 && len(sealed) > 0 && &plain[:c][c-1] == &sealed[len(sealed)-1]
}

// maxWindowedBlock bounds the average extent of a file read by windows
// (blockFile): package backup stores disk images and devices in blocks of
// 16 KiB up to this size (images of up to 32 GiB; a larger image's larger
// blocks cost less each), FastCDC's chunks are at least 256 KiB but a
// file's last.
const maxWindowedBlock = 32 << 10

// blockFile reads a regular file of a mount by windows when it is stored
// in small blocks (a backed-up disk image, read as the file itself), as
// pointFile reads images' contents; fileNode holds one.
type blockFile struct {
	once sync.Once
	f    *pointFile // nil for a file stored in ordinary chunks
}

// reader returns the window reader of the file node at path, or nil when
// it is stored in ordinary chunks.
func (b *blockFile) reader(v *vault, node *tree.Node, path string) *pointFile {
	b.once.Do(func() {
		exts := node.Extents
		if len(exts) < 2*imageWindow/maxWindowedBlock {
			return
		}
		var data uint64
		for _, e := range exts {
			data += uint64(e.Length)
		}
		if data <= uint64(len(exts))*maxWindowedBlock {
			b.f = &pointFile{v: v, node: node, path: path}
		}
	})
	return b.f
}

// readBlocks answers a FUSE read of len(dest) bytes at off of f: a short result
// at the end of the file. readWindows has logged a failure.
func readBlocks(f *pointFile, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	// A vector, as readResult answers.
	return fuse.ReadResultVector([][]byte{dest[:n]}), 0
}

// Package fs serves recovery points read-only through FUSE.
//
// A mount shows either one point (NewPointRoot) or every point of a vault
// grouped by machine (NewAllPointsRoot). Nodes are built lazily from tree
// parts: a lookup loads only the part that can hold the name, a listing
// streams the parts one at a time, and a read fetches only the chunks it
// covers, through a byte-bounded LRU of decrypted chunks with read-ahead for
// sequential readers. Everything is immutable, so the kernel is told to cache
// entries, attributes, directory listings and file pages for long.
//
// The package depends on a vault only through the narrow Source interface.
package fs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// Source supplies tree parts and chunks of one vault. Implementations
// authenticate everything they return.
type Source interface {
	// Part returns a decoded tree part.
	Part(ctx context.Context, id keys.ID) (*tree.Part, error)
	// ChunkIntoSteps appends a decrypted, decompressed chunk to dst,
	// decoding into dst's room when that suffices (the mount recycles its
	// chunk buffers); with an empty dst the chunk may lie anywhere in its
	// room (an uncompressed chunk opened in place where its sealed bytes
	// were read: sealedRoom). Errors wrapping keys.ErrAuth mean damaged
	// data. Unless decoded is nil, it may call it, once the chunk is
	// authenticated, with each longer prefix of the result that is final
	// as it decodes the rest into the same room (repo.Area.ChunkIntoSteps),
	// and may fail after.
	ChunkIntoSteps(ctx context.Context, dst []byte, id keys.ID, decoded func(prefix []byte)) ([]byte, error)
}

// Point is one recovery point to serve.
type Point struct {
	ID      keys.ID
	Machine string
	Time    time.Time
	// Root is a tree part holding exactly one node, of type tree.Dir, named
	// "root": the point's top level (its Parts list the entries; backing up
	// /home/alice gives top-level entry "home" containing "alice").
	Root keys.ID
}

// Options tune a mount. The root constructors use CacheBytes, ReadAhead,
// the image options and Logger; Mount uses NoXattrs and Logger.
type Options struct {
	// CacheBytes bounds the mount's caches in memory together (default
	// 320 MiB when 0, azmount's --cache-size), shared as MemoryShares says: decrypted chunks and
	// decoded tree parts here, and the pack segments of a source that
	// reads through them (repo.Area.FetchPackSegments, set by its opener).
	CacheBytes int64
	// ReadAhead is how many chunks are fetched ahead for sequential
	// readers (default 4 when 0; negative disables read-ahead).
	ReadAhead int
	// NoXattrs promises that no served point holds any xattr: xattr
	// requests are answered with ENOSYS once so the kernel stops asking.
	NoXattrs bool
	// NoImageContents hides the NAME.contents directory that shows,
	// beside each backed-up file holding a partition table, a LUKS
	// volume or an ext4 or FAT file system, what it holds.
	NoImageContents bool
	// LUKSKeys are the passphrases and key files' contents tried on each
	// LUKS volume in an image. They stay in memory only.
	LUKSKeys [][]byte
	// AllowOther lets users other than the one who mounted use the mount
	// (FUSE's allow_other); the kernel still checks each file's mode.
	AllowOther bool
	// Logger receives load failures, damage once per object ID, and
	// Mount's debug messages (default: discard).
	Logger *slog.Logger
}

const (
	defaultCacheBytes = 320 << 20 // as azmount's --cache-size
	defaultReadAhead  = 4
)

// MemoryShares divides a mount's memory bound (Options.CacheBytes) among
// its caches: a twentieth for pack segments, a tenth for decoded tree
// parts, the rest for decrypted chunks; of the default 320 MiB, 16 MiB (four
// segments), 32 MiB and 272 MiB. Of the chunks' share, an eighth holds disk
// images' windows of blocks (imageWindow; 34 MiB of the default), and of
// the rest an eighth holds the buffers of evicted chunks kept for the next
// loads and three quarters the chunks cached (chunkShares). It is the one
// place that bound is divided.
func MemoryShares(total int64) (chunks, parts, segments int64) {
	segments, parts = total/20, total/10
	return total - segments - parts, parts, segments
}

// heapOverhead is the heap a mount allows itself beyond its caches'
// bound (MemoryLimit): chunks being loaded, FUSE requests, inodes, the
// index, and the garbage the collector has not freed yet. With the chunk
// buffers recycled (chunks.go) little garbage is made, and the process's
// peak resident memory stays within the bound plus 64 MiB (the binary and
// the runtime's own take the rest).
const heapOverhead = 48 << 20

// MemoryLimit returns the soft limit of the Go heap (debug.SetMemoryLimit)
// of a mount whose caches are bounded by cacheBytes (Options.CacheBytes):
// that bound plus heapOverhead, less the chunk cache's and its kept
// buffers' shares where the chunk buffers lie outside the heap
// (chunkBuffersOffHeap): those are bounded exactly by the cache.
func MemoryLimit(cacheBytes int64) int64 {
	if cacheBytes == 0 {
		cacheBytes = defaultCacheBytes
	}
	limit := cacheBytes + heapOverhead
	if chunkBuffersOffHeap {
		cached, kept, _ := chunkShares(cacheBytes)
		limit -= cached + kept
	}
	return limit
}

// chunkShares divides the chunks' share of the memory bound cacheBytes
// (MemoryShares): an eighth for disk images' windows, and of the rest an
// eighth for the buffers of evicted chunks kept for reuse and the cache of
// decrypted chunks. Where the chunk buffers lie outside the Go heap, the
// cache takes three quarters, and the heap's limit leaves both out
// (MemoryLimit): a dropped buffer is unmapped, no garbage. Else the cache
// takes five eighths and a quarter is left free, the heap's room for
// garbage within MemoryLimit: a cp -a of the bench corpus at --cache-size
// 256MiB ran 26 collections against the limit so, 43 with three quarters
// cached and a quarter kept on the heap (and VmHWM 327 MiB, over the
// bound + 64 MiB).
func chunkShares(cacheBytes int64) (cached, kept, windows int64) {
	chunks, _, _ := MemoryShares(cacheBytes)
	windows = chunks / 8
	rest := chunks - windows
	if chunkBuffersOffHeap {
		return rest * 3 / 4, rest / 8, windows
	}
	return rest * 5 / 8, rest / 8, windows
}

// loadsInFlight is the most chunk loads a mount runs at once, for readers
// and read-ahead together (issue 12: memory for that many chunks being
// fetched and decoded): twice the read-ahead, and never less than two, so
// that a read loads the chunks of its range in parallel.
func loadsInFlight(readAhead int) int { return max(2*readAhead, 2) }

// errBadRoot reports a point whose root part is not a single directory
// named "root".
var errBadRoot = errkind.New(errkind.Damaged, "malformed point root")

// vault is what all nodes of one mount share.
type vault struct {
	src       Source
	chunks    *lru.Cache[keys.ID, *chunk]
	free      *buffers // buffers of chunks the cache let go, for the next loads
	parts     *partCache
	readAhead int
	log       *slog.Logger
	// damaged holds the IDs of damaged objects already logged.
	damaged sync.Map
	images  *images
}

// newVault returns the state shared by the nodes of a mount of src, with
// opts' defaults applied.
func newVault(src Source, opts Options) *vault {
	cacheBytes := opts.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = defaultCacheBytes
	}
	_, partCacheBytes, _ := MemoryShares(cacheBytes)
	readAhead := opts.ReadAhead
	if readAhead == 0 {
		readAhead = defaultReadAhead
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cached, kept, windowBytes := chunkShares(cacheBytes)
	free := newBuffers(kept)
	// A buffer counts for its capacity, which a recycled one may have in
	// excess of the chunk (sizeClass).
	chunks := lru.New[keys.ID](cached, func(c *chunk) int64 { return int64(cap(c.buf)) })
	chunks.OnEvict(func(c *chunk) { c.unpin(free) })
	chunks.LimitLoads(loadsInFlight(readAhead))
	return &vault{
		src:       src,
		chunks:    chunks,
		free:      free,
		parts:     newPartCache(src, partCacheBytes),
		readAhead: max(readAhead, 0),
		log:       logger,
		images:    newImages(opts, windowBytes, loadsInFlight(readAhead)),
	}
}

// point is one served recovery point.
type point struct {
	v  *vault
	id keys.ID
}

// rootDir loads the point's root part and checks its shape.
func (p *point) rootDir(ctx context.Context, rootID keys.ID) (*tree.Node, error) {
	part, err := p.v.parts.get(ctx, rootID)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", p.id.Short(), err)
	}
	if len(part.Nodes) != 1 || part.Nodes[0].Type != tree.Dir || part.Nodes[0].Name != "root" {
		return nil, fmt.Errorf("point %s: root part %s: %w", p.id.Short(), rootID.Short(), errBadRoot)
	}
	return &part.Nodes[0], nil
}

// NewPointRoot returns the root node of a mount showing one point: the root
// is the point's top-level directory. It loads the point's root part to
// check it.
func NewPointRoot(src Source, p Point, opts Options) (gofs.InodeEmbedder, error) {
	pt := &point{v: newVault(src, opts), id: p.ID}
	root, err := pt.rootDir(context.Background(), p.Root)
	if err != nil {
		return nil, fmt.Errorf("new point root: %w", err)
	}
	d := newPointDir(pt, "", p.Root)
	d.setMeta(root)
	return d, nil
}

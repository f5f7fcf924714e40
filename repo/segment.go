package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
)

// Pack segments: over a network every request costs a round trip, and a
// reader that wants one small blob (a small file, a tree part) soon wants
// the blobs written next to it. With segments on, a small blob is read from
// the aligned segmentSize span of its pack it lies in (its "segment"),
// which is fetched whole, in one request, the first time any of its blobs
// is wanted: copying a tree of small files costs a request per 4 MiB of
// packs instead of one per file. A segment is kept whole in the vault's
// cache (one file per 4 MiB, not one per blob) and the last few in memory.
//
// A segment is never trusted as a whole: every blob cut from it is
// authenticated under its own ID, as a blob fetched alone is. A blob that
// fails in a segment read from the cache drops it, and the segment is
// fetched from the storage again (and cached); a blob that fails in a
// segment fresh from the storage is fetched alone from where the index says
// it is. A small blob that straddles the end of its segment is fetched
// alone too.
const (
	// segmentSize is the aligned span of a pack fetched for a small blob.
	segmentSize = 4 << 20
	// segmentedBlob bounds the blobs read from segments: a larger one is a
	// large request already, and is fetched (and cached) alone.
	segmentedBlob = 512 << 10
	// DefaultSegmentMemory is the memory FetchPackSegments is given where
	// no bound is set for it: four segments (a mount's share of its
	// default --cache-size, fs.MemoryShares, is the same).
	DefaultSegmentMemory = 4 * segmentSize
)

// segments reads small blobs through pack segments, the last ones read kept
// in memory (a cache/lru, under its rule: a fetch goes on while any reader
// waits for it).
type segments struct {
	v    *Area
	kept *lru.Cache[segmentKey, *segment]
}

// segmentKey names segment n (bytes [n*segmentSize, (n+1)*segmentSize)) of
// a pack.
type segmentKey struct {
	pack keys.ID
	n    int64
}

// cacheKey is the segment's name in the vault's cache.
func (k segmentKey) cacheKey() string { return fmt.Sprintf("seg-%s-%d", k.pack, k.n) }

type segment struct {
	key    segmentKey
	data   []byte // shorter than segmentSize at the end of a pack
	cached bool   // read from the cache, not fetched from the storage
}

// FetchPackSegments makes the vault read small blobs through pack segments
// (see segments), kept in its cache when it has one (SetCache), and the
// last ones read in at most memBytes of memory. It pays when requests are
// dear: a vault over a network. Call it before any concurrent use.
func (v *Area) FetchPackSegments(memBytes int64) {
	v.segments = &segments{v: v, kept: lru.New[segmentKey](memBytes, func(s *segment) int64 { return int64(len(s.data)) })}
}

// segmentOf returns the segment that holds the blob at loc whole, and the
// blob's offset in it, or ok false for a blob read alone.
func segmentOf(loc index.Location) (key segmentKey, rel int64, ok bool) {
	off, length := int64(loc.Offset), int64(loc.Length)
	key = segmentKey{pack: loc.Pack, n: off / segmentSize}
	rel = off - key.n*segmentSize
	return key, rel, length <= segmentedBlob && rel+length <= segmentSize
}

// loadBlob appends the plaintext of the small blob at loc to dst (as
// OpenBlobInto) through its segment, or reports ok false for a blob read
// alone (larger, or straddling its segment's end). When the segment cannot
// be had, or the blob in the storage's copy of it does not authenticate,
// the blob is fetched alone, and not cached: its segment is, once it can
// be had.
func (s *segments) loadBlob(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID, loc index.Location) (plain []byte, ok bool, err error) {
	key, rel, ok := segmentOf(loc)
	if !ok {
		return nil, false, nil
	}
	end := rel + int64(loc.Length)
	for {
		seg, err := s.get(ctx, key)
		if err != nil {
			break
		}
		if end <= int64(len(seg.data)) {
			plain, err = s.v.OpenBlobInto(dst, kind, id, append([]byte(nil), seg.data[rel:end]...))
			if !errors.Is(err, ErrDamaged) {
				return plain, true, err
			}
		}
		// Damaged, or shorter than the index says. A copy from the cache
		// is dropped and the storage's fetched (and cached) instead; the
		// storage's own copy is kept for its other blobs.
		if !seg.cached {
			break
		}
		s.drop(seg)
	}
	plain, err = s.v.fetchBlob(ctx, dst, kind, id, loc, false, nil)
	return plain, true, err
}

// get returns segment key: kept in memory, else from the cache, else
// fetched from the storage (and cached), once however many readers want it
// at the same time.
func (s *segments) get(ctx context.Context, key segmentKey) (*segment, error) {
	return s.kept.GetOrLoad(ctx, key, func(ctx context.Context) (*segment, error) { return s.load(ctx, key) })
}

// load reads segment key from the cache or, failing that, the storage.
func (s *segments) load(ctx context.Context, key segmentKey) (*segment, error) {
	if c := s.v.cache; c != nil {
		if data, ok := c.Get(key.cacheKey()); ok {
			return &segment{key: key, data: data, cached: true}, nil
		}
	}
	data, err := s.v.st.Load(ctx, dataName(key.pack), key.n*segmentSize, segmentSize)
	if err != nil {
		return nil, packRangeError(fmt.Sprintf("load segment %d", key.n), key.pack, err)
	}
	if c := s.v.cache; c != nil {
		c.Put(key.cacheKey(), data)
	}
	return &segment{key: key, data: data}, nil
}

// drop forgets seg, in memory and in the cache, so that its next reader
// fetches it again; unless another reader has already replaced it, whose
// copy stays.
func (s *segments) drop(seg *segment) {
	newer := s.kept.Discard(seg.key, func(kept *segment) bool { return kept == seg })
	if c := s.v.cache; c != nil && !newer {
		c.Remove(seg.key.cacheKey())
	}
}

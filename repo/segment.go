package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

// Pack segments: over a network every request costs a round trip, and a
// reader that wants one small blob (a small file, a tree part) soon wants
// the blobs written next to it. With segments on, a small blob missing from
// the vault's cache is fetched with the whole aligned segmentSize span of
// its pack it starts in, in one request, and every blob of that span goes
// into the cache: copying a tree of small files costs a request per 4 MiB
// of packs instead of one per file, and no byte is fetched twice however
// the reader jumps around (the cache holds what was fetched). The blobs'
// places come from the pack's trailer, fetched once per pack. Whatever a
// damaged or malicious trailer says, a blob is authenticated under its own
// ID when it is read from the cache, and one that fails is fetched alone
// from where the index says it is.
const (
	// segmentSize is the span of a pack fetched for a small blob.
	segmentSize = 4 << 20
	// segmentedBlob bounds the blobs fetched with their segment: a larger
	// one is a large request already, and is fetched alone.
	segmentedBlob = 512 << 10
	// trailersKept bounds the pack trailers kept in memory.
	trailersKept = 64
	// segmentsKept bounds the fetched segments remembered (16 GiB of packs).
	segmentsKept = 4096
)

// segments fetches pack segments into a vault's cache.
type segments struct {
	v *Vault

	mu       sync.Mutex
	trailers map[keys.ID]*trailerFetch // at most trailersKept
	fetches  map[segmentKey]*segmentFetch
	// fetched holds segments already brought in (at most segmentsKept): a
	// blob of theirs missing from the cache now (evicted, or damaged) is
	// fetched alone.
	fetched map[segmentKey]bool
}

type segmentKey struct {
	pack keys.ID
	n    int64 // offset / segmentSize
}

// trailerFetch is a pack's trailer, sorted by offset, once fetched.
type trailerFetch struct {
	done    chan struct{}
	entries []pack.Entry
	err     error
}

// segmentFetch is a segment being fetched: done is closed when its blobs
// are in the cache (or err says why not).
type segmentFetch struct {
	done chan struct{}
	err  error
}

// FetchPackSegments makes the vault fetch a small blob missing from its
// cache together with the blobs around it in its pack, and keep them all in
// the cache (see segments). It needs a cache (SetCache), and pays when
// requests are dear: a vault over a network. Call it before any concurrent
// use.
func (v *Vault) FetchPackSegments() {
	v.segments = &segments{v: v, trailers: make(map[keys.ID]*trailerFetch), fetches: make(map[segmentKey]*segmentFetch), fetched: make(map[segmentKey]bool)}
}

// fetch brings the segment holding the blob at loc into the cache and
// returns the blob's sealed bytes, or ok false when the segment cannot be
// used (the caller then fetches the blob alone).
func (s *segments) fetch(ctx context.Context, id keys.ID, off, length int64, p keys.ID) (sealed []byte, ok bool) {
	if length > segmentedBlob {
		return nil, false
	}
	entries, err := s.trailer(ctx, p)
	if err != nil {
		return nil, false
	}
	key := segmentKey{pack: p, n: off / segmentSize}
	s.mu.Lock()
	if s.fetched[key] {
		s.mu.Unlock()
		return nil, false
	}
	f, waiting := s.fetches[key]
	if !waiting {
		f = &segmentFetch{done: make(chan struct{})}
		s.fetches[key] = f
	}
	s.mu.Unlock()
	if !waiting {
		f.err = s.load(ctx, p, key, entries)
		s.mu.Lock()
		delete(s.fetches, key)
		if f.err == nil {
			if len(s.fetched) >= segmentsKept {
				clear(s.fetched)
			}
			s.fetched[key] = true
		}
		s.mu.Unlock()
		close(f.done)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, false
	}
	if f.err != nil {
		return nil, false
	}
	b, ok := s.v.cache.Get(id.String())
	if !ok || len(b) != int(length) {
		return nil, false // not where the trailer said, or the cache refused it
	}
	return b, true
}

// load fetches the blobs of pack p that start in segment key, as one range,
// into the cache.
func (s *segments) load(ctx context.Context, p keys.ID, key segmentKey, entries []pack.Entry) error {
	lo := sort.Search(len(entries), func(i int) bool { return int64(entries[i].Offset) >= key.n*segmentSize })
	hi := sort.Search(len(entries), func(i int) bool { return int64(entries[i].Offset) >= (key.n+1)*segmentSize })
	if lo == hi {
		return errors.New("no blob starts in the segment")
	}
	start := int64(entries[lo].Offset)
	end := int64(entries[hi-1].Offset) + int64(entries[hi-1].Length)
	b, err := s.v.st.Load(ctx, dataName(p), start, end-start)
	if err != nil {
		return err
	}
	for _, e := range entries[lo:hi] {
		o, n := int64(e.Offset)-start, int64(e.Length)
		if o+n > int64(len(b)) {
			break // a truncated pack
		}
		s.v.cache.Put(e.ID.String(), b[o:o+n])
	}
	return nil
}

// trailer returns pack p's trailer sorted by offset, fetching it once
// however many readers want it at the same time.
func (s *segments) trailer(ctx context.Context, p keys.ID) ([]pack.Entry, error) {
	s.mu.Lock()
	t, waiting := s.trailers[p]
	if !waiting {
		if len(s.trailers) >= trailersKept {
			for k, old := range s.trailers { // drop a fetched one, any
				select {
				case <-old.done:
					delete(s.trailers, k)
				default:
					continue
				}
				break
			}
		}
		t = &trailerFetch{done: make(chan struct{})}
		s.trailers[p] = t
	}
	s.mu.Unlock()
	if !waiting {
		entries, _, err := s.v.PackTrailer(ctx, p)
		if err != nil {
			t.err = fmt.Errorf("segments of pack %s: %w", p.Short(), err)
			s.mu.Lock()
			delete(s.trailers, p) // a later reader tries again
			s.mu.Unlock()
		} else {
			sort.Slice(entries, func(i, j int) bool { return entries[i].Offset < entries[j].Offset })
			t.entries = entries
		}
		close(t.done)
	}
	select {
	case <-t.done:
		return t.entries, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

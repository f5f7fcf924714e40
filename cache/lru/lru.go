// Package lru provides azfs's one in-memory read cache: a byte-bounded LRU
// of immutable values in which concurrent loads of the same missing key are
// merged into one, under one cancellation rule (GetOrLoad): a load survives
// the cancellation of any single waiter and is abandoned only when all its
// waiters have gone. The mount's decrypted chunks and decoded tree parts
// (package fs) and a vault's pack segments (package repo) are cached in it.
//
// It is modelled after restic's internal/bloblru: entries are kept in a
// simplelru list whose eviction callback maintains the byte count, and the
// least recently used entries are evicted while the total exceeds the bound.
//
// A cache may bound its loads in flight (LimitLoads): they then run on a few
// goroutines that stay for the next load, loads a caller waits for before
// read-ahead (Prefetch).
package lru

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache is a least-recently-used cache of values, bounded by the total of
// their sizes as its size function counts them (per-entry bookkeeping is
// not counted). Cached values are shared with every caller and must not be
// modified.
//
// Cache is safe for concurrent use.
type Cache[K comparable, V any] struct {
	maxBytes int64
	size     func(V) int64
	evicted  func(V) // OnEvict's; called with mu held

	mu       sync.Mutex
	lru      *simplelru.LRU[K, V]
	bytes    int64 // total size of the values in lru, kept by the eviction callback
	inflight map[K]*call[K, V]
	loaders  loaders[K, V] // guarded by mu
}

// call is a load in progress, shared by all callers waiting for the key.
type call[K comparable, V any] struct {
	done    chan struct{} // closed once value and err are set
	value   V
	err     error
	waiters int                // callers still waiting; guarded by Cache.mu
	cancel  context.CancelFunc // cancels the load's context

	// What runs the load, and whether it waits in Cache.loaders' queue
	// of read-ahead (guarded by Cache.mu).
	key    K
	ctx    context.Context
	load   func(context.Context) (V, error)
	queued bool
	// published is set once the load handed its value out early
	// (Publisher); guarded by Cache.mu.
	published bool
}

// New returns a Cache holding values of at most maxBytes bytes in total, a
// value's bytes being what size returns for it. If maxBytes is <= 0,
// nothing is cached, but GetOrLoad still merges concurrent loads.
func New[K comparable, V any](maxBytes int64, size func(V) int64) *Cache[K, V] {
	c := &Cache[K, V]{maxBytes: maxBytes, size: size, inflight: make(map[K]*call[K, V])}
	// The entry count is effectively unbounded; Add enforces the byte bound.
	l, err := simplelru.NewLRU(math.MaxInt, func(_ K, v V) {
		c.bytes -= size(v)
		if c.evicted != nil {
			c.evicted(v)
		}
	})
	if err != nil { // NewLRU only fails for a non-positive size.
		panic(fmt.Sprintf("lru: %v", err))
	}
	c.lru = l
	return c
}

// NewBytes returns a Cache of byte slices, each counted by its length.
func NewBytes[K comparable](maxBytes int64) *Cache[K, []byte] {
	return New[K](maxBytes, func(b []byte) int64 { return int64(len(b)) })
}

// OnEvict makes the cache call f with each value that leaves it: evicted,
// replaced (Add) or dropped (Discard). It is not called for a value that
// was never cached (too large, or a cache that caches nothing). f runs with
// the cache locked: it must be quick and must not use the cache. Values
// with an owner that recycles them (the mount's chunk buffers) are handed
// back this way. Call it before any other use.
func (c *Cache[K, V]) OnEvict(f func(V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evicted = f
}

// Get returns the value cached for key, marking it as most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(key)
}

// Add caches value under key, replacing any previous value, and evicts the
// least recently used entries until the total size is within the bound.
// Values larger than the bound are not cached (and a previous value for key
// is dropped). Add keeps value; the caller must not modify it afterwards.
func (c *Cache[K, V]) Add(key K, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(key, value)
}

// add implements Add; c.mu must be held.
func (c *Cache[K, V]) add(key K, value V) {
	c.lru.Remove(key)
	size := c.size(value)
	if c.maxBytes <= 0 || size > c.maxBytes {
		return
	}
	c.lru.Add(key, value)
	c.bytes += size
	for c.bytes > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// GetOrLoad returns the value cached for key or, if there is none, the
// result of load. Concurrent calls for the same key share a single call of
// load: a successful result is cached and returned to all of them, an error
// is returned to all of them and not cached.
//
// load runs on its own goroutine (one of LimitLoads' when set) with a
// context that carries ctx's values but not its cancellation. A caller
// whose ctx is done stops waiting and returns ctx.Err() without affecting
// the others; once every caller waiting for a load has given up, the load's
// context is cancelled. A load Prefetch queued that a caller now waits for
// runs before the other read-ahead.
func (c *Cache[K, V]) GetOrLoad(ctx context.Context, key K, load func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	if v, ok := c.lru.Get(key); ok {
		c.mu.Unlock()
		return v, nil
	}
	cl, ok := c.inflight[key]
	switch {
	case !ok:
		cl = c.newCall(ctx, key, load)
		c.loaders.start(c, cl, false)
	case cl.queued:
		c.loaders.hurry(cl)
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.value, cl.err
	case <-ctx.Done():
		c.mu.Lock()
		cl.waiters--
		if cl.waiters == 0 && !cl.published {
			// Nobody wants the result any more. Later callers start afresh
			// instead of joining a cancelled load.
			cl.cancel()
			c.forget(key, cl)
		}
		c.mu.Unlock()
		var zero V
		return zero, ctx.Err()
	}
}

// Prefetch starts loading key in the background, as GetOrLoad would but
// with nobody waiting, unless it is cached or being loaded. With loads
// limited (LimitLoads), the load waits behind those callers wait for, and
// Prefetch reports false, starting nothing, when as many read-ahead loads
// as the limit already wait. The load's context carries ctx's values only.
func (c *Cache[K, V]) Prefetch(ctx context.Context, key K, load func(context.Context) (V, error)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(key) || c.inflight[key] != nil {
		return true
	}
	if c.loaders.limit > 0 && len(c.loaders.aheads) >= c.loaders.limit {
		return false
	}
	c.loaders.start(c, c.newCall(ctx, key, load), true)
	return true
}

// Loads returns the number of loads started or queued and not done.
func (c *Cache[K, V]) Loads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

// newCall registers a load of key; c.mu must be held.
func (c *Cache[K, V]) newCall(ctx context.Context, key K, load func(context.Context) (V, error)) *call[K, V] {
	loadCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl := &call[K, V]{done: make(chan struct{}), cancel: cancel, key: key, load: load}
	cl.ctx = context.WithValue(loadCtx, publishKey[V]{}, func(v V) { c.publish(cl, v) })
	c.inflight[key] = cl
	return cl
}

// publishKey is the key of the function a load's context carries to
// publish its value early (Publisher).
type publishKey[V any] struct{}

// Publisher returns, when ctx is the context of a load GetOrLoad or
// Prefetch runs for a Cache of values of type V, the function that hands
// the load's value out early: to the callers waiting for it and to the
// cache at once, while the load goes on. A value handed out so must be
// usable as it is (its owner makes its readers wait for what is not yet
// ready: the mount's chunks as they are decoded), and what the load
// returns after is dropped: a failure after publishing is the load's to
// handle (Discard). The load keeps its place among LimitLoads' until it
// returns. Calls after the first do nothing.
func Publisher[V any](ctx context.Context) (publish func(V), ok bool) {
	publish, ok = ctx.Value(publishKey[V]{}).(func(V))
	return publish, ok
}

// publish hands v out as cl's value (Publisher).
func (c *Cache[K, V]) publish(cl *call[K, V], v V) {
	c.mu.Lock()
	if cl.published {
		c.mu.Unlock()
		return
	}
	cl.published = true
	c.forget(cl.key, cl)
	cl.value = v
	c.add(cl.key, v)
	c.mu.Unlock()
	close(cl.done)
}

// runLoad runs load for cl and publishes its result, unless it published
// one early (Publisher). A load whose waiters all gave up before it
// started is not run.
func (c *Cache[K, V]) runLoad(cl *call[K, V]) {
	var value V
	err := cl.ctx.Err()
	if err == nil {
		value, err = cl.load(cl.ctx)
	}
	cl.cancel()

	c.mu.Lock()
	if cl.published {
		c.mu.Unlock()
		return
	}
	c.forget(cl.key, cl)
	cl.value, cl.err = value, err
	if err == nil {
		c.add(cl.key, value)
	}
	c.mu.Unlock()
	close(cl.done)
}

// forget removes cl from the loads in progress unless it has already been
// replaced by a newer load for key; c.mu must be held.
func (c *Cache[K, V]) forget(key K, cl *call[K, V]) {
	if c.inflight[key] == cl {
		delete(c.inflight, key)
	}
}

// Len returns the number of cached values.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes returns the total size of the cached values.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Discard drops the value cached for key if bad reports it to be the one
// the caller found unusable (a copy that no longer authenticates), so that
// the next GetOrLoad loads it again. It reports whether the cache holds, or
// is loading, another value for key: a newer copy some other caller has
// already fetched, which stays.
func (c *Cache[K, V]) Discard(key K, bad func(V) bool) (newer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.lru.Peek(key); ok {
		if !bad(v) {
			return true
		}
		c.lru.Remove(key)
	}
	return c.inflight[key] != nil
}

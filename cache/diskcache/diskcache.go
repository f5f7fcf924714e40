// Package diskcache is a byte-bounded, persistent store of immutable byte
// objects in a directory, kept across processes: the mount's cache of what it
// fetched from a remote vault.
//
// Each object is one file named by its key, written to a temporary file and
// renamed into place, so a reader sees all of an object or none of it. The
// total length of the objects is kept within a bound by evicting the least
// recently used ones. Recency is the file's modification time: a Put writes
// it and the first hit in a process sets it to the present (later hits
// only reorder the in-memory list, so a hot object costs no inode write per
// read), and Open rebuilds the order, and the byte count, from one scan of
// the directory. Memory is one small entry per object (its key and size),
// and one more per object used by this process.
//
// The bound counts the objects' bytes, not the file system's block rounding
// or the directory's own size.
//
// The cache is best effort. A failed write (a full disk, a read-only or
// vanished directory) is swallowed: the object is simply not cached. A file
// that cannot be read, or whose length changed since it was written, is a
// miss, and is dropped. Get does not check content: callers store objects
// that authenticate themselves, and Remove one that fails to.
//
// # Security
//
// The azfs mount stores only sealed blobs and index files, exactly as they
// are in the vault: encrypted and authenticated under keys the cache never
// sees, bound to their IDs, and opened again on every read. The cache holds
// no plaintext and no keys, and whoever can change its files can only make
// reads fall back to the vault. The directory is made 0700 and the files are
// 0600, so other users do not even learn which objects were read.
//
// One process at a time uses a directory: Open takes an exclusive lock on
// it and fails with ErrLocked while another process holds it.
package diskcache

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
)

// ErrLocked reports a cache directory in use by another process.
var ErrLocked = errkind.New(errkind.Busy, "the cache directory is in use by another process")

// File names in the directory that are not objects. Keys never begin with
// a dot.
const (
	lockName  = ".lock"
	tempBegin = ".tmp-"
)

// maxKeyLen keeps a key within one file name.
const maxKeyLen = 200

// Options configure a Cache.
type Options struct {
	// MaxBytes bounds the total length of the cached objects. An object
	// longer than the bound is not cached.
	MaxBytes int64
	// OnPutError, if set, is called with the first error that keeps a Put
	// from storing its object (later ones are only counted in Stats).
	OnPutError func(error)
}

// Cache is an open cache directory. It is safe for concurrent use.
type Cache struct {
	dir  string
	opts Options
	lock *os.File // holds the directory's flock until Close

	mu  sync.Mutex
	lru *simplelru.LRU[string, int64] // key → object length, least recent first
	// touched holds the keys whose file's mtime this process has set.
	touched map[string]struct{}
	bytes   int64 // total of the lengths in lru
	closed  bool

	hits, misses, puts, putErrors, evictions atomic.Uint64
	reportOnce                               sync.Once
}

// Stats are counters since Open and the cache's present size.
type Stats struct {
	Objects   int
	Bytes     int64
	Hits      uint64
	Misses    uint64
	Puts      uint64 // objects stored
	PutErrors uint64 // objects not stored because a write failed
	Evictions uint64
}

// Open opens the cache in dir, creating the directory (0700) if needed,
// locks it for this process, removes temporary files a crash left behind
// and evicts objects beyond opts.MaxBytes.
func Open(dir string, opts Options) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open disk cache %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open disk cache %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open disk cache %s: %w", dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open disk cache %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("open disk cache %s: lock: %w", dir, err)
	}
	c := &Cache{dir: dir, opts: opts, lock: lock, touched: make(map[string]struct{})}
	// The entry count is unbounded; Put and Open enforce the byte bound.
	c.lru, err = simplelru.NewLRU[string, int64](math.MaxInt, nil)
	if err != nil { // NewLRU only fails for a non-positive size.
		panic(fmt.Sprintf("diskcache: %v", err))
	}
	if err := c.scan(); err != nil {
		lock.Close()
		return nil, err
	}
	c.mu.Lock()
	c.evict()
	c.mu.Unlock()
	return c, nil
}

// scan loads the directory's objects into the LRU, least recently used
// (oldest modification time) first.
func (c *Cache) scan() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("open disk cache %s: %w", c.dir, err)
	}
	type object struct {
		key   string
		size  int64
		mtime time.Time
	}
	var objects []object
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempBegin) {
			_ = os.Remove(filepath.Join(c.dir, name))
			continue
		}
		if !validKey(name) || !e.Type().IsRegular() {
			continue // the lock, or nothing this package wrote
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		objects = append(objects, object{name, fi.Size(), fi.ModTime()})
	}
	slices.SortFunc(objects, func(a, b object) int {
		return cmp.Or(a.mtime.Compare(b.mtime), strings.Compare(a.key, b.key))
	})
	for _, o := range objects {
		c.lru.Add(o.key, o.size)
		c.bytes += o.size
	}
	return nil
}

// validKey reports whether key can name an object: 1 to maxKeyLen
// characters of [A-Za-z0-9._-], not beginning with a dot.
func validKey(key string) bool {
	if key == "" || len(key) > maxKeyLen || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch ch := key[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '.', ch == '_', ch == '-':
		default:
			return false
		}
	}
	return true
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key) }

// Get returns the object stored under key. The caller owns the returned
// slice and may modify it. A hit makes the object the most recently used.
func (c *Cache) Get(key string) ([]byte, bool) {
	if !validKey(key) {
		c.misses.Add(1)
		return nil, false
	}
	c.mu.Lock()
	size, ok := c.lru.Get(key)
	closed := c.closed
	c.mu.Unlock()
	if !ok || closed {
		c.misses.Add(1)
		return nil, false
	}
	b, err := readExactly(c.path(key), size)
	if err != nil {
		c.Remove(key)
		c.misses.Add(1)
		return nil, false
	}
	c.mu.Lock()
	_, touched := c.touched[key]
	if !touched {
		c.touched[key] = struct{}{}
	}
	c.mu.Unlock()
	if !touched {
		// Recency for the next Open, once per process: the order Open
		// rebuilds is that of first use in each process, and an object
		// read again and again costs no inode write per read. Evicted
		// meanwhile is fine.
		now := time.Now()
		_ = os.Chtimes(c.path(key), now, now)
	}
	c.hits.Add(1)
	return b, true
}

// errLength reports a file whose length is not the object's.
var errLength = errors.New("length changed")

// readExactly reads the file at path, which must be size bytes long.
func readExactly(path string, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return nil, errLength
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Put stores b under key unless an object is stored there already (objects
// are immutable) or b is longer than the bound, evicting the least recently
// used objects beyond the bound. It does not keep b. A failure to write is
// counted, reported once through Options.OnPutError, and otherwise ignored.
func (c *Cache) Put(key string, b []byte) {
	size := int64(len(b))
	if !validKey(key) || size > c.opts.MaxBytes {
		return
	}
	c.mu.Lock()
	skip := c.closed || c.lru.Contains(key)
	c.mu.Unlock()
	if skip {
		return
	}
	tmp, err := c.writeTemp(b)
	if err != nil {
		c.putFailed(err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.lru.Contains(key) { // another Put of key won
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		_ = os.Remove(tmp)
		c.putFailed(fmt.Errorf("disk cache: %w", err))
		return
	}
	c.lru.Add(key, size)
	c.touched[key] = struct{}{} // written just now
	c.bytes += size
	c.puts.Add(1)
	c.evict()
}

// writeTemp writes b to a new temporary file (0600) in the directory, with
// the present time as its modification time, and returns its path. It does
// not sync: a file a crash truncates fails its reader's authentication and
// is dropped.
func (c *Cache) writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp(c.dir, tempBegin)
	if err != nil {
		return "", fmt.Errorf("disk cache: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The kernel stamps writes with a coarse clock; hits are stamped
		// with time.Now, and the two must order alike.
		now := time.Now()
		err = os.Chtimes(f.Name(), now, now)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("disk cache: %w", err)
	}
	return f.Name(), nil
}

func (c *Cache) putFailed(err error) {
	c.putErrors.Add(1)
	if c.opts.OnPutError != nil {
		c.reportOnce.Do(func() { c.opts.OnPutError(err) })
	}
}

// evict removes least recently used objects until the total is within the
// bound; c.mu must be held.
func (c *Cache) evict() {
	for c.bytes > c.opts.MaxBytes {
		key, size, ok := c.lru.RemoveOldest()
		if !ok {
			return
		}
		c.bytes -= size
		delete(c.touched, key)
		c.evictions.Add(1)
		_ = os.Remove(c.path(key))
	}
}

// Remove drops the object stored under key, if any.
func (c *Cache) Remove(key string) {
	if !validKey(key) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if size, ok := c.lru.Peek(key); ok {
		c.lru.Remove(key)
		c.bytes -= size
	}
	delete(c.touched, key)
	// A file that cannot be removed is no longer counted, nor served; the
	// next Open counts it again.
	_ = os.Remove(c.path(key))
}

// Stats returns the cache's counters and size.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Objects:   c.lru.Len(),
		Bytes:     c.bytes,
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Puts:      c.puts.Load(),
		PutErrors: c.putErrors.Load(),
		Evictions: c.evictions.Load(),
	}
}

// Close releases the directory for other processes. Later calls of Get
// miss and later Puts store nothing.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.lock.Close(); err != nil { // closing the descriptor drops the flock
		return fmt.Errorf("close disk cache %s: %w", c.dir, err)
	}
	return nil
}

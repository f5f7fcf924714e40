// Package objcache keeps a vault area's small immutable objects (sealed
// recovery points and retention tombstones) in one local file, so that
// listing ten thousand points reads one file instead of ten thousand
// objects from the storage.
//
// It holds the objects exactly as stored: whoever reads them authenticates
// them as it would the storage's copy, so a damaged or altered cache file
// costs a fetch, never a wrong answer. The file is read whole by Open and
// written whole (temporary file, fsync, rename; 0600 in a 0700 directory)
// by Close when something was added, holding only the entries used since
// Open: objects that left the vault leave the cache with the next write.
// Concurrent processes may share a file: the last to close wins, and the
// loser's additions are fetched again later.
package objcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/azfs/azfs/internal/errkind"
)

// magic starts every cache file; a file without it is ignored.
const magic = "azfs-objcache-1\n"

// maxEntry bounds one entry's key and value when reading a file, so a
// damaged length cannot make Open allocate without bound.
const maxEntry = 16 << 20

// Cache is an open cache file. It is safe for concurrent use.
type Cache struct {
	path string

	mu      sync.Mutex
	m       map[string][]byte
	used    map[string]bool
	changed bool
}

// Open reads the cache file at path; a missing, unreadable or damaged file
// gives an empty cache (or the entries before the damage).
func Open(path string) *Cache {
	c := &Cache{path: path, m: make(map[string][]byte), used: make(map[string]bool)}
	if b, err := os.ReadFile(path); err == nil {
		c.m, _ = Decode(b)
	}
	return c
}

// Get returns a copy of the object stored under key.
func (c *Cache) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[key]
	if !ok {
		return nil, false
	}
	c.used[key] = true
	return bytes.Clone(b), true
}

// Put stores a copy of b under key.
func (c *Cache) Put(key string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = bytes.Clone(b)
	c.used[key] = true
	c.changed = true
}

// Remove drops the object stored under key.
func (c *Cache) Remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok {
		delete(c.m, key)
		delete(c.used, key)
		c.changed = true
	}
}

// Close writes the entries used since Open to the file, if anything was
// added or removed. The cache stays usable.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.changed {
		return nil
	}
	keep := make(map[string][]byte, len(c.used))
	for k := range c.used {
		keep[k] = c.m[k]
	}
	if err := write(c.path, Encode(keep)); err != nil {
		return fmt.Errorf("object cache %s: %w", c.path, err)
	}
	c.changed = false
	return nil
}

// Encode returns the file form of m: the magic line, then for each entry
// its key and its value, each as a uvarint length and the bytes.
func Encode(m map[string][]byte) []byte {
	n := len(magic)
	for k, v := range m {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, magic...)
	for k, v := range m {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// ErrFormat reports a cache file that does not decode.
var ErrFormat = errkind.New(errkind.Damaged, "not an object cache file")

// Decode parses what Encode wrote. On damage it returns the entries before
// it and an error wrapping ErrFormat.
func Decode(b []byte) (map[string][]byte, error) {
	m := make(map[string][]byte)
	if !bytes.HasPrefix(b, []byte(magic)) {
		return m, fmt.Errorf("%w: no magic", ErrFormat)
	}
	b = b[len(magic):]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxEntry || n > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	for len(b) > 0 {
		k, ok := field()
		if !ok {
			return m, fmt.Errorf("%w: bad key", ErrFormat)
		}
		v, ok := field()
		if !ok {
			return m, fmt.Errorf("%w: bad value of %q", ErrFormat, k)
		}
		m[string(k)] = bytes.Clone(v)
	}
	return m, nil
}

// write replaces the file at path with b atomically.
func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".objcache-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

package repo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/azfs/azfs/cache/diskcache"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
)

// countingStorage counts the loads that reach the storage it wraps.
type countingStorage struct {
	storage.Storage
	loads atomic.Int64
}

func (s *countingStorage) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.loads.Add(1)
	return s.Storage.Load(ctx, name, off, length)
}

// writeBlobs stores blobs in v and flushes them.
func writeBlobs(t testing.TB, v *repo.Area, blobs []testBlob) {
	t.Helper()
	ctx := context.Background()
	w := v.NewWriter(ctx, 1)
	for _, b := range blobs {
		if _, err := w.Save(ctx, b.kind, b.id, b.plain); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// openCached opens the vault in st afresh, as a new mount would, with the
// disk cache in dir, and returns it with its index loaded, and the cache.
func openCached(t *testing.T, st storage.Storage, ks *keys.KeySet, dir string) (*repo.Area, *diskcache.Cache) {
	t.Helper()
	ctx := context.Background()
	c, err := diskcache.Open(dir, diskcache.Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	v, err := repo.Open(ctx, st, ks)
	if err != nil {
		t.Fatal(err)
	}
	v.SetCache(c)
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatalf("LoadIndex: %v", err)
	}
	return v, c
}

// loadAll loads every blob through v and compares its content.
func loadAll(t *testing.T, v *repo.Area, blobs []testBlob) {
	t.Helper()
	for i, b := range blobs {
		got, err := v.LoadBlob(context.Background(), b.kind, b.id)
		if err != nil {
			t.Fatalf("blob %d (%s %s): LoadBlob: %v", i, b.kind, b.id.Short(), err)
		}
		if !bytes.Equal(got, b.plain) {
			t.Fatalf("blob %d (%s %s): content differs (%d bytes, want %d)", i, b.kind, b.id.Short(), len(got), len(b.plain))
		}
	}
}

func TestDiskCacheServesBlobsAndIndex(t *testing.T) {
	st := &countingStorage{Storage: mem.New()}
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 3)
	writeBlobs(t, v, blobs)
	dir := t.TempDir()

	first, c := openCached(t, st, v.Keys(), dir)
	before := st.loads.Load()
	loadAll(t, first, blobs)
	if n := st.loads.Load() - before; n != int64(len(blobs)) {
		t.Errorf("first reads: %d storage loads, want %d (one per blob)", n, len(blobs))
	}
	// The blobs stay intact in the cache although LoadBlob decrypts in
	// place: a second pass through the same vault loads nothing.
	before = st.loads.Load()
	loadAll(t, first, blobs)
	if n := st.loads.Load() - before; n != 0 {
		t.Errorf("second pass: %d storage loads, want 0", n)
	}
	if s := c.Stats(); s.Objects != len(blobs)+1 { // and the index file
		t.Errorf("the cache holds %d objects, want %d blobs and 1 index file", s.Objects, len(blobs))
	}
	c.Close()

	// A new process: the index and every blob come from the disk cache.
	st.loads.Store(0)
	ctx := context.Background()
	second, err := repo.Open(ctx, st, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	opened := st.loads.Load() // the config
	c2, err := diskcache.Open(dir, diskcache.Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	second.SetCache(c2)
	if err := second.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	loadAll(t, second, blobs)
	if n := st.loads.Load() - opened; n != 0 {
		t.Errorf("a fresh vault with a warm disk cache: %d storage loads for the index and blobs, want 0", n)
	}
}

func TestDiskCacheDamageIsRefetched(t *testing.T) {
	st := &countingStorage{Storage: mem.New()}
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 2)
	writeBlobs(t, v, blobs)
	dir := t.TempDir()
	first, c := openCached(t, st, v.Keys(), dir)
	loadAll(t, first, blobs)
	c.Close()

	// One flipped bit, one truncated blob, a damaged index file, and a
	// blob swapped for another's sealed bytes of the same length.
	flip := func(name string) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flip(blobs[0].id.String())
	if err := os.Truncate(filepath.Join(dir, blobs[1].id.String()), 100); err != nil {
		t.Fatal(err)
	}
	idx := names(t, st, "index/")
	if len(idx) != 1 {
		t.Fatalf("%d index files, want 1", len(idx))
	}
	flip("index-" + filepath.Base(idx[0]))
	a, b := blobs[len(blobs)-2], blobs[len(blobs)-1] // two tree parts of equal length
	sa, err := os.ReadFile(filepath.Join(dir, a.id.String()))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.ReadFile(filepath.Join(dir, b.id.String()))
	if err != nil || len(sa) != len(sb) {
		t.Fatalf("tree parts of %d and %d bytes (%v): the swap needs equal lengths", len(sa), len(sb), err)
	}
	if err := os.WriteFile(filepath.Join(dir, a.id.String()), sb, 0o600); err != nil {
		t.Fatal(err)
	}
	const damaged = 4 // three blobs and the index file

	st.loads.Store(0)
	if _, err := repo.Open(context.Background(), st, v.Keys()); err != nil {
		t.Fatal(err)
	}
	opened := st.loads.Load() // what opening costs (the config)
	st.loads.Store(0)
	second, c := openCached(t, st, v.Keys(), dir)
	loadAll(t, second, blobs)
	c.Close()
	if n := st.loads.Load() - opened; n != damaged {
		t.Errorf("with %d damaged cache files: %d storage loads, want %d", damaged, n, damaged)
	}

	// Each damaged file was replaced by the storage's copy.
	st.loads.Store(0)
	third, _ := openCached(t, st, v.Keys(), dir)
	loadAll(t, third, blobs)
	if n := st.loads.Load() - opened; n != 0 {
		t.Errorf("after the repair: %d storage loads, want 0", n)
	}
}

// BenchmarkLoadBlob reads 1 MiB chunks from a local-directory vault and
// from a warm disk cache in front of a storage it does not touch: the
// mount's read path below its memory cache, for a local and a remote vault.
// Both read from the page cache; the difference is the cache's extra
// system calls (open, fstat, close and the recency stamp per hit).
func BenchmarkLoadBlob(b *testing.B) {
	ctx := context.Background()
	st, err := local.Create(filepath.Join(b.TempDir(), "vault"))
	if err != nil {
		b.Fatal(err)
	}
	v := newVault(b, st)
	var blobs []testBlob
	for i := range 64 {
		p := testfiles.RandomBytes(1<<20, uint64(i))
		blobs = append(blobs, testBlob{keys.KindData, v.Keys().ID(keys.KindData, p), p})
	}
	writeBlobs(b, v, blobs)
	run := func(b *testing.B, v *repo.Area) {
		b.SetBytes(1 << 20)
		for i := 0; b.Loop(); i++ {
			if _, err := v.LoadBlob(ctx, keys.KindData, blobs[i%len(blobs)].id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("local", func(b *testing.B) { run(b, reopen(b, v)) })
	b.Run("disk-cache", func(b *testing.B) {
		c, err := diskcache.Open(b.TempDir(), diskcache.Options{MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cached := reopen(b, v)
		cached.SetCache(c)
		for _, bl := range blobs { // warm
			if _, err := cached.LoadBlob(ctx, bl.kind, bl.id); err != nil {
				b.Fatal(err)
			}
		}
		warm := c.Stats().Misses
		run(b, cached)
		if n := c.Stats().Misses - warm; n != 0 {
			b.Fatalf("%d misses on a warm cache", n)
		}
	})
}

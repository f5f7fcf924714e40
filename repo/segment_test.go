package repo_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/azfs/azfs/cache/diskcache"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// byteCounter counts the loads that reach a storage and the bytes they
// return.
type byteCounter struct {
	storage.Storage
	loads, bytes atomic.Int64
}

func (s *byteCounter) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.loads.Add(1)
	b, err := s.Storage.Load(ctx, name, off, length)
	s.bytes.Add(int64(len(b)))
	return b, err
}

func (s *byteCounter) reset() {
	s.loads.Store(0)
	s.bytes.Store(0)
}

// smallBlobs returns n incompressible data blobs of size bytes.
func smallBlobs(t *testing.T, ks *keys.KeySet, n, size int) []testBlob {
	t.Helper()
	blobs := make([]testBlob, n)
	for i := range blobs {
		b := make([]byte, size)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		blobs[i] = testBlob{kind: keys.KindData, id: ks.ID(keys.KindData, b), plain: b}
	}
	return blobs
}

// segmented opens st afresh with the disk cache in dir and pack segments
// on, and resets st's counts. Close the cache before opening dir again.
func segmented(t *testing.T, st *byteCounter, ks *keys.KeySet, dir string) (*repo.Area, *diskcache.Cache) {
	t.Helper()
	v, c := openCached(t, st, ks, dir)
	v.FetchPackSegments(16 << 20)
	st.reset()
	return v, c
}

func reversed(blobs []testBlob) []testBlob {
	out := make([]testBlob, len(blobs))
	for i, b := range blobs {
		out[len(blobs)-1-i] = b
	}
	return out
}

// TestSegmentsSmallBlobs: reading 2,000 small blobs in any order costs a
// request per 4 MiB segment, plus one per blob straddling a segment's end;
// a fresh vault with the same disk cache reads them all without the
// storage, from one cache file per segment.
func TestSegmentsSmallBlobs(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 2000, 5000) // 10 MB: one pack, three segments
	writeBlobs(t, v, blobs)
	dir := t.TempDir()

	sv, c := segmented(t, st, v.Keys(), dir)
	loadAll(t, sv, reversed(blobs))
	loadAll(t, sv, blobs)
	if n := st.loads.Load(); n < 3 || n > 3+2 {
		t.Errorf("%d blobs read twice took %d storage loads, want 3 segments and at most 2 straddling blobs", len(blobs), n)
	}
	var stored int64
	for _, b := range blobs {
		stored += int64(len(b.plain))
	}
	if n := st.bytes.Load(); n > stored+stored/10 {
		t.Errorf("fetched %d bytes for %d bytes of blobs", n, stored)
	}
	if files, err := os.ReadDir(dir); err != nil || len(files) > 3+2+2 { // + index file, .lock
		t.Errorf("the disk cache holds %d files (%v), want about one per segment", len(files), err)
	}
	c.Close()

	again, _ := segmented(t, st, v.Keys(), dir)
	loadAll(t, again, blobs)
	if n := st.loads.Load(); n != 0 {
		t.Errorf("a fresh vault with a warm disk cache: %d storage loads, want 0", n)
	}
}

// TestSegmentsWithoutDiskCache: segments work in memory alone.
func TestSegmentsWithoutDiskCache(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 500, 5000) // one segment
	writeBlobs(t, v, blobs)
	sv := reopen(t, v)
	if err := sv.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	sv.FetchPackSegments(16 << 20)
	st.reset()
	loadAll(t, sv, blobs)
	if n := st.loads.Load(); n != 1 {
		t.Errorf("500 small blobs of one segment: %d loads, want 1", n)
	}
}

// TestSegmentsLargeBlobsAlone: a blob above the segment bound is fetched
// alone, as without segments.
func TestSegmentsLargeBlobsAlone(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 6, 1<<20)
	writeBlobs(t, v, blobs)
	sv, _ := segmented(t, st, v.Keys(), t.TempDir())
	loadAll(t, sv, blobs[2:3])
	if n := st.loads.Load(); n != 1 {
		t.Errorf("one large blob took %d loads, want 1", n)
	}
}

// TestSegmentsConcurrent: readers of one segment at once share its fetch.
func TestSegmentsConcurrent(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 500, 5000) // 2.5 MB: one segment
	writeBlobs(t, v, blobs)
	sv, _ := segmented(t, st, v.Keys(), t.TempDir())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { loadAll(t, sv, blobs[i*30:i*30+30]) })
	}
	wg.Wait()
	if n := st.loads.Load(); n != 1 {
		t.Errorf("16 concurrent readers of one segment: %d loads, want 1", n)
	}
}

// TestSegmentsDamagedCache: a damaged segment file in the disk cache is
// dropped and fetched again; every blob reads right.
func TestSegmentsDamagedCache(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 100, 5000)
	writeBlobs(t, v, blobs)
	dir := t.TempDir()
	first, c := segmented(t, st, v.Keys(), dir)
	loadAll(t, first, blobs[:1])
	c.Close()
	segs, err := filepath.Glob(filepath.Join(dir, "seg-*"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segment files %v (%v), want one", segs, err)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	again, c := segmented(t, st, v.Keys(), dir)
	loadAll(t, again, blobs)
	c.Close()
	if n := st.loads.Load(); n != 1 {
		t.Errorf("with a damaged segment file: %d loads, want 1 (the segment again)", n)
	}
	third, _ := segmented(t, st, v.Keys(), dir)
	loadAll(t, third, blobs)
	if n := st.loads.Load(); n != 0 {
		t.Errorf("after the repair: %d loads, want 0", n)
	}
}

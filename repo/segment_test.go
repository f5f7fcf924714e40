package repo_test

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"

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

// segmented opens st afresh with a disk cache in a new directory and pack
// segments on, and returns the vault and the storage's counts from then on.
func segmented(t *testing.T, st *byteCounter, ks *keys.KeySet) *repo.Vault {
	t.Helper()
	v, _ := openCached(t, st, ks, t.TempDir())
	v.FetchPackSegments()
	st.loads.Store(0)
	st.bytes.Store(0)
	return v
}

// TestSegmentsSmallBlobs: reading 2,000 small blobs in any order costs a
// request per 4 MiB segment (plus a pack's trailer), fetches no byte twice,
// and every blob is right.
func TestSegmentsSmallBlobs(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 2000, 5000) // 10 MB: one pack, three segments
	writeBlobs(t, v, blobs)

	sv := segmented(t, st, v.Keys())
	reversed := make([]testBlob, len(blobs))
	for i, b := range blobs {
		reversed[len(blobs)-1-i] = b
	}
	loadAll(t, sv, reversed)
	loadAll(t, sv, blobs)
	// Three segments, and the trailer's stat-less loads: footer and trailer.
	if n := st.loads.Load(); n != 3+2 {
		t.Errorf("%d blobs read twice took %d storage loads, want 5 (3 segments, footer, trailer)", len(blobs), n)
	}
	var stored int64
	for _, b := range blobs {
		stored += int64(len(b.plain))
	}
	if n := st.bytes.Load(); n > stored+stored/10 {
		t.Errorf("fetched %d bytes for %d bytes of blobs", n, stored)
	}
}

// TestSegmentsLargeBlobsAlone: a blob above the segment bound is fetched
// alone, as without segments.
func TestSegmentsLargeBlobsAlone(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 6, 1<<20)
	writeBlobs(t, v, blobs)
	sv := segmented(t, st, v.Keys())
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
	sv := segmented(t, st, v.Keys())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { loadAll(t, sv, blobs[i*30:i*30+30]) })
	}
	wg.Wait()
	if n := st.loads.Load(); n != 3 {
		t.Errorf("16 concurrent readers of one segment: %d loads, want 3 (footer, trailer, segment)", n)
	}
}

// garbling is a blob cache that keeps garbage in place of one blob, as a
// wrong trailer or a damaged disk would leave.
type garbling struct {
	repo.BlobCache
	bad string
}

func (g garbling) Put(key string, b []byte) {
	if key == g.bad {
		b = make([]byte, len(b))
	}
	g.BlobCache.Put(key, b)
}

// TestSegmentsDamagedCache: a blob that does not authenticate after its
// segment came in is fetched alone from where the index says, and read
// right.
func TestSegmentsDamagedCache(t *testing.T) {
	st := &byteCounter{Storage: mem.New()}
	v := newVault(t, st)
	blobs := smallBlobs(t, v.Keys(), 100, 5000)
	writeBlobs(t, v, blobs)
	sv, c := openCached(t, st, v.Keys(), t.TempDir())
	sv.SetCache(garbling{BlobCache: c, bad: blobs[5].id.String()})
	sv.FetchPackSegments()
	st.loads.Store(0)
	loadAll(t, sv, blobs)
	// Footer, trailer, the segment, and blob 5 alone.
	if n := st.loads.Load(); n != 4 {
		t.Errorf("%d loads, want 4", n)
	}
}

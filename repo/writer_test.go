package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/storagetest"
	"github.com/azfs/azfs/repo/tree"
)

type testBlob struct {
	kind  keys.Kind
	id    keys.ID
	plain []byte
}

// testBlobs returns big incompressible data blobs, small compressible ones
// and a few tree blobs, with their IDs under ks.
func testBlobs(ks *keys.KeySet, big int) []testBlob {
	var out []testBlob
	for i := range big {
		b := testfiles.RandomBytes(1<<20, uint64(i))
		out = append(out, testBlob{keys.KindData, ks.ID(keys.KindData, b), b})
	}
	for i := range 30 {
		b := []byte(strings.Repeat(fmt.Sprintf("small blob %d ", i), 10*i+1))
		out = append(out, testBlob{keys.KindData, ks.ID(keys.KindData, b), b})
	}
	out = append(out, testBlob{keys.KindData, ks.ID(keys.KindData, nil), nil}) // the empty chunk
	for i := range 5 {
		p := &tree.Part{Nodes: []tree.Node{{Name: fmt.Sprintf("node-%d", i), Type: tree.File, MTime: tree.Time{Sec: int64(i)}}}}
		b, err := p.Encode(nil)
		if err != nil {
			panic(err)
		}
		out = append(out, testBlob{keys.KindTree, ks.ID(keys.KindTree, b), b})
	}
	return out
}

// checkBlobs loads every blob through v and compares its content.
func checkBlobs(t *testing.T, v *repo.Area, blobs []testBlob) {
	t.Helper()
	ctx := context.Background()
	for i, b := range blobs {
		got, err := v.LoadBlob(ctx, b.kind, b.id)
		if err != nil {
			t.Fatalf("blob %d (%s %s): LoadBlob: %v", i, b.kind, b.id.Short(), err)
		}
		if !bytes.Equal(got, b.plain) {
			t.Fatalf("blob %d (%s %s): content differs (%d bytes, want %d)", i, b.kind, b.id.Short(), len(got), len(b.plain))
		}
		if b.kind == keys.KindData {
			if c, err := v.Chunk(ctx, b.id); err != nil || !bytes.Equal(c, b.plain) {
				t.Fatalf("blob %d: Chunk = %d bytes, %v", i, len(c), err)
			}
			if _, err := v.LoadBlob(ctx, keys.KindTree, b.id); !errors.Is(err, repo.ErrDamaged) {
				t.Fatalf("blob %d: loading a data blob as a tree: err = %v, want ErrDamaged", i, err)
			}
		} else if _, err := v.Part(ctx, b.id); err != nil {
			t.Fatalf("blob %d: Part: %v", i, err)
		}
	}
}

func TestWriterConcurrent(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 40)

	// Eight goroutines; each blob is saved by exactly two of them.
	w := v.NewWriter(ctx, 2)
	stored := make([]atomic.Int32, len(blobs))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i, b := range blobs {
				if i%8 != g && i%8 != (g+1)%8 {
					continue
				}
				ok, err := w.Save(ctx, b.kind, b.id, b.plain)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					stored[i].Add(1)
				}
				if !w.Known(b.id) {
					errs <- fmt.Errorf("blob %d not Known right after Save", i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Save: %v", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after a successful Flush: %v", err)
	}

	var plain uint64
	for i := range blobs {
		if n := stored[i].Load(); n != 1 {
			t.Errorf("blob %d: Save reported storing it %d times, want once", i, n)
		}
		plain += uint64(len(blobs[i].plain))
	}
	n := uint64(len(blobs))
	if got := w.Stats.BlobsNew.Load(); got != n {
		t.Errorf("BlobsNew = %d, want %d", got, n)
	}
	if got := w.Stats.BlobsKnown.Load(); got != n {
		t.Errorf("BlobsKnown = %d, want %d (every blob saved twice)", got, n)
	}
	if got := w.Stats.BytesPlain.Load(); got != plain {
		t.Errorf("BytesPlain = %d, want %d", got, plain)
	}

	// Packs: one kind each, full ones about TargetSize, at most one
	// partial pack per kind; Stats agree with the storage.
	packs := names(t, st, "data/")
	if got := w.Stats.Packs.Load(); got != uint64(len(packs)) {
		t.Errorf("Stats.Packs = %d, storage holds %d packs", got, len(packs))
	}
	var total uint64
	partial := make(map[keys.Kind]int)
	blobsInPacks := 0
	for _, name := range packs {
		fi, err := st.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		total += uint64(fi.Size)
		id, err := keys.ParseID(name[strings.LastIndexByte(name, '/')+1:])
		if err != nil {
			t.Fatalf("pack name %s: %v", name, err)
		}
		entries, size, err := v.PackTrailer(ctx, id)
		if err != nil {
			t.Fatalf("PackTrailer(%s): %v", id.Short(), err)
		}
		if size != fi.Size || len(entries) == 0 {
			t.Fatalf("pack %s: size %d (stat %d), %d entries", id.Short(), size, fi.Size, len(entries))
		}
		blobsInPacks += len(entries)
		for _, e := range entries[1:] {
			if e.Kind != entries[0].Kind {
				t.Errorf("pack %s mixes %s and %s blobs", id.Short(), entries[0].Kind, e.Kind)
			}
		}
		b, err := st.Load(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if pack.Name(b) != id {
			t.Errorf("pack %s is not named by its hash", id.Short())
		}
		if fi.Size < pack.TargetSize {
			partial[entries[0].Kind]++
		} else if fi.Size > pack.TargetSize+(1<<20)+(64<<10) {
			t.Errorf("pack %s is %d bytes, well beyond the target %d", id.Short(), fi.Size, pack.TargetSize)
		}
	}
	if len(packs) < 3 || partial[keys.KindData] > 1 || partial[keys.KindTree] != 1 {
		t.Errorf("%d packs, partial ones by kind %v; want >= 3 with at most one partial pack per kind", len(packs), partial)
	}
	if blobsInPacks != len(blobs) {
		t.Errorf("packs hold %d blobs, want %d (each stored once)", blobsInPacks, len(blobs))
	}
	if got := w.Stats.BytesStored.Load(); got != total {
		t.Errorf("BytesStored = %d, packs in storage total %d", got, total)
	}
	if idx := names(t, st, "index/"); len(idx) == 0 {
		t.Errorf("no index file written")
	}
	if v.Index().Len() != len(blobs) {
		t.Errorf("writer's vault indexes %d blobs, want %d", v.Index().Len(), len(blobs))
	}
	checkBlobs(t, v, blobs)

	// A fresh vault sees everything through the index files.
	fresh := reopen(t, v)
	if fresh.Index().Len() != len(blobs) || len(fresh.Index().Packs()) != len(packs) {
		t.Fatalf("fresh vault indexes %d blobs in %d packs, want %d in %d", fresh.Index().Len(), len(fresh.Index().Packs()), len(blobs), len(packs))
	}
	checkBlobs(t, fresh, blobs)

	// Saving everything again through the fresh vault stores nothing.
	w2 := fresh.NewWriter(ctx, 1)
	for _, b := range blobs {
		if ok, err := w2.Save(ctx, b.kind, b.id, b.plain); ok || err != nil {
			t.Fatalf("re-Save of a stored blob = %v, %v; want false, nil", ok, err)
		}
	}
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if w2.Stats.BlobsNew.Load() != 0 || w2.Stats.BlobsKnown.Load() != n || w2.Stats.Packs.Load() != 0 {
		t.Errorf("second writer: new %d, known %d, packs %d; want 0, %d, 0", w2.Stats.BlobsNew.Load(), w2.Stats.BlobsKnown.Load(), w2.Stats.Packs.Load(), n)
	}
	if got := len(names(t, st, "data/")); got != len(packs) {
		t.Errorf("second writer added packs: %d, was %d", got, len(packs))
	}
}

// TestWriterBlobsThatDoNotFit: blobs of 3 MiB saved concurrently, so
// that a pack often has no room left for the next one while other Saves
// are still sealing into it: each pack is finished once every blob in it
// is sealed, none exceeds its buffer, and every blob reads back.
func TestWriterBlobsThatDoNotFit(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, mem.New())
	var blobs []testBlob
	for i := range 16 {
		b := testfiles.RandomBytes(3<<20+i*1000, uint64(100+i))
		blobs = append(blobs, testBlob{keys.KindData, v.Keys().ID(keys.KindData, b), b})
	}
	w := v.NewWriter(ctx, 2)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(blobs); i += 4 {
				if _, err := w.Save(ctx, blobs[i].kind, blobs[i].id, blobs[i].plain); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := reopen(t, v)
	checkBlobs(t, fresh, blobs)
	packs := 0
	if err := fresh.PackSizes(ctx, func(id keys.ID, size int64) {
		packs++
		if size > pack.TargetSize+1<<20 {
			t.Errorf("pack %s holds %d bytes, more than its buffer", id.Short(), size)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := 16 * 3 / 15; packs < want {
		t.Errorf("%d packs for 48 MiB of incompressible blobs, want at least %d", packs, want)
	}
}

func TestSavePart(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, mem.New())
	w := v.NewWriter(ctx, 1)
	p := &tree.Part{Nodes: []tree.Node{{Name: "a", Type: tree.File, Size: 3}, {Name: "b", Type: tree.Dir}}}
	id, err := w.SavePart(ctx, p)
	if err != nil {
		t.Fatalf("SavePart: %v", err)
	}
	if _, err := w.SavePart(ctx, &tree.Part{Nodes: []tree.Node{{Name: "b"}, {Name: "a"}}}); !errors.Is(err, tree.ErrFormat) {
		t.Errorf("SavePart of an unsorted part: err = %v, want ErrFormat", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := v.Part(ctx, id)
	if err != nil {
		t.Fatalf("Part: %v", err)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].Name != "a" || got.Nodes[0].Size != 3 || got.Nodes[1].Type != tree.Dir {
		t.Errorf("Part = %+v", got.Nodes)
	}
	enc, _ := p.Encode(nil)
	if id != v.Keys().ID(keys.KindTree, enc) {
		t.Errorf("SavePart returned %s, want the keyed hash of the encoding", id.Short())
	}
}

// TestAdoptOrphanPacks simulates an interrupted run: packs landed, but their
// index file did not.
func TestAdoptOrphanPacks(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 2)
	w := v.NewWriter(ctx, 2)
	for _, b := range blobs {
		if _, err := w.Save(ctx, b.kind, b.id, b.plain); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs := names(t, st, "data/")
	if len(packs) != 2 {
		t.Fatalf("%d packs, want one data and one tree pack", len(packs))
	}
	deleteAll(t, st, "index/")
	// A pack that does not authenticate is left alone.
	junk := keys.ID{0xab, 1}
	if err := st.Save(ctx, "data/ab/"+junk.String(), testfiles.RandomBytes(5000, 7)); err != nil {
		t.Fatal(err)
	}

	fresh := reopen(t, v)
	if fresh.Index().Len() != 0 {
		t.Fatalf("index has %d blobs after deleting the index files", fresh.Index().Len())
	}
	n, err := fresh.AdoptOrphanPacks(ctx, true)
	if err != nil {
		t.Fatalf("AdoptOrphanPacks: %v", err)
	}
	if n != 2 {
		t.Errorf("AdoptOrphanPacks adopted %d packs, want 2", n)
	}
	if fresh.Index().Len() != len(blobs) || fresh.Index().HasPack(junk) {
		t.Errorf("after adoption: %d blobs indexed (want %d), junk pack indexed: %v", fresh.Index().Len(), len(blobs), fresh.Index().HasPack(junk))
	}
	if idx := names(t, st, "index/"); len(idx) != 1 {
		t.Errorf("adoption wrote %d index files, want 1", len(idx))
	}
	checkBlobs(t, fresh, blobs)
	if n, err := fresh.AdoptOrphanPacks(ctx, true); n != 0 || err != nil {
		t.Errorf("second AdoptOrphanPacks = %d, %v; want 0, nil", n, err)
	}

	// Another process sees the adopted packs through the new index file and
	// deduplicates against them.
	again := reopen(t, v)
	if again.Index().Len() != len(blobs) {
		t.Fatalf("reopened vault indexes %d blobs, want %d", again.Index().Len(), len(blobs))
	}
	w2 := again.NewWriter(ctx, 1)
	for _, b := range blobs {
		if ok, err := w2.Save(ctx, b.kind, b.id, b.plain); ok || err != nil {
			t.Fatalf("Save of an adopted blob = %v, %v; want false, nil", ok, err)
		}
	}
	if err := w2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(names(t, st, "data/")); got != 3 {
		t.Errorf("storage holds %d packs, want the 2 adopted and the junk one", got)
	}
}

func TestWriterStorageFailure(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		prefix string
		blobs  int // 1 MiB random blobs: 40 fill packs during Save
	}{
		{"pack upload fails in Flush", "data/", 0},
		{"pack upload fails during Save", "data/", 40},
		{"index save fails", "index/", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &storagetest.FailingSaves{Storage: mem.New(), Fail: func(name string) bool { return strings.HasPrefix(name, tc.prefix) }}
			v := newVault(t, st)
			blobs := testBlobs(v.Keys(), tc.blobs)
			w := v.NewWriter(ctx, 2)
			var saveErr error
			for _, b := range blobs {
				if _, saveErr = w.Save(ctx, b.kind, b.id, b.plain); saveErr != nil {
					break
				}
			}
			if saveErr != nil && !errors.Is(saveErr, storagetest.ErrInjected) {
				t.Fatalf("Save failed with %v, want the storage error", saveErr)
			}
			err := w.Flush(ctx)
			if !errors.Is(err, storagetest.ErrInjected) {
				t.Fatalf("Flush = %v, want the storage error", err)
			}
			if idx := names(t, st, "index/"); len(idx) != 0 {
				t.Errorf("index files written despite the failure: %v", idx)
			}
			if tc.prefix == "data/" {
				// A failed upload sticks.
				if !errors.Is(w.Err(), storagetest.ErrInjected) {
					t.Errorf("Err() = %v after a failed upload", w.Err())
				}
				if _, err := w.Save(ctx, keys.KindData, keys.ID{1}, []byte("late")); !errors.Is(err, storagetest.ErrInjected) {
					t.Errorf("Save after a failed upload: err = %v, want the storage error", err)
				}
				if packs := names(t, st, "data/"); len(packs) != 0 {
					t.Errorf("packs stored despite failing saves: %v", packs)
				}
			}
			// The caller commits no point; none exists.
			if points, err := v.Points(ctx); err != nil || len(points) != 0 {
				t.Errorf("Points = %d, %v; want none", len(points), err)
			}
		})
	}
}

// TestInterruptedRunRecovers: the packs of a run whose index could not be
// written are adopted by the next run on a working storage.
func TestInterruptedRunRecovers(t *testing.T) {
	ctx := context.Background()
	base := mem.New()
	failing := &storagetest.FailingSaves{Storage: base, Fail: func(name string) bool { return strings.HasPrefix(name, "index/") }}
	v := newVault(t, failing)
	blobs := testBlobs(v.Keys(), 1)
	w := v.NewWriter(ctx, 1)
	for _, b := range blobs {
		if _, err := w.Save(ctx, b.kind, b.id, b.plain); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("Flush = %v, want the index save to fail", err)
	}
	next, err := repo.Open(ctx, base, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := next.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := next.AdoptOrphanPacks(ctx, true); err != nil || n != 2 {
		t.Fatalf("AdoptOrphanPacks = %d, %v; want the 2 packs of the interrupted run", n, err)
	}
	checkBlobs(t, next, blobs)
}

// TestWriterRemakesExistingPack: a pack of the same bytes as one already
// stored (its blobs stored again by a writer that does not know them) is
// made over under another name instead of failing or relying on it.
func TestWriterRemakesExistingPack(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	plain := []byte(strings.Repeat("the same blob ", 100))
	id := v.Keys().ID(keys.KindData, plain)
	for range 2 {
		fresh, err := repo.Open(ctx, st, v.Keys()) // no index: it stores the blob again
		if err != nil {
			t.Fatal(err)
		}
		w := fresh.NewWriter(ctx, 1)
		if _, err := w.Save(ctx, keys.KindData, id, plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("second identical pack: %v", err)
		}
	}
	fresh := reopen(t, v)
	ids, err := fresh.ListPacks(ctx)
	if err != nil || len(ids) != 2 {
		t.Fatalf("packs %v, %v; want the pack and its remade copy", ids, err)
	}
	if got, err := fresh.Chunk(ctx, id); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Chunk: %v", err)
	}
}

// discardPacks is a storage that drops the bytes of packs (and keeps
// everything else): it measures the writer, not a copy of its packs.
type discardPacks struct{ *mem.Store }

func (d discardPacks) Save(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "data/") {
		return nil
	}
	return d.Store.Save(ctx, name, data)
}

// benchChunk returns a 1 MiB chunk that compresses about as the bench
// corpus's binaries do (half random, half text).
func benchChunk() []byte {
	chunk := make([]byte, 1<<20)
	copy(chunk, testfiles.RandomBytes(len(chunk)/2, 1))
	for i := len(chunk) / 2; i < len(chunk); i += 64 {
		copy(chunk[i:], fmt.Sprintf("%063d\n", i*7919%100003))
	}
	return chunk
}

// chunkSaver saves copies of a chunk through w, each made new by a count
// shared between savers.
type chunkSaver struct {
	w      *repo.Writer
	chunk  []byte
	hasher *keys.Hasher
	n      *atomic.Uint64
}

func newChunkSaver(v *repo.Area, w *repo.Writer, chunk []byte, n *atomic.Uint64) *chunkSaver {
	return &chunkSaver{w: w, chunk: bytes.Clone(chunk), hasher: v.Keys().NewHasher(keys.KindData), n: n}
}

func (c *chunkSaver) save(tb testing.TB) {
	binary.LittleEndian.PutUint64(c.chunk, c.n.Add(1))
	if _, err := c.w.Save(context.Background(), keys.KindData, c.hasher.Sum(c.chunk), c.chunk); err != nil {
		tb.Fatal(err)
	}
}

// TestWriterAllocsPerChunk: once warm, Save allocates a few small objects
// per chunk however many packs it fills and however often the garbage
// collector runs: no sealed copy of the chunk, no new pack buffer per pack
// (a bounded free list keeps them across collections, which empty a
// sync.Pool), no new payload buffer.
func TestWriterAllocsPerChunk(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, discardPacks{mem.New()})
	w := v.NewWriter(ctx, 2)
	c := newChunkSaver(v, w, benchChunk(), new(atomic.Uint64))
	for range 64 { // two packs and more: the buffers made
		c.save(t)
	}
	const chunks = 96 // three packs and more
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range chunks {
		c.save(t)
		if i%4 == 3 {
			runtime.GC()
		}
	}
	runtime.ReadMemStats(&after)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	objects := (after.Mallocs - before.Mallocs) / chunks
	bytes := (after.TotalAlloc - before.TotalAlloc) / chunks
	t.Logf("per 1 MiB chunk: %d allocations, %d bytes", objects, bytes)
	// A pack buffer per pack would be about 600 KiB per chunk, a sealed
	// copy or a payload buffer about 1 MiB; a stray buffer of the zstd
	// encoder's (rare) about 130 KiB.
	if bytes > 256<<10 || objects > 64 {
		t.Errorf("per 1 MiB chunk: %d allocations, %d bytes; want at most 64 and 256 KiB", objects, bytes)
	}
}

// BenchmarkWriterSave measures the per-chunk cost of Writer.Save (compress,
// seal, pack; packs are dropped, not stored) on 1 MiB chunks that compress
// about as the bench corpus's binaries do (half text, half random), from as
// many goroutines as cores; allocs/op is its allocations per chunk.
func BenchmarkWriterSave(b *testing.B) {
	ctx := context.Background()
	v := newVault(b, discardPacks{mem.New()})
	w := v.NewWriter(ctx, 2)
	chunk := benchChunk()
	var n atomic.Uint64
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := newChunkSaver(v, w, chunk, &n)
		for pb.Next() {
			c.save(b)
		}
	})
	if err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// TestPartAllocs: reading a tree part from a vault directory allocates
// little beyond the decoded part itself: the sealed bytes and the plaintext
// go into reused buffers (a mount reads one part per directory it lists).
func TestPartAllocs(t *testing.T) {
	ctx := context.Background()
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := newVault(t, st)
	w := v.NewWriter(ctx, 1)
	p := &tree.Part{}
	for i := range 1000 {
		p.Nodes = append(p.Nodes, tree.Node{Name: fmt.Sprintf("file-%04d.go", i), Type: tree.File, Mode: 0o644, Size: 100, Links: 1,
			Extents: []tree.Extent{{Length: 100, ID: keys.ID{byte(i), byte(i >> 8)}}}})
	}
	id, err := w.SavePart(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v = reopen(t, v)
	enc, _ := p.Encode(nil)
	allocated := func(f func()) uint64 { return testfiles.BytesAllocated(20, f) }
	decode := allocated(func() {
		if _, err := tree.DecodePart(enc); err != nil {
			t.Fatal(err)
		}
	})
	load := allocated(func() {
		if _, err := v.Part(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Part: %d bytes allocated, DecodePart alone %d, encoding %d bytes", load, decode, len(enc))
	if load > decode+uint64(len(enc))/4 {
		t.Errorf("Part allocated %d bytes, %d beyond decoding the part (its encoding is %d bytes)", load, load-decode, len(enc))
	}
}

// TestFlushUploadsAtOnce: the packs left when Flush starts (the one queued
// behind the upload under way, the open data pack and the open tree pack)
// upload together, not one after another through the single uploader; and
// the index is saved only once every pack's Save has returned. Three are
// asked for: those Flush starts, whether or not the first pack's upload
// still waits when it does (a slow machine).
func TestFlushUploadsAtOnce(t *testing.T) {
	isPack := func(name string) bool { return strings.HasPrefix(name, "data/") }
	st := &storagetest.RecordingSaves{Storage: mem.New(), Match: isPack, Want: 3, Patience: 10 * time.Second}
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 40) // two full data packs, an open one, and a tree pack
	writeBlobs(t, v, blobs)
	if got := st.MostAtOnce(); got < 3 {
		t.Errorf("at most %d pack uploads under way at once, want 3", got)
	}
	checkDurableOrder(t, st.Events(), isPack, func(name string) bool { return strings.Contains(name, "index/") })
	checkBlobs(t, reopen(t, v), blobs)
}

// checkDurableOrder fails unless every Save of a name later selects
// starts after every Save of a name first selects has returned, and at
// least one of each was made.
func checkDurableOrder(t *testing.T, events []storagetest.SaveEvent, first, later func(string) bool) {
	t.Helper()
	pending, firsts, laters := 0, 0, 0
	for _, e := range events {
		switch {
		case first(e.Name) && !e.Done:
			pending++
			firsts++
		case first(e.Name) && e.Done:
			pending--
		case later(e.Name) && !e.Done:
			laters++
			if pending > 0 {
				t.Errorf("%s saved while %d saves it depends on were under way", e.Name, pending)
			}
			if firsts == 0 {
				t.Errorf("%s saved before any save it depends on", e.Name)
			}
		}
	}
	if firsts == 0 || laters == 0 {
		t.Errorf("%d saves depended on, %d depending: want some of each", firsts, laters)
	}
}

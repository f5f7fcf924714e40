package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/restore"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

// sharedTree holds chunks used more than once: files with the same
// content, and a file whose second half repeats its first (past the
// chunker's maximum, so that the chunks after the first cut repeat).
func sharedTree(t *testing.T, dir string) {
	half := testfiles.RandomBytes(9<<20, 7)
	testfiles.WriteFile(t, filepath.Join(dir, "twice"), append(append([]byte(nil), half...), half...))
	same := testfiles.RandomBytes(200<<10, 8)
	for _, name := range []string{"a", "b", "sub/c"} {
		testfiles.WriteFile(t, filepath.Join(dir, name), same)
	}
	makeTree(t, filepath.Join(dir, "tree"))
}

// lookup returns the node at path p of b's point.
func lookup(t *testing.T, b *backedUp, p string) *tree.Node {
	t.Helper()
	n, err := browse.Lookup(context.Background(), b.vault, b.point.Root, p)
	testfiles.Must(t, err)
	return n
}

// TestRestoreSharedChunks restores chunks used by several files and
// several times in one file (each opened once per batch, written to every
// place it goes) and sparse files, and checks every byte and hole.
func TestRestoreSharedChunks(t *testing.T) {
	b := backUp(t, sharedTree)
	twice := lookup(t, b, b.src+"/twice")
	seen := map[keys.ID]bool{}
	repeats := 0
	for _, e := range twice.Extents {
		if seen[e.ID] {
			repeats++
		}
		seen[e.ID] = true
	}
	if repeats == 0 || lookup(t, b, b.src+"/a").Extents[0].ID != lookup(t, b, b.src+"/sub/c").Extents[0].ID {
		t.Fatalf("the test tree shares no chunk: %d repeats in %d extents", repeats, len(twice.Extents))
	}
	target := filepath.Join(t.TempDir(), "target")
	res, _ := restorePath(t, b, b.src, target, restore.Options{Verify: true, Workers: 2})
	if d := diffLines(describe(t, b.src)[1:], describe(t, target)[1:]); d != "" {
		t.Errorf("restored tree differs from the source:\n%s", d)
	}
	if res.Errors != 0 || res.FilesVerified != res.Files {
		t.Errorf("result %+v: want no errors and every file verified", res)
	}
}

// damaging is a storage whose copy of one blob reads back with a byte
// flipped, however it is read (alone, or in a span of its pack).
type damaging struct {
	storage.Storage
	pack keys.ID
	at   int64 // offset in the pack of the flipped byte
}

func (d *damaging) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	b, err := d.Storage.Load(ctx, name, off, length)
	if err == nil && strings.Contains(name, d.pack.String()) && off <= d.at && d.at < off+int64(len(b)) {
		b[d.at-off] ^= 0x40
	}
	return b, err
}

// TestRestoreDamagedChunk damages one chunk in a pack whose other chunks
// other files need: only the file that needs it fails, with repo's
// ErrDamaged, the run says it is incomplete, the bad copy is noted for the
// next backup to store again, and everything else is restored.
func TestRestoreDamagedChunk(t *testing.T) {
	ctx := context.Background()
	b := backUp(t, makeTree)
	id := lookup(t, b, b.src+"/small").Extents[0].ID
	loc, ok := b.vault.Index().Lookup(id)
	if !ok {
		t.Fatal("the chunk of small is not indexed")
	}
	st := &damaging{Storage: b.vault.Storage(), pack: loc.Pack, at: int64(loc.Offset) + int64(loc.Length)/2}
	v, err := repo.Open(ctx, st, b.vault.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, v.LoadIndex(ctx))
	target := filepath.Join(t.TempDir(), "target")
	var mu sync.Mutex
	failed := map[string]error{}
	res, err := restore.Run(ctx, v, b.point.Root, b.src, target, restore.Options{
		Workers: 2,
		OnError: func(path string, err error) { mu.Lock(); failed[path] = err; mu.Unlock() },
	})
	if !errors.Is(err, restore.ErrIncomplete) || len(failed) != 1 || !errors.Is(failed["small"], repo.ErrDamaged) {
		t.Fatalf("restore: %v, failed %v (%+v): want ErrIncomplete and small alone failing with ErrDamaged", err, failed, res)
	}
	if !v.Index().IsBad(id, loc.Pack) {
		t.Error("the damaged copy is not noted as bad")
	}
	testfiles.Must(t, os.Remove(filepath.Join(b.src, "small")))
	testfiles.Must(t, os.Remove(filepath.Join(target, "small"))) // left behind, unfinished
	if d := diffLines(describe(t, b.src)[1:], describe(t, target)[1:]); d != "" {
		t.Errorf("the files that do not need the damaged chunk differ from the source:\n%s", d)
	}
}

// inFlight is a storage over a slow link (each Load takes 10ms more)
// that records the most bytes its Loads were asked for at once, and the
// largest one.
type inFlight struct {
	storage.Storage
	mu             sync.Mutex
	now, most, top int64
}

func (s *inFlight) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.mu.Lock()
	s.now += length
	s.most, s.top = max(s.most, s.now), max(s.top, length)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.now -= length; s.mu.Unlock() }()
	time.Sleep(10 * time.Millisecond)
	return s.Storage.Load(ctx, name, off, length)
}

// TestRestoreBoundedFetches: chunks are fetched by spans of their packs,
// each at most 4 MiB (a chunk is at most 4 MiB), at most one per worker
// at a time, whatever the size of the point; and where requests take
// time, in fewer requests than there are chunks (how many fewer depends
// on how many extents wait while the workers are busy).
func TestRestoreBoundedFetches(t *testing.T) {
	ctx := context.Background()
	b := backUp(t, func(t *testing.T, dir string) {
		testfiles.WriteFile(t, filepath.Join(dir, "big"), testfiles.RandomBytes(12<<20, 9))
		for i := range 300 {
			testfiles.WriteFile(t, filepath.Join(dir, "small", strconv.Itoa(i)), testfiles.RandomBytes(16<<10, uint64(100+i)))
		}
	})
	st := &inFlight{Storage: b.vault.Storage()}
	v, err := repo.Open(ctx, st, b.vault.Keys()) // b.vault's storage counts the requests
	testfiles.Must(t, err)
	testfiles.Must(t, v.LoadIndex(ctx))
	const workers = 3
	before := b.counts.Tally().Loads
	res, err := restore.Run(ctx, v, b.point.Root, b.src, filepath.Join(t.TempDir(), "target"), restore.Options{Workers: workers})
	testfiles.Must(t, err)
	loads := b.counts.Tally().Loads - before
	const span = 4<<20 + 64<<10 // a span, or a chunk of at most 4 MiB sealed
	if st.top > span || st.most > workers*span+maxTreeLoad {
		t.Errorf("loads of up to %d bytes, %d at once; want at most %d, %d at once", st.top, st.most, span, workers*span+maxTreeLoad)
	}
	if loads >= res.ChunksFetched {
		t.Errorf("%d loads for %d chunks: chunks next to each other in a pack are not loaded together", loads, res.ChunksFetched)
	}
}

// maxTreeLoad bounds the tree part the walker loads alongside the
// fetches.
const maxTreeLoad = 4 << 20

package prune_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

// onSave runs fn once, before the first Save of a name under prefix.
type onSave struct {
	storage.Storage
	prefix string
	once   sync.Once
	fn     func()
}

func (s *onSave) Save(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, s.prefix) {
		s.once.Do(s.fn)
	}
	return s.Storage.Save(ctx, name, data)
}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var guardOpts = guard.Options{Every: 5 * time.Millisecond, Tolerance: time.Minute}

// TestBackupRacingPrune is the regression test of the race prune must not
// lose: a backup loads the index, deduplicates against packs, and a prune
// marks those packs (its point is purged) and, a margin later, decides
// them, all before the backup commits. The backup's point must still find
// every blob it needs.
func TestBackupRacingPrune(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir := t.TempDir()
	files := map[string][]byte{"a": testfiles.RandomBytes(200<<10, 1), "b": testfiles.RandomBytes(200<<10, 2), "c": testfiles.RandomBytes(200<<10, 3)}
	writeTree(t, dir, files)
	p1, err := backup.Run(ctx, f.open(), backup.Options{Paths: []string{dir}, Guard: guardOpts})
	if err != nil {
		t.Fatal(err)
	}
	files["new"] = testfiles.RandomBytes(200<<10, 4) // the second run uploads one data pack
	writeTree(t, dir, files)

	var marked, decided *prune.Result
	hooked := &onSave{Storage: f.st, prefix: "data/", fn: func() {
		// The run has reused a, b and c from p1's pack by now.
		marked = f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}})
		waitFor(t, "the backup's keep", func() bool { return len(f.names(guard.KeepsPrefix)) > 0 })
		f.clock = f.clock.Add(margin)
		decided = f.prune(prune.Options{Margin: margin})
	}}
	backupThrough(t, f, hooked, dir, files)
	if marked == nil || marked.Marked < 2 || decided.Kept < 1 || decided.Deleted < 1 {
		t.Fatalf("prune during the backup: marked %+v, then %+v; want p1's packs marked, the data pack kept, its tree pack deleted", marked, decided)
	}
}

// TestBackupAfterMark: the mark is older than the backup, and the packs
// are deleted while it runs: it stores their blobs again.
func TestBackupAfterMark(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir := t.TempDir()
	files := map[string][]byte{"a": testfiles.RandomBytes(200<<10, 1), "b": testfiles.RandomBytes(200<<10, 2)}
	writeTree(t, dir, files)
	p1, err := backup.Run(ctx, f.open(), backup.Options{Paths: []string{dir}, Guard: guardOpts})
	if err != nil {
		t.Fatal(err)
	}
	f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}})
	var decided *prune.Result
	hooked := &onSave{Storage: f.st, prefix: "data/", fn: func() {
		f.clock = f.clock.Add(margin)
		decided = f.prune(prune.Options{Margin: margin})
	}}
	backupThrough(t, f, hooked, dir, files)
	if decided == nil || decided.Deleted < 2 || decided.Kept != 0 {
		t.Fatalf("prune during the backup: %+v; want p1's packs deleted", decided)
	}
}

// backupThrough backs dir (holding files) up through st, a storage over
// f's that runs a prune on the way, and checks the vault clean and the new
// point whole.
func backupThrough(t *testing.T, f *fixture, st storage.Storage, dir string, files map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	v, err := repo.Open(ctx, st, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Guard: guardOpts})
	if err != nil {
		t.Fatal(err)
	}
	f.checkClean()
	readBack(t, f, p, dir, files)
}

// readBack reads every file of the one-directory point p (a backup of
// dir) and compares it with files.
func readBack(t *testing.T, f *fixture, p *repo.Point, dir string, files map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	v := f.reader()
	part, err := v.Part(ctx, p.Root)
	if err != nil {
		t.Fatal(err)
	}
	node := part.Nodes[0]
	for _, elem := range strings.Split(strings.Trim(dir, "/"), "/") {
		next, ok := lookupIn(t, v, node, elem)
		if !ok {
			t.Fatalf("point %s has no %s", p.ID.Short(), elem)
		}
		node = next
	}
	for name, want := range files {
		n, ok := lookupIn(t, v, node, name)
		if !ok {
			t.Fatalf("point %s has no file %s", p.ID.Short(), name)
		}
		var got []byte
		for _, e := range n.Extents {
			c, err := v.Chunk(ctx, e.ID)
			if err != nil {
				t.Fatalf("file %s: %v", name, err)
			}
			got = append(got, c...)
		}
		if string(got) != string(want) {
			t.Fatalf("file %s differs", name)
		}
	}
}

// lookupIn finds name in directory dir.
func lookupIn(t *testing.T, v *repo.Area, dir tree.Node, name string) (tree.Node, bool) {
	t.Helper()
	if len(dir.Parts) == 0 {
		return tree.Node{}, false
	}
	i := dir.PartFor(name)
	part, err := v.Part(context.Background(), dir.Parts[i].ID)
	if err != nil {
		t.Fatal(err)
	}
	n := part.Find(name)
	if n == nil {
		return tree.Node{}, false
	}
	return *n, true
}

// TestBackupBesideZeroMarginPrune: a prune with no margin (its owner said
// no backup runs) deletes packs a running backup reuses and removes its
// mark before the backup lists the marks again; a mark of a later prune is
// there when the backup commits. The backup confirms its packs, commits
// nothing, and the next backup stores the lost data again.
func TestBackupBesideZeroMarginPrune(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	dir, other := t.TempDir(), t.TempDir()
	files := map[string][]byte{"a": testfiles.RandomBytes(200<<10, 1), "b": testfiles.RandomBytes(200<<10, 2)}
	writeTree(t, dir, files)
	writeTree(t, other, map[string][]byte{"o": testfiles.RandomBytes(200<<10, 3)})
	p0, err := backup.Run(ctx, f.open(), backup.Options{Paths: []string{other}, Guard: guardOpts})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := backup.Run(ctx, f.open(), backup.Options{Paths: []string{dir}, Guard: guardOpts})
	if err != nil {
		t.Fatal(err)
	}
	files["new"] = testfiles.RandomBytes(200<<10, 4)
	writeTree(t, dir, files)

	hooked := &onSave{Storage: f.st, prefix: "data/", fn: func() {
		// The run has reused a and b from p1's pack by now.
		if res := f.prune(prune.Options{Margin: 0, Purge: []keys.ID{p1.ID}}); res.Deleted == 0 {
			t.Errorf("prune with no margin deleted nothing: %+v", res)
		}
		if res := f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p0.ID}}); res.Marked == 0 {
			t.Errorf("prune with a margin marked nothing: %+v", res)
		}
	}}
	v, err := repo.Open(ctx, hooked, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	// The guard lists the marks only at the start and the commit.
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Guard: guard.Options{Every: time.Hour}})
	if p != nil || !errors.Is(err, guard.ErrLostMarks) || !strings.Contains(err.Error(), "a prune deleted") {
		t.Fatalf("backup beside the prune: point %v, %v; want no point, ErrGuard", p, err)
	}
	f.checkClean()
	backupThrough(t, f, f.st, dir, files)
}

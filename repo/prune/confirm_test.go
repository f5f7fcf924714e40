package prune_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// countLists counts the listings of the packs.
type countLists struct {
	storage.Storage
	packs atomic.Int64
}

func (s *countLists) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if strings.HasPrefix(prefix, "data/") {
		s.packs.Add(1)
	}
	return s.Storage.List(ctx, prefix, fn)
}

// TestGuardConfirmsPacksAfterNewMark is the second half of finding 6 of
// issue 11: a prune whose margin is too short for running backups
// (--no-backups-running, from another host) deletes a pack a running
// backup reused, and removes its mark before the backup lists the marks
// again. A mark that appears later while the backup runs (another prune)
// is the sign that prunes run: before it commits, the backup confirms that
// every pack it depends on is still stored, and commits nothing when one
// is gone.
func TestGuardConfirmsPacksAfterNewMark(t *testing.T) {
	ctx := context.Background()
	st := &countLists{Storage: mem.New()}
	f := newFixtureOn(t, st)
	a, b := testfiles.RandomBytes(64<<10, 1), testfiles.RandomBytes(64<<10, 2)
	p1 := f.commit(map[string][]byte{"a": a})
	p2 := f.commit(map[string][]byte{"b": b})
	f.commit(map[string][]byte{"c": testfiles.RandomBytes(64<<10, 3)})
	packA := f.packOf(blobID(f, a))

	v, g, w := f.guardedWriter()
	if !w.Known(blobID(f, a)) {
		t.Fatal("a is not known")
	}
	// The prune nobody should run beside a backup: a's pack deleted, its
	// mark removed, all between two listings of the backup's guard.
	if res := f.prune(prune.Options{Margin: 0, Purge: []keys.ID{p1.ID}}); res.Deleted != 2 || f.exists(packA) {
		t.Fatalf("prune with no margin: %+v", res)
	}
	// A later prune leaves a mark the backup sees.
	if res := f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p2.ID}}); res.Marked != 2 {
		t.Fatalf("prune with a margin: %+v", res)
	}
	p, err := store(ctx, v, w, map[string][]byte{"a": a, "x": testfiles.RandomBytes(1000, 4)})
	if err != nil {
		t.Fatal(err)
	}
	before := st.packs.Load()
	err = g.Commit(ctx, func(ctx context.Context) error {
		t.Error("the point was committed although a pack it needs is gone")
		return v.SavePoint(ctx, p)
	})
	if !errors.Is(err, guard.ErrLostMarks) || !strings.Contains(err.Error(), packA[len(packA)-64:][:8]) {
		t.Errorf("Commit = %v, want ErrGuard naming pack %s", err, packA)
	}
	if n := st.packs.Load() - before; n != 1 {
		t.Errorf("Commit listed the packs %d times, want 1", n)
	}
}

// TestGuardConfirmsNothingWithoutNewMark: the confirmation costs nothing
// when no mark appeared while the backup ran, even when marks were there
// when it started.
func TestGuardConfirmsNothingWithoutNewMark(t *testing.T) {
	ctx := context.Background()
	st := &countLists{Storage: mem.New()}
	f := newFixtureOn(t, st)
	a := testfiles.RandomBytes(64<<10, 1)
	p1 := f.commit(map[string][]byte{"a": a, "b": testfiles.RandomBytes(64<<10, 2)})
	f.commit(map[string][]byte{"a": a})
	f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}})

	v, g, w := f.guardedWriter()
	files := map[string][]byte{"a": a}
	p, err := store(ctx, v, w, files)
	if err != nil {
		t.Fatal(err)
	}
	before := st.packs.Load()
	if err := g.Commit(ctx, func(ctx context.Context) error { return v.SavePoint(ctx, p) }); err != nil {
		t.Fatal(err)
	}
	if n := st.packs.Load() - before; n != 0 {
		t.Errorf("Commit listed the packs %d times, want 0", n)
	}
	f.verify(p, files)
}

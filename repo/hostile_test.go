package repo_test

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/azfs/azfs/integration/faulttrial"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/rollback"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// hostile is a vault with three points of a changing tree, the storage as
// it was after each run, and a second vault with keys of its own: the
// material a malicious storage has to work with.
type hostile struct {
	raw     *mem.Store
	ks      *keys.KeySet
	points  []*repo.Point // oldest first
	taken   map[keys.ID]faulttrial.Snapshot
	after   []*mem.Store // the storage as it was after each run
	foreign *mem.Store   // another vault, with another point
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	ctx := context.Background()
	h := &hostile{raw: mem.New(), taken: map[keys.ID]faulttrial.Snapshot{}}
	v, err := repo.Create(ctx, h.raw, faulttrial.Passphrase, faulttrial.KDF)
	if err != nil {
		t.Fatal(err)
	}
	h.ks = v.Keys()
	rng := mrand.New(mrand.NewPCG(6, 6))
	src := t.TempDir()
	for run := range 3 {
		snap := faulttrial.Mutate(t, rng, src, run)
		v, err := repo.Open(ctx, h.raw, h.ks)
		if err != nil {
			t.Fatal(err)
		}
		p, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"})
		if err != nil {
			t.Fatal(err)
		}
		h.points = append(h.points, p)
		h.taken[p.ID] = snap
		h.after = append(h.after, clone(t, h.raw))
	}
	h.foreign = mem.New()
	fv, err := repo.Create(ctx, h.foreign, faulttrial.Passphrase, faulttrial.KDF)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	faulttrial.Mutate(t, rng, other, 0)
	if _, err := backup.Run(ctx, fv, backup.Options{Paths: []string{other}, Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	return h
}

// clone copies every object of st into a new storage.
func clone(t *testing.T, st storage.Storage) *mem.Store {
	t.Helper()
	ctx := context.Background()
	out := mem.New()
	for _, name := range names(t, st, "") {
		b, err := st.Load(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Save(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func load(t *testing.T, st storage.Storage, name string) []byte {
	t.Helper()
	b, err := st.Load(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put replaces (or adds) the object name in st.
func put(t *testing.T, st storage.Storage, name string, b []byte) {
	t.Helper()
	ctx := context.Background()
	if err := st.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	if err := st.Save(ctx, name, b); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, st storage.Storage, name string) {
	t.Helper()
	if err := st.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

// added returns the names under prefix in later that earlier lacks.
func added(t *testing.T, earlier, later storage.Storage, prefix string) []string {
	t.Helper()
	had := map[string]bool{}
	for _, n := range names(t, earlier, prefix) {
		had[n] = true
	}
	var out []string
	for _, n := range names(t, later, prefix) {
		if !had[n] {
			out = append(out, n)
		}
	}
	return out
}

// outcome is what a reader makes of a tampered vault.
type outcome struct {
	listed   []keys.ID // the points listed, oldest first
	whole    int       // listed points read in full, every byte as taken
	refused  int       // listed points that failed to read with an error
	damaged  bool      // the listing or the index reported damage
	problems int       // what check --read-data reported
}

// read opens the vault in st as a reader does (index, orphan packs from
// their trailers, points) and reads every listed point in full. It fails
// the test on what no malicious storage may achieve: a point listed that
// the vault's keys did not commit, or a file read with bytes other than
// those backed up. Errors are fine: they are the storage's doing, detected.
func (h *hostile) read(t *testing.T, st storage.Storage) outcome {
	t.Helper()
	ctx := context.Background()
	var out outcome
	v, err := repo.Open(ctx, st, h.ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			t.Fatal(err)
		}
		out.damaged = true
	}
	if _, err := v.AdoptOrphanPacks(ctx, false); err != nil {
		t.Fatal(err)
	}
	points, err := v.Points(ctx)
	if err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			t.Fatal(err)
		}
		out.damaged = true
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Time.Before(points[j].Time) })
	for _, p := range points {
		out.listed = append(out.listed, p.ID)
		want, ok := h.taken[p.ID]
		if !ok {
			t.Fatalf("listed point %s, which the vault's keys never committed", p.ID.Short())
		}
		got, err := faulttrial.ReadPoint(ctx, v, p)
		if err != nil {
			if !errors.Is(err, repo.ErrDamaged) && !errors.Is(err, keys.ErrOtherKey) {
				t.Fatalf("point %s: an error that does not say damage: %v", p.ID.Short(), err)
			}
			out.refused++
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("point %s: %d files read, %d backed up", p.ID.Short(), len(got), len(want))
		}
		for path, b := range want {
			if !bytes.Equal(got[path], b) {
				t.Fatalf("point %s: %s read with other bytes than backed up", p.ID.Short(), path)
			}
		}
		out.whole++
	}
	fresh, err := repo.Open(ctx, st, h.ks)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(ctx, fresh, check.Options{ReadData: true})
	if err != nil && !errors.Is(err, check.ErrDamaged) {
		t.Fatal(err)
	}
	out.problems = len(res.Problems)
	return out
}

func (h *hostile) ids(i ...int) []keys.ID {
	var out []keys.ID
	for _, n := range i {
		out = append(out, h.points[n].ID)
	}
	return out
}

// TestHostileStorage tampers with a vault's objects as a malicious storage
// can (swapping, replaying, rolling back, and bringing in another vault's)
// and reads it as a reader would: every attack is detected (an error, a
// damaged object skipped, or the rollback check) and none makes a reader
// list a point the keys did not commit or read bytes that were not backed
// up. docs/security.md §4.3 lists what is and is not detected.
func TestHostileStorage(t *testing.T) {
	h := newHostile(t)
	all := h.ids(0, 1, 2)

	t.Run("untouched", func(t *testing.T) {
		o := h.read(t, h.raw)
		if !slices.Equal(o.listed, all) || o.whole != 3 || o.damaged || o.problems != 0 {
			t.Fatalf("%+v", o)
		}
	})

	t.Run("swap two packs", func(t *testing.T) {
		st := clone(t, h.raw)
		packs := names(t, st, "data/")
		a, b := packs[0], packs[len(packs)-1]
		ab, bb := load(t, st, a), load(t, st, b)
		put(t, st, a, bb)
		put(t, st, b, ab)
		o := h.read(t, st)
		if o.refused == 0 || o.problems == 0 {
			t.Fatalf("swapped packs not detected: %+v", o)
		}
	})

	t.Run("another point's tree", func(t *testing.T) {
		// The newest point's root tree part replaced, in its pack, by the
		// oldest point's: the same kind of blob, sealed under the same key.
		st := clone(t, h.raw)
		v, err := repo.Open(context.Background(), st, h.ks)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.LoadIndex(context.Background()); err != nil {
			t.Fatal(err)
		}
		newLoc, _ := v.Index().Lookup(h.points[2].Root)
		oldLoc, _ := v.Index().Lookup(h.points[0].Root)
		oldSealed := load(t, st, dataObject(oldLoc))[oldLoc.Offset : oldLoc.Offset+oldLoc.Length]
		pk := load(t, st, dataObject(newLoc))
		region := pk[newLoc.Offset : newLoc.Offset+newLoc.Length]
		clear(region)
		copy(region, oldSealed)
		put(t, st, dataObject(newLoc), pk)
		o := h.read(t, st)
		if !slices.Equal(o.listed, all) || o.refused != 1 || o.whole != 2 || o.problems == 0 {
			t.Fatalf("another point's tree not detected: %+v", o)
		}
	})

	t.Run("another point's object under a point's name", func(t *testing.T) {
		st := clone(t, h.raw)
		put(t, st, pointObject(h.points[2].ID), load(t, st, pointObject(h.points[0].ID)))
		o := h.read(t, st)
		if !slices.Equal(o.listed, h.ids(0, 1)) || !o.damaged || o.problems == 0 {
			t.Fatalf("replayed point not detected: %+v", o)
		}
	})

	t.Run("older index", func(t *testing.T) {
		// The index files of the last run withheld: the vault looks as it
		// did before it, but its point is there, and its packs are indexed
		// again from their authenticated trailers.
		st := clone(t, h.raw)
		newest := added(t, h.after[1], h.raw, "index/")
		if len(newest) == 0 {
			t.Fatal("the last run wrote no index file")
		}
		for _, n := range newest {
			remove(t, st, n)
		}
		if o := h.read(t, st); !slices.Equal(o.listed, all) || o.whole != 3 {
			t.Fatalf("withheld index files: %+v", o)
		}
		// An older index file's bytes under the newest's name: damage.
		older := names(t, h.after[0], "index/")
		put(t, st, newest[0], load(t, st, older[0]))
		if o := h.read(t, st); !slices.Equal(o.listed, all) || o.whole != 3 || !o.damaged || o.problems == 0 {
			t.Fatalf("older index file under a newer name not detected: %+v", o)
		}
	})

	t.Run("another vault's index file", func(t *testing.T) {
		st := clone(t, h.raw)
		for _, n := range names(t, h.foreign, "index/") {
			put(t, st, n, load(t, h.foreign, n))
		}
		if o := h.read(t, st); !slices.Equal(o.listed, all) || o.whole != 3 || !o.damaged || o.problems == 0 {
			t.Fatalf("foreign index file not detected: %+v", o)
		}
	})

	t.Run("a pack from another vault", func(t *testing.T) {
		// Under a name of this vault's: what the index places there fails.
		st := clone(t, h.raw)
		foreign := names(t, h.foreign, "data/")
		packs := names(t, st, "data/")
		put(t, st, packs[0], load(t, h.foreign, foreign[0]))
		if o := h.read(t, st); o.refused == 0 || o.problems == 0 {
			t.Fatalf("foreign pack under a known name not detected: %+v", o)
		}
		// Under its own name: an orphan whose trailer does not open, so it
		// is never adopted into the index.
		st = clone(t, h.raw)
		put(t, st, foreign[0], load(t, h.foreign, foreign[0]))
		v, err := repo.Open(context.Background(), st, h.ks)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.LoadIndex(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := v.AdoptOrphanPacks(context.Background(), false); err != nil || n != 0 {
			t.Fatalf("adopted %d foreign packs: %v", n, err)
		}
		if o := h.read(t, st); !slices.Equal(o.listed, all) || o.whole != 3 {
			t.Fatalf("foreign orphan pack: %+v", o)
		}
	})

	t.Run("a point from another vault", func(t *testing.T) {
		st := clone(t, h.raw)
		for _, n := range names(t, h.foreign, "points/") {
			put(t, st, n, load(t, h.foreign, n))
		}
		if o := h.read(t, st); !slices.Equal(o.listed, all) || o.whole != 3 {
			t.Fatalf("foreign point listed: %+v", o)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		// The whole vault served as it was after the second run: every
		// object consistent, only the newest point and its data missing.
		// A reader alone cannot tell; the mark of the newest point this
		// host saw can.
		o := h.read(t, h.raw)
		listed := h.points
		now := time.Now()
		mark, err := rollback.Check(rollback.Mark{}, listed, now)
		if err != nil || mark.Point != h.points[2].ID {
			t.Fatalf("%+v %v", mark, err)
		}
		old := h.read(t, h.after[1])
		if !slices.Equal(old.listed, h.ids(0, 1)) || old.whole != 2 || old.damaged || old.problems != 0 {
			t.Fatalf("rolled-back vault: %+v (untouched: %+v)", old, o)
		}
		if _, err := rollback.Check(mark, listed[:2], now); !errors.Is(err, rollback.ErrRolledBack) {
			t.Fatalf("rollback not noticed: %v", err)
		}
		// Only the newest point withheld, its data left: the same.
		st := clone(t, h.raw)
		remove(t, st, pointObject(h.points[2].ID))
		if o := h.read(t, st); !slices.Equal(o.listed, h.ids(0, 1)) || o.damaged {
			t.Fatalf("withheld point: %+v", o)
		}
		if _, err := rollback.Check(mark, listed[:2], now); !errors.Is(err, rollback.ErrRolledBack) {
			t.Fatalf("withheld newest point not noticed: %v", err)
		}
	})
}

func dataObject(loc index.Location) string {
	s := loc.Pack.String()
	return "data/" + s[:2] + "/" + s
}

// pointObject is the name of point id; remove fails the test if the vault
// stores points elsewhere.
func pointObject(id keys.ID) string { return "points/" + id.String() }

package prune_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const margin = time.Hour

// fixture is one machine's area in memory, its owner and a clock for
// prune.
type fixture struct {
	t     *testing.T
	st    storage.Storage
	ks    *keys.KeySet
	owner *keys.OwnerKeys
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, mem.New())
}

func newFixtureOn(t *testing.T, st storage.Storage) *fixture {
	t.Helper()
	v, err := repo.Create(context.Background(), st, "correct horse battery staple", cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := keys.NewOwnerKeys(v.ID())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, ks: v.Keys(), owner: owner, clock: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

// open opens the area afresh, as the next process would.
func (f *fixture) open() *repo.Area {
	f.t.Helper()
	v, err := repo.Open(context.Background(), f.st, f.ks)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// guarded opens the area as a backup does: a guard started (listing the
// marks hourly, so only Commit and the start list them; stopped when the
// test ends), then the index loaded.
func (f *fixture) guarded() (*repo.Area, *guard.Guard) {
	f.t.Helper()
	ctx := context.Background()
	v := f.open()
	g, err := guard.Start(ctx, v, guard.Options{Every: time.Hour}, func(err error) { f.t.Errorf("guard failed: %v", err) })
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(g.Stop)
	if err := v.LoadIndex(ctx); err != nil {
		f.t.Fatal(err)
	}
	return v, g
}

// guardedWriter is guarded, with a Writer that consults the guard.
func (f *fixture) guardedWriter() (*repo.Area, *guard.Guard, *repo.Writer) {
	f.t.Helper()
	v, g := f.guarded()
	w := v.NewWriter(context.Background(), 1)
	w.SetGuard(g)
	return v, g, w
}

// reader opens the area with its index loaded, as a mount does.
func (f *fixture) reader() *repo.Area {
	f.t.Helper()
	ctx := context.Background()
	v := f.open()
	if err := v.LoadIndex(ctx); err != nil {
		f.t.Fatal(err)
	}
	if _, err := v.AdoptOrphanPacks(ctx, false); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) prune(opts prune.Options) *prune.Result {
	f.t.Helper()
	res, err := f.tryPrune(opts)
	if err != nil {
		f.t.Fatalf("prune: %v", err)
	}
	return res
}

func (f *fixture) tryPrune(opts prune.Options) (*prune.Result, error) {
	opts.Owner = f.owner
	if opts.MaxUnused == 0 {
		opts.MaxUnused = 1 // no repacking unless asked
	}
	return prune.RunAt(context.Background(), f.open(), opts, func() time.Time { return f.clock })
}

// commit stores files (one chunk each) as a point, the way a backup
// without a guard would: it reuses whatever the index and the orphan packs
// hold.
func (f *fixture) commit(files map[string][]byte) *repo.Point {
	f.t.Helper()
	ctx := context.Background()
	v := f.open()
	if err := v.LoadIndex(ctx); err != nil {
		f.t.Fatal(err)
	}
	if _, err := v.AdoptOrphanPacks(ctx, true); err != nil {
		f.t.Fatal(err)
	}
	w := v.NewWriter(ctx, 1)
	p, err := store(ctx, v, w, files)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := v.SavePoint(ctx, p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// store writes files through w and flushes it, and returns the point to
// commit.
func store(ctx context.Context, v *repo.Area, w *repo.Writer, files map[string][]byte) (*repo.Point, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var dir tree.Part
	for _, n := range names {
		data := files[n]
		id := v.Keys().ID(keys.KindData, data)
		if _, err := w.Save(ctx, keys.KindData, id, data); err != nil {
			return nil, err
		}
		dir.Nodes = append(dir.Nodes, tree.Node{Name: n, Type: tree.File, Mode: 0o644, Size: uint64(len(data)),
			Extents: []tree.Extent{{Offset: 0, Length: uint32(len(data)), ID: id}}})
	}
	dirID, err := w.SavePart(ctx, &dir)
	if err != nil {
		return nil, err
	}
	root := tree.Node{Name: repo.RootName, Type: tree.Dir, Mode: 0o755, Entries: uint64(len(names)),
		Parts: []tree.PartRef{{First: names[0], ID: dirID}}}
	rootID, err := w.SavePart(ctx, &tree.Part{Nodes: []tree.Node{root}})
	if err != nil {
		return nil, err
	}
	if err := w.Flush(ctx); err != nil {
		return nil, err
	}
	return &repo.Point{Machine: "m", Hostname: "h", Time: time.Now().UTC(), Paths: []string{"/"}, Root: rootID}, nil
}

// verify reads every file of p back through a fresh reader.
func (f *fixture) verify(p *repo.Point, files map[string][]byte) {
	f.t.Helper()
	ctx := context.Background()
	v := f.reader()
	root, err := v.Part(ctx, p.Root)
	if err != nil {
		f.t.Fatalf("point %s: root: %v", p.ID.Short(), err)
	}
	dir, err := v.Part(ctx, root.Nodes[0].Parts[0].ID)
	if err != nil {
		f.t.Fatalf("point %s: listing: %v", p.ID.Short(), err)
	}
	if len(dir.Nodes) != len(files) {
		f.t.Fatalf("point %s lists %d files, want %d", p.ID.Short(), len(dir.Nodes), len(files))
	}
	for _, n := range dir.Nodes {
		got, err := v.Chunk(ctx, n.Extents[0].ID)
		if err != nil || !bytes.Equal(got, files[n.Name]) {
			f.t.Fatalf("point %s: file %s: %d bytes, %v", p.ID.Short(), n.Name, len(got), err)
		}
	}
}

// checkClean runs check --read-data and wants no problem and no stale pack.
func (f *fixture) checkClean() {
	f.t.Helper()
	res, err := check.Run(context.Background(), f.open(), check.Options{ReadData: true})
	if err != nil {
		f.t.Fatalf("check: %v %v", err, res.Problems)
	}
	if res.Stale != 0 {
		f.t.Errorf("check: %d stale packs", res.Stale)
	}
}

func (f *fixture) names(prefix string) []string {
	f.t.Helper()
	var out []string
	err := f.st.List(context.Background(), prefix, func(fi storage.Info) error {
		out = append(out, fi.Name)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func (f *fixture) exists(name string) bool {
	_, err := f.st.Stat(context.Background(), name)
	return err == nil
}

// packOf returns the object name of the pack holding blob id.
func (f *fixture) packOf(id keys.ID) string {
	f.t.Helper()
	loc, ok := f.reader().Index().Lookup(id)
	if !ok {
		f.t.Fatalf("blob %s is in no pack", id.Short())
	}
	return packName(loc.Pack)
}

func packName(id keys.ID) string { s := id.String(); return "data/" + s[:2] + "/" + s }

// indexed reports whether a loaded index names pack.
func (f *fixture) indexed(name string) bool {
	v := f.open()
	if err := v.LoadIndex(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range v.Index().Packs() {
		if packName(p) == name {
			return true
		}
	}
	return false
}

// noStaleIndex fails when an index file names a pack that is gone.
func (f *fixture) noStaleIndex() {
	f.t.Helper()
	ctx := context.Background()
	v := f.open()
	ids, err := v.ObjectIDs(ctx, repo.IndexPrefix)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, id := range ids {
		file, err := v.ReadIndexFile(ctx, id)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range file.Packs {
			if !f.exists(packName(p.Pack)) {
				f.t.Errorf("index file %s names pack %s, which is gone", id.Short(), p.Pack.Short())
			}
		}
	}
}

func blobID(f *fixture, data []byte) keys.ID { return f.ks.ID(keys.KindData, data) }

func TestMarkThenDeleteAfterMargin(t *testing.T) {
	f := newFixture(t)
	a, b, c := testfiles.RandomBytes(64<<10, 1), testfiles.RandomBytes(64<<10, 2), testfiles.RandomBytes(64<<10, 3)
	keep := map[string][]byte{"a": a, "b": b}
	p1 := f.commit(keep)
	p2 := f.commit(map[string][]byte{"c": c})
	packC := f.packOf(blobID(f, c))
	before := len(f.names("data/"))

	res := f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p2.ID}})
	if res.Purged != 1 || res.Points != 1 || res.Marked != 2 || res.Deleted != 0 {
		t.Fatalf("first prune: %+v; want 1 purged, 1 point, 2 packs marked (c's and its tree), none deleted", res)
	}
	if f.exists("points/"+p2.ID.String()) || !f.exists(packC) || len(f.names("data/")) != before {
		t.Fatal("the first prune deleted a pack, or did not purge the point")
	}
	if len(f.names(guard.MarksPrefix)) != 1 {
		t.Fatalf("marks: %v", f.names(guard.MarksPrefix))
	}
	if f.indexed(packC) {
		t.Error("a marked pack is still in the index")
	}
	f.verify(p1, keep)
	f.noStaleIndex()

	f.clock = f.clock.Add(margin / 2)
	if res := f.prune(prune.Options{Margin: margin}); res.Deleted != 0 || res.Pending != 2 || res.Marked != 0 {
		t.Fatalf("prune within the margin: %+v; want 2 pending, nothing deleted or marked again", res)
	}
	f.clock = f.clock.Add(margin/2 + time.Second)
	res = f.prune(prune.Options{Margin: margin})
	if res.Deleted != 2 || res.Kept != 0 || res.Marked != 0 {
		t.Fatalf("prune after the margin: %+v; want 2 deleted", res)
	}
	if f.exists(packC) || len(f.names("data/")) != before-2 {
		t.Errorf("packs left: %v", f.names("data/"))
	}
	if n := f.names("prune/"); len(n) != 0 {
		t.Errorf("prune left %v", n)
	}
	f.verify(p1, keep)
	f.noStaleIndex()
	f.checkClean()
	if res := f.prune(prune.Options{Margin: margin}); res.Marked != 0 || res.Deleted != 0 || res.IndexWritten != 0 {
		t.Errorf("prune of a clean area: %+v", res)
	}
}

// TestRescueNeededAgain: a point committed after the mark (by a writer
// that did not see it) needs a marked pack: the pack stays.
func TestRescueNeededAgain(t *testing.T) {
	f := newFixture(t)
	a, b := testfiles.RandomBytes(64<<10, 1), testfiles.RandomBytes(64<<10, 2)
	f.commit(map[string][]byte{"a": a})
	p2 := f.commit(map[string][]byte{"b": b})
	packB := f.packOf(blobID(f, b))
	if res := f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p2.ID}}); res.Marked != 2 {
		t.Fatalf("first prune: %+v", res)
	}
	again := map[string][]byte{"b": b, "a": a}
	p3 := f.commit(again) // reuses b from the marked pack (adopted as an orphan)
	f.clock = f.clock.Add(margin)
	res := f.prune(prune.Options{Margin: margin})
	if res.Kept != 1 || res.Deleted != 1 {
		t.Fatalf("prune after the margin: %+v; want b's pack kept, p2's tree pack deleted", res)
	}
	if !f.exists(packB) || !f.indexed(packB) {
		t.Error("the pack p3 needs was deleted or left out of the index")
	}
	f.verify(p3, again)
	f.checkClean()
}

// TestKeepObject: a running backup that depends on a marked pack keeps it
// through its guard, although no point needs it yet.
func TestKeepObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := testfiles.RandomBytes(64<<10, 1)
	p1 := f.commit(map[string][]byte{"a": a})
	packA := f.packOf(blobID(f, a))

	// A backup starts before the mark and reuses a.
	_, g, w := f.guardedWriter()
	if !w.Known(blobID(f, a)) {
		t.Fatal("a is not known")
	}

	if res := f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}}); res.Marked != 2 {
		t.Fatalf("first prune: %+v", res)
	}
	// The backup's next listing answers the mark; it has not committed.
	if err := g.Commit(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(f.names(guard.KeepsPrefix)) != 1 {
		t.Fatalf("keeps: %v", f.names(guard.KeepsPrefix))
	}
	f.clock = f.clock.Add(margin)
	res := f.prune(prune.Options{Margin: margin})
	if res.Kept != 1 || res.Deleted != 1 || !f.exists(packA) {
		t.Fatalf("prune after the margin: %+v, pack a exists %v; want a's pack kept", res, f.exists(packA))
	}
	if n := f.names("prune/"); len(n) != 0 {
		t.Errorf("the mark and its keeps stay: %v", n)
	}
	// Nobody needs it in the end: marked again, then deleted.
	if res := f.prune(prune.Options{Margin: margin}); res.Marked != 1 {
		t.Fatalf("prune: %+v; want a's pack marked again", res)
	}
	f.clock = f.clock.Add(margin)
	if res := f.prune(prune.Options{Margin: margin}); res.Deleted != 1 || f.exists(packA) {
		t.Fatalf("prune: %+v; want a's pack deleted", res)
	}
}

// TestGuardStoresMarkedBlobsAgain: a backup that sees a mark does not
// reuse the blobs of its packs, even when an index file still names them.
func TestGuardStoresMarkedBlobsAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := testfiles.RandomBytes(64<<10, 1)
	p1 := f.commit(map[string][]byte{"a": a})
	packA := f.packOf(blobID(f, a))
	f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}})
	// An index file naming the marked pack again (as a backup without a
	// guard writes when it adopts it).
	if _, err := f.open().AdoptOrphanPacks(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !f.indexed(packA) {
		t.Fatal("setup: the marked pack is not indexed")
	}

	v, g, w := f.guardedWriter()
	if w.Known(blobID(f, a)) {
		t.Fatal("a blob of a marked pack is reused")
	}
	files := map[string][]byte{"a": a}
	p, err := store(ctx, v, w, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Commit(ctx, func(ctx context.Context) error { return v.SavePoint(ctx, p) }); err != nil {
		t.Fatal(err)
	}
	if n := f.names(guard.KeepsPrefix); len(n) != 0 {
		t.Errorf("keeps for packs the backup does not use: %v", n)
	}
	f.clock = f.clock.Add(margin)
	if res := f.prune(prune.Options{Margin: margin}); res.Deleted != 2 || f.exists(packA) {
		t.Fatalf("prune: %+v; want the marked packs deleted", res)
	}
	f.verify(p, files)
	f.noStaleIndex()
	f.checkClean()
}

func TestRepack(t *testing.T) {
	f := newFixture(t)
	all := manyFiles(10, 256<<10)
	p1 := f.commit(all)
	kept := map[string][]byte{"f0": all["f0"], "f1": all["f1"]}
	p2 := f.commit(kept)
	old := f.packOf(blobID(f, all["f0"]))

	res := f.prune(prune.Options{Margin: margin, MaxUnused: 0.05, Purge: []keys.ID{p1.ID}})
	if res.Repacked != 1 || res.CopiedBytes < 512<<10 || res.CopiedBytes > 600<<10 {
		t.Fatalf("prune: %+v; want the data pack repacked, two blobs copied", res)
	}
	// f0 has a copy in the new pack; the old one stays, marked, until the
	// margin has passed.
	copies := f.reader().Index().Locations(blobID(f, all["f0"]))
	if len(copies) != 2 || !f.exists(old) || !slices.ContainsFunc(copies, func(l index.Location) bool { return packName(l.Pack) != old }) {
		t.Fatalf("f0's copies after the repack: %+v (old %s, exists %v); want the old and a new one", copies, old, f.exists(old))
	}
	f.verify(p2, kept)
	f.checkClean()
	f.clock = f.clock.Add(margin)
	res = f.prune(prune.Options{Margin: margin, MaxUnused: 0.05})
	if res.Deleted < 2 || f.exists(old) || res.Repacked != 0 {
		t.Fatalf("prune after the margin: %+v", res)
	}
	f.verify(p2, kept)
	f.noStaleIndex()
	f.checkClean()
}

func TestZeroMarginDeletesInOneRun(t *testing.T) {
	f := newFixture(t)
	a, b := testfiles.RandomBytes(64<<10, 1), testfiles.RandomBytes(64<<10, 2)
	p1 := f.commit(map[string][]byte{"a": a})
	p2 := f.commit(map[string][]byte{"b": b})
	packB := f.packOf(blobID(f, b))
	res := f.prune(prune.Options{Purge: []keys.ID{p2.ID}})
	if res.Marked != 2 || res.Deleted != 2 || f.exists(packB) {
		t.Fatalf("prune: %+v", res)
	}
	if n := f.names("prune/"); len(n) != 0 {
		t.Errorf("left %v", n)
	}
	f.verify(p1, map[string][]byte{"a": a})
	f.noStaleIndex()
	f.checkClean()
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	all := manyFiles(6, 128<<10)
	p1 := f.commit(all)
	f.commit(map[string][]byte{"f0": all["f0"]})
	f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p1.ID}, MaxUnused: 1})
	f.commit(map[string][]byte{"x": testfiles.RandomBytes(1000, 99)})
	before := f.names("")
	f.clock = f.clock.Add(margin)
	res := f.prune(prune.Options{Margin: margin, DryRun: true, MaxUnused: 0.01})
	if res.Deleted == 0 || res.Repacked == 0 && res.Marked == 0 {
		t.Errorf("dry run reports nothing to do: %+v", res)
	}
	if after := f.names(""); !slices.Equal(before, after) {
		t.Errorf("dry run changed the storage:\nbefore %v\nafter  %v", before, after)
	}
}

func TestRefusesUnreadablePoints(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p1 := f.commit(map[string][]byte{"a": testfiles.RandomBytes(1000, 1)})
	f.commit(map[string][]byte{"b": testfiles.RandomBytes(1000, 2)})
	name := "points/" + p1.ID.String()
	b, err := f.st.Load(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := f.st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Save(ctx, name, b); err != nil {
		t.Fatal(err)
	}
	before := f.names("")
	if _, err := f.tryPrune(prune.Options{Margin: 0}); !errors.Is(err, prune.ErrUnreadable) {
		t.Fatalf("prune with a damaged point = %v, want ErrUnreadable", err)
	}
	if after := f.names(""); !slices.Equal(before, after) {
		t.Errorf("a refused prune changed the storage")
	}
}

func TestRefusesMissingBlobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := testfiles.RandomBytes(1000, 1)
	f.commit(map[string][]byte{"a": a})
	if err := f.st.Delete(ctx, f.packOf(blobID(f, a))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tryPrune(prune.Options{Margin: 0}); !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), "in no pack") {
		t.Fatalf("prune with a missing chunk = %v", err)
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string][]byte{"a": testfiles.RandomBytes(1000, 1)})
	lock := func(at time.Time) {
		t.Helper()
		_ = f.st.Delete(ctx, prune.LockName)
		body := fmt.Sprintf(`{"host":"elsewhere","pid":1,"run":"x","time":%q}`, at.Format(time.RFC3339Nano))
		if err := f.st.Save(ctx, prune.LockName, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	lock(f.clock.Add(-time.Minute))
	if _, err := f.tryPrune(prune.Options{Margin: margin}); !errors.Is(err, prune.ErrLocked) || !strings.Contains(err.Error(), "elsewhere") {
		t.Fatalf("prune beside a live lock = %v, want ErrLocked naming its host", err)
	}
	if _, err := f.tryPrune(prune.Options{Margin: margin, DryRun: true}); err != nil {
		t.Errorf("a dry run takes no lock: %v", err)
	}
	lock(f.clock.Add(-time.Hour))
	if _, err := f.tryPrune(prune.Options{Margin: margin}); err != nil {
		t.Fatalf("prune beside a stale lock = %v", err)
	}
	if f.exists(prune.LockName) {
		t.Error("the lock stays after the prune")
	}
}

// TestInvalidMarks: marks the owner did not sign, or made for another
// area, are never acted on, and are removed.
func TestInvalidMarks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := testfiles.RandomBytes(1000, 1)
	f.commit(map[string][]byte{"a": a})
	pack := f.packOf(blobID(f, a))
	id, _ := keys.ParseID(pack[len("data/xx/"):])
	other, err := keys.NewOwnerKeys(f.open().ID())
	if err != nil {
		t.Fatal(err)
	}
	forged := guard.Mark{Area: f.open().ID(), ID: guard.MarkID{1}, Created: f.clock.Add(-24 * time.Hour), Margin: time.Minute, Packs: []keys.ID{id}}
	if err := f.st.Save(ctx, guard.MarksPrefix+forged.ID.String(), forged.Encode(other)); err != nil {
		t.Fatal(err)
	}
	res := f.prune(prune.Options{Margin: margin})
	if res.InvalidMarks != 1 || res.Deleted != 0 || !f.exists(pack) {
		t.Fatalf("prune: %+v; the forged mark must not delete anything", res)
	}
	if n := f.names(guard.MarksPrefix); len(n) != 0 {
		t.Errorf("marks left: %v", n)
	}
}

// TestReadersTolerateSupersession: an index file or a pack that is listed
// and then gone (a prune superseded or deleted it) is skipped by readers,
// and a stale index entry no point needs is no damage.
func TestReadersTolerateSupersession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b := testfiles.RandomBytes(1000, 1), testfiles.RandomBytes(1000, 2)
	p1 := f.commit(map[string][]byte{"a": a})
	p2 := f.commit(map[string][]byte{"b": b})
	gone := keys.ID{0xab}
	ghost := &ghosts{Storage: f.st, names: []string{"index/" + gone.String(), packName(gone)}}
	v, err := repo.Open(ctx, ghost, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatalf("LoadIndex with an index file gone since the listing: %v", err)
	}
	if _, err := v.AdoptOrphanPacks(ctx, false); err != nil {
		t.Fatalf("AdoptOrphanPacks with a pack gone since the listing: %v", err)
	}
	// p2's data pack deleted, its index file left: stale, not damage,
	// once p2 is gone too.
	if err := f.st.Delete(ctx, f.packOf(blobID(f, b))); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Delete(ctx, "points/"+p2.ID.String()); err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(ctx, f.open(), check.Options{})
	if err != nil || res.Stale != 1 {
		t.Fatalf("check = %v, %d stale; want no problem, 1 stale pack: %v", err, res.Stale, res.Problems)
	}
	// A backup's guard keeps off the blobs of a pack that is gone.
	v, g := f.guarded()
	_, missing, err := v.AdoptOrphanPacksExcept(ctx, false, g.Skip)
	if err != nil || len(missing) != 1 {
		t.Fatalf("AdoptOrphanPacksExcept: missing %v, %v", missing, err)
	}
	g.Avoid(missing)
	w := v.NewWriter(ctx, 1)
	w.SetGuard(g)
	if w.Known(blobID(f, b)) || !w.Known(blobID(f, a)) {
		t.Error("the guard reuses a blob of a pack that is gone, or not one that is there")
	}
	// The next prune supersedes the stale index file.
	f.prune(prune.Options{Margin: margin})
	f.noStaleIndex()
	f.verify(p1, map[string][]byte{"a": a})
}

// ghosts lists names that do not exist.
type ghosts struct {
	storage.Storage
	names []string
}

func (g *ghosts) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	for _, n := range g.names {
		if strings.HasPrefix(n, prefix) {
			if err := fn(storage.Info{Name: n, Size: 100}); err != nil {
				return err
			}
		}
	}
	return g.Storage.List(ctx, prefix, fn)
}

func TestGuardLate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string][]byte{"a": testfiles.RandomBytes(1000, 1)})
	start := func(tol time.Duration) *guard.Guard {
		g, err := guard.Start(ctx, f.open(), guard.Options{Every: time.Hour, Tolerance: tol}, func(error) {})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := start(20 * time.Millisecond)
	time.Sleep(40 * time.Millisecond)
	if err := g.Commit(ctx, func(context.Context) error { t.Error("saved after a late listing"); return nil }); !errors.Is(err, guard.ErrLostMarks) {
		t.Errorf("Commit after a silence longer than the tolerance = %v, want ErrGuard", err)
	}
	g = start(time.Minute)
	var saved bool
	err := g.Commit(ctx, func(context.Context) error { saved = true; return nil })
	if err != nil || !saved {
		t.Errorf("Commit in time = %v, saved %v", err, saved)
	}
	g = start(20 * time.Millisecond)
	err = g.Commit(ctx, func(context.Context) error { time.Sleep(40 * time.Millisecond); return nil })
	if !errors.Is(err, guard.ErrLostMarks) {
		t.Errorf("Commit of a slow save = %v, want ErrGuard", err)
	}
}

// TestGuardStopsRunThatMissedListings: the periodic listing stops the run
// (through fail) when a listing completes too late.
func TestGuardStopsRunThatMissedListings(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	slow := &slowList{Storage: f.st}
	v, err := repo.Open(ctx, slow, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	g, err := guard.Start(ctx, v, guard.Options{Every: 5 * time.Millisecond, Tolerance: 30 * time.Millisecond}, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	slow.delay(60 * time.Millisecond)
	select {
	case err := <-failed:
		if !errors.Is(err, guard.ErrLostMarks) {
			t.Errorf("fail(%v), want ErrGuard", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the guard did not stop the run")
	}
}

type slowList struct {
	storage.Storage
	mu sync.Mutex
	d  time.Duration
}

func (s *slowList) delay(d time.Duration) { s.mu.Lock(); s.d = d; s.mu.Unlock() }

func (s *slowList) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	time.Sleep(d)
	return s.Storage.List(ctx, prefix, fn)
}

// TestSmallerMarginActsOnOlderMarks: a mark is due after the smaller of its
// own margin and the prune's.
func TestSmallerMarginActsOnOlderMarks(t *testing.T) {
	f := newFixture(t)
	a, b := testfiles.RandomBytes(1000, 1), testfiles.RandomBytes(1000, 2)
	p1 := f.commit(map[string][]byte{"a": a})
	p2 := f.commit(map[string][]byte{"b": b})
	f.prune(prune.Options{Margin: margin, Purge: []keys.ID{p2.ID}})
	f.clock = f.clock.Add(11 * time.Minute)
	if res := f.prune(prune.Options{Margin: prune.MinMargin}); res.Deleted != 2 {
		t.Fatalf("prune with a 10 minute margin 11 minutes after a mark of an hour: %+v", res)
	}
	f.verify(p1, map[string][]byte{"a": a})
}

// manyFiles returns n files f0..f<n-1> of size bytes each, with distinct
// contents.
func manyFiles(n, size int) map[string][]byte {
	all := make(map[string][]byte, n)
	for i := range n {
		all[fmt.Sprintf("f%d", i)] = testfiles.RandomBytes(size, uint64(i))
	}
	return all
}

package repair_test

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/repair"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

type fixture struct {
	st   *mem.Store
	keys *keys.KeySet
}

// newFixture backs up two small trees (two points) into a fresh in-memory
// vault.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := mem.New()
	v, err := repo.Create(ctx, st, "correct horse battery staple", cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		dir := t.TempDir()
		for name, data := range map[string][]byte{
			"a":     []byte("a small file"),
			"b":     testfiles.RandomBytes(2<<20, uint64(1+i)),
			"sub/c": testfiles.RandomBytes(100<<10, uint64(10+i)),
		} {
			path := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Machine: "m"}); err != nil {
			t.Fatalf("backup: %v", err)
		}
	}
	return &fixture{st: st, keys: v.Keys()}
}

func (f *fixture) vault(t *testing.T) *repo.Area {
	t.Helper()
	v, err := repo.Open(context.Background(), f.st, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) names(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	err := f.st.List(context.Background(), prefix, func(fi storage.Info) error {
		out = append(out, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) save(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := f.st.Save(context.Background(), name, b); err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces object name by what edit makes of its bytes.
func (f *fixture) rewrite(t *testing.T, name string, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	b, err := f.st.Load(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	f.save(t, name, edit(b))
}

func (f *fixture) check(t *testing.T) *check.Result {
	t.Helper()
	res, err := check.Run(context.Background(), f.vault(t), check.Options{ReadData: true})
	if err != nil && !errors.Is(err, check.ErrDamaged) {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) repair(t *testing.T, apply bool) *repair.AreaReport {
	t.Helper()
	rep, err := repair.Area(context.Background(), f.vault(t), "m", repair.Options{Apply: apply})
	if err != nil {
		t.Fatalf("repair (apply %v): %v", apply, err)
	}
	return rep
}

func hex64(seed uint64) string { return hex.EncodeToString(testfiles.RandomBytes(32, seed)) }

// Finding 5: what a create-only credential can upload where azfs lists
// (points/, index/, tombstones/) fails check and prune until repair moves
// it into quarantine; a point sealed under a key this reader lacks is not
// junk and stays.
func TestQuarantineJunk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	junk := []string{
		"points/" + hex64(100),     // random bytes under a point's name
		"points/not-a-point",       // a name azfs never writes
		"index/" + hex64(101),      // an index file that does not authenticate
		"tombstones/" + hex64(102), // a tombstone that does not authenticate
	}
	for i, name := range junk {
		f.save(t, name, testfiles.RandomBytes(300, uint64(200+i)))
	}
	// Another key's point: sealed under a key the area names (keyids/)
	// but this reader lacks.
	other, err := keys.NewKeySet(f.keys.Vault)
	if err != nil {
		t.Fatal(err)
	}
	s := other.NewSealer()
	plain := []byte(`{"version":1}`)
	id := other.ID(keys.KindPoint, plain)
	foreign := "points/" + id.String()
	f.save(t, foreign, s.Seal(nil, keys.KindPoint, id, plain))
	keyID := s.KeyID()
	f.save(t, "keyids/"+hex.EncodeToString(keyID[:]), nil)

	if _, err := f.vault(t).Points(ctx); !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("points with junk: %v, want ErrDamaged", err)
	}
	if res := f.check(t); len(res.Problems) == 0 {
		t.Fatal("check with junk finds nothing")
	}

	dry := f.repair(t, false)
	if got := movedNames(dry); strings.Join(got, " ") != strings.Join(sorted(junk), " ") {
		t.Errorf("dry run: junk %q, want %q", got, sorted(junk))
	}
	for _, m := range dry.Junk {
		if m.To != "" || !errors.Is(m.Why, repo.ErrDamaged) {
			t.Errorf("dry run: %q moved to %q, why %v", m.Name, m.To, m.Why)
		}
	}
	if n := len(f.names(t, "quarantine/")); n != 0 {
		t.Fatalf("dry run quarantined %d objects", n)
	}

	rep := f.repair(t, true)
	if len(rep.Junk) != len(junk) || len(rep.Quarantine) != len(junk) {
		t.Fatalf("apply: moved %d, quarantine holds %d, want %d", len(rep.Junk), len(rep.Quarantine), len(junk))
	}
	for _, m := range rep.Junk {
		if m.To != "quarantine/"+m.Name {
			t.Errorf("%q quarantined as %q", m.Name, m.To)
		}
		if _, err := f.st.Stat(ctx, m.Name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%q still there after quarantine: %v", m.Name, err)
		}
	}
	if len(rep.Problems) != 0 {
		t.Errorf("check after the repair: %v", rep.Problems)
	}
	if _, err := f.st.Stat(ctx, foreign); err != nil {
		t.Errorf("the other key's point was moved: %v", err)
	}
	points, err := f.vault(t).Points(ctx)
	if err != nil || len(points) != 2 {
		t.Errorf("points after repair: %d, %v; want 2, nil", len(points), err)
	}

	// The same junk uploaded again goes to the same name; other bytes
	// under that name get one of their own.
	f.save(t, junk[0], testfiles.RandomBytes(300, 200))
	f.save(t, junk[2], testfiles.RandomBytes(300, 999))
	again := f.repair(t, true)
	if got := movedNames(again); len(got) != 2 {
		t.Fatalf("second repair moved %q", got)
	}
	for _, m := range again.Junk {
		want := "quarantine/" + m.Name
		if m.Name == junk[2] {
			want += "-2"
		}
		if m.To != want {
			t.Errorf("%q quarantined again as %q, want %q", m.Name, m.To, want)
		}
	}
	if n := len(f.names(t, "quarantine/")); n != len(junk)+1 {
		t.Errorf("quarantine holds %d objects, want %d", n, len(junk)+1)
	}
}

// The index is rebuilt from the pack trailers: lost and damaged index
// files are replaced, a file naming a pack that is gone is superseded
// after its successor is saved, and a pack whose trailer is damaged stays
// readable through the index file that names it.
func TestRebuildIndex(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	files := f.names(t, "index/")
	packs := f.names(t, "data/")
	if len(files) < 2 || len(packs) < 3 {
		t.Fatalf("fixture: %d index files, %d packs", len(files), len(packs))
	}
	// Damage one index file, lose another.
	f.rewrite(t, files[0], func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	if err := f.st.Delete(ctx, files[1]); err != nil {
		t.Fatal(err)
	}
	// An authenticated file naming a pack that no longer exists, and one
	// of the existing packs.
	v := f.vault(t)
	entries, _, err := v.PackTrailer(ctx, packID(t, packs[0]))
	if err != nil {
		t.Fatal(err)
	}
	staleID, err := v.SaveObject(ctx, repo.IndexPrefix, keys.KindIndex, (&index.File{Packs: []index.PackBlobs{
		{Pack: keys.ID(testfiles.RandomBytes(32, 300)), Entries: []pack.Entry{{Kind: keys.KindData, ID: keys.ID(testfiles.RandomBytes(32, 301)), Offset: 0, Length: 100}}},
		{Pack: packID(t, packs[0]), Entries: entries},
	}}).Encode())
	if err != nil {
		t.Fatal(err)
	}

	dry := f.repair(t, false)
	if len(dry.Index.Stale) != 1 || dry.Index.Stale[0].ID != staleID || !dry.Index.Written.IsZero() {
		t.Errorf("dry run: stale %+v, written %v; want the file naming a lost pack, nothing written", dry.Index.Stale, dry.Index.Written)
	}
	if dry.Index.Covered == 0 {
		t.Errorf("dry run: the new index file would cover no pack")
	}
	if got := f.names(t, "index/"); len(got) != len(files) {
		t.Errorf("dry run changed the index files: %q", got)
	}

	rep := f.repair(t, true)
	if rep.Index.Written.IsZero() || len(rep.Index.Stale) != 1 {
		t.Fatalf("apply: written %v, stale %+v", rep.Index.Written, rep.Index.Stale)
	}
	if _, err := f.st.Stat(ctx, "index/"+staleID.String()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the stale index file is still there: %v", err)
	}
	if _, err := f.st.Stat(ctx, "quarantine/"+files[0]); err != nil {
		t.Errorf("the damaged index file is not in quarantine: %v", err)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("check after the rebuild: %v", rep.Problems)
	}
	if res := f.check(t); len(res.Problems) != 0 || res.Stale != 0 {
		t.Errorf("check --read-data after the rebuild: %v (stale %d)", res.Problems, res.Stale)
	}
	// A second run finds nothing to do.
	if again := f.repair(t, false); again.Index.Covered != 0 || len(again.Index.Stale) != 0 || len(again.Junk) != 0 {
		t.Errorf("a second repair would still act: %+v, junk %v", again.Index, again.Junk)
	}

	// A damaged trailer: its pack's blobs are still indexed, so nothing is
	// lost; with no index file naming the pack, its blobs are.
	victim := packs[len(packs)-1]
	f.rewrite(t, victim, func(b []byte) []byte { b[len(b)-pack.FooterLen-5] ^= 1; return b })
	rep = f.repair(t, true)
	if len(rep.Index.DamagedTrailers) != 1 || len(rep.Index.Unindexed) != 0 {
		t.Errorf("damaged trailer, indexed: %+v", rep.Index)
	}
	for _, name := range f.names(t, "index/") {
		if err := f.st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	rep = f.repair(t, true)
	if len(rep.Index.Unindexed) != 1 || rep.Index.Unindexed[0] != packID(t, victim) {
		t.Errorf("damaged trailer, no index: unindexed %v, want %s", rep.Index.Unindexed, victim)
	}
	if len(rep.Problems) == 0 {
		t.Errorf("the blobs of a pack no index names and whose trailer is damaged are lost, but check finds nothing")
	}
}

func packID(t *testing.T, name string) keys.ID {
	t.Helper()
	id, err := keys.ParseID(name[strings.LastIndexByte(name, '/')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func movedNames(r *repair.AreaReport) []string {
	var out []string
	for _, m := range r.Junk {
		out = append(out, m.Name)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// A repair that would delete index files refuses to run beside a prune,
// which supersedes them itself; a dry run goes ahead.
func TestRepairRefusedDuringPrune(t *testing.T) {
	f := newFixture(t)
	f.save(t, "prune/lock", []byte(`{"host":"h","pid":1}`))
	if _, err := repair.Area(context.Background(), f.vault(t), "m", repair.Options{Apply: true}); !errors.Is(err, repair.ErrPruneRunning) {
		t.Errorf("repair --apply beside a prune: %v, want ErrPruneRunning", err)
	}
	f.repair(t, false)
}

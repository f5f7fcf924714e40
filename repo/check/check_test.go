package check_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

type fixture struct {
	st    *mem.Store
	keys  *keys.KeySet
	dir   string
	point *repo.Point
}

// newFixture backs up a small tree into a fresh in-memory vault.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"a":     []byte("a small file"),
		"b":     testfiles.RandomBytes(2<<20, 1),
		"sub/c": []byte("another small file"),
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := mem.New()
	v, err := repo.Create(ctx, st, "correct horse battery staple", cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Machine: "m"})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return &fixture{st: st, keys: v.Keys(), dir: dir, point: p}
}

// vault opens the fixture's vault afresh, as `azfs check` would.
func (f *fixture) vault(t *testing.T) *repo.Area {
	t.Helper()
	v, err := repo.Open(context.Background(), f.st, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// node finds the backed-up file at path (relative to the fixture's dir).
func (f *fixture) node(t *testing.T, rel string) tree.Node {
	t.Helper()
	ctx := context.Background()
	v := f.vault(t)
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := v.Part(ctx, f.point.Root)
	if err != nil {
		t.Fatal(err)
	}
	n := root.Nodes[0]
	for _, name := range strings.Split(strings.Trim(filepath.Join(f.dir, rel), "/"), "/") {
		part, err := v.Part(ctx, n.Parts[n.PartFor(name)].ID)
		if err != nil {
			t.Fatal(err)
		}
		found := part.Find(name)
		if found == nil {
			t.Fatalf("%s not in the point", rel)
		}
		n = *found
	}
	return n
}

// problemName is how the checker names a file of the fixture's point.
func (f *fixture) problemName(rel string) string {
	return f.point.ID.Short() + ":" + strings.TrimPrefix(filepath.Join(f.dir, rel), "/")
}

// damage flips one bit in the middle of blob's sealed bytes in its pack,
// leaving the pack's trailer intact, and returns the pack's ID.
func (f *fixture) damage(t *testing.T, blob keys.ID) keys.ID {
	t.Helper()
	ctx := context.Background()
	packID, name := f.packOf(t, blob)
	v := f.vault(t)
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	loc, _ := v.Index().Lookup(blob)
	data, err := f.st.Load(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.Offset+loc.Length/2] ^= 0x01
	if err := f.st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Save(ctx, name, data); err != nil {
		t.Fatal(err)
	}
	return packID
}

// packOf returns the storage name of the pack holding blob.
func (f *fixture) packOf(t *testing.T, blob keys.ID) (keys.ID, string) {
	t.Helper()
	v := f.vault(t)
	if err := v.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	loc, ok := v.Index().Lookup(blob)
	if !ok {
		t.Fatalf("blob %s not indexed", blob.Short())
	}
	s := loc.Pack.String()
	return loc.Pack, "data/" + s[:2] + "/" + s
}

// runCheck runs the checker and checks that Problem saw what Result holds.
func runCheck(t *testing.T, v *repo.Area, readData bool) (*check.Result, error) {
	t.Helper()
	var mu sync.Mutex
	var seen []check.Problem
	res, err := check.Run(context.Background(), v, check.Options{ReadData: readData, Problem: func(p check.Problem) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
	}})
	if res != nil && len(seen) != len(res.Problems) {
		t.Errorf("Problem was called %d times for %d problems", len(seen), len(res.Problems))
	}
	if res != nil && (err == nil) != (len(res.Problems) == 0) {
		t.Errorf("check returned %v with %d problems", err, len(res.Problems))
	}
	return res, err
}

func find(problems []check.Problem, what, name string) *check.Problem {
	for i, p := range problems {
		if p.What == what && p.Name == name {
			return &problems[i]
		}
	}
	return nil
}

func TestCleanVault(t *testing.T) {
	f := newFixture(t)
	for _, readData := range []bool{false, true} {
		res, err := runCheck(t, f.vault(t), readData)
		if err != nil {
			t.Fatalf("ReadData %v: check = %v, problems %v", readData, err, res.Problems)
		}
		if res.Points != 1 || res.Packs < 2 || res.Trees < 3 {
			t.Errorf("ReadData %v: checked %d points, %d packs, %d trees", readData, res.Points, res.Packs, res.Trees)
		}
		var stored int64
		_ = f.st.List(context.Background(), "data/", func(fi storage.Info) error { stored += fi.Size; return nil })
		if readData {
			v := f.vault(t)
			if err := v.LoadIndex(context.Background()); err != nil {
				t.Fatal(err)
			}
			if res.Chunks != v.Index().Len() || res.BytesRead != stored {
				t.Errorf("read %d blobs and %d bytes, vault holds %d blobs in %d bytes of packs", res.Chunks, res.BytesRead, v.Index().Len(), stored)
			}
		} else if res.BytesRead != 0 || res.Chunks != 0 {
			t.Errorf("structure check read %d bytes, %d blobs", res.BytesRead, res.Chunks)
		}
	}
}

func TestDamagedChunk(t *testing.T) {
	f := newFixture(t)
	b := f.node(t, "b")
	if len(b.Extents) == 0 {
		t.Fatal("b has no extents")
	}
	chunk := b.Extents[0].ID
	packID := f.damage(t, chunk)

	// The structure is intact: the trailer still authenticates.
	if res, err := runCheck(t, f.vault(t), false); err != nil {
		t.Errorf("structure check = %v, problems %v; want none (only blob bytes changed)", err, res.Problems)
	}

	res, err := runCheck(t, f.vault(t), true)
	if !errors.Is(err, check.ErrDamaged) {
		t.Fatalf("data check = %v, want ErrDamaged", err)
	}
	if find(res.Problems, "pack", packID.String()) == nil {
		t.Errorf("no problem names pack %s whose bytes changed: %v", packID.Short(), res.Problems)
	}
	// Package documentation: damaged content blobs are reported as "chunk".
	if find(res.Problems, "chunk", chunk.String()) == nil {
		t.Errorf("no \"chunk\" problem names the damaged chunk %s: %v", chunk.Short(), res.Problems)
	}
	fileProblem := find(res.Problems, "file", f.problemName("b"))
	if fileProblem == nil {
		t.Fatalf("no problem names the affected file %s: %v", f.problemName("b"), res.Problems)
	}
	if !strings.Contains(fileProblem.Err.Error(), chunk.Short()) {
		t.Errorf("file problem %q does not name the chunk %s", fileProblem.Err, chunk.Short())
	}
	for _, p := range res.Problems {
		if p.What == "file" && p.Name != f.problemName("b") {
			t.Errorf("an intact file is reported: %v", p)
		}
	}
}

func TestMissingPack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	chunk := f.node(t, "b").Extents[0].ID
	packID, name := f.packOf(t, chunk)
	if err := f.st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	res, err := runCheck(t, f.vault(t), false)
	if !errors.Is(err, check.ErrDamaged) {
		t.Fatalf("check = %v, want ErrDamaged", err)
	}
	p := find(res.Problems, "pack", packID.String())
	if p == nil || !strings.Contains(p.Err.Error(), "missing") {
		t.Errorf("no problem reports pack %s missing: %v", packID.Short(), res.Problems)
	}
	if find(res.Problems, "file", f.problemName("b")) == nil {
		t.Errorf("file b, whose chunk was in the pack, is not reported: %v", res.Problems)
	}
}

func TestDamagedTreePack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, dataPack := f.packOf(t, f.node(t, "b").Extents[0].ID)
	var treePack string
	_ = f.st.List(ctx, "data/", func(fi storage.Info) error {
		if fi.Name != dataPack {
			treePack = fi.Name
		}
		return nil
	})
	if treePack == "" {
		t.Fatal("no tree pack")
	}
	if err := f.st.Delete(ctx, treePack); err != nil {
		t.Fatal(err)
	}
	res, err := runCheck(t, f.vault(t), false)
	if !errors.Is(err, check.ErrDamaged) {
		t.Fatalf("check = %v, want ErrDamaged", err)
	}
	if find(res.Problems, "pack", treePack[strings.LastIndexByte(treePack, '/')+1:]) == nil {
		t.Errorf("the missing tree pack is not reported: %v", res.Problems)
	}
	// The point's root part lived in it: the point cannot be walked.
	if find(res.Problems, "point", f.point.ID.String()) == nil {
		t.Errorf("the point whose root is gone is not reported: %v", res.Problems)
	}
}

func TestDamagedIndexFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var idx []string
	_ = f.st.List(ctx, "index/", func(fi storage.Info) error { idx = append(idx, fi.Name); return nil })
	if len(idx) != 1 {
		t.Fatalf("%d index files, want 1", len(idx))
	}
	if err := f.st.Delete(ctx, idx[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Save(ctx, idx[0], testfiles.RandomBytes(500, 9)); err != nil {
		t.Fatal(err)
	}
	// The packs are adopted from their trailers, so only the index file
	// itself is reported.
	res, err := runCheck(t, f.vault(t), true)
	if !errors.Is(err, check.ErrDamaged) {
		t.Fatalf("check = %v, want ErrDamaged", err)
	}
	if len(res.Problems) != 1 || res.Problems[0].What != "index" {
		t.Errorf("problems = %v, want only the index file", res.Problems)
	}
	if res.Points != 1 || res.Chunks == 0 {
		t.Errorf("with the index file damaged, checked %d points and %d blobs", res.Points, res.Chunks)
	}
}

func TestParseSubset(t *testing.T) {
	for _, s := range []string{"10%", "2.5%", "100%", "1/5", "5/5", "1/1"} {
		sub, err := check.ParseSubset(s)
		if err != nil || sub.String() != s {
			t.Errorf("ParseSubset(%q) = %v, %v", s, sub, err)
		}
	}
	for _, s := range []string{"", "0%", "101%", "-5%", "NaN%", "%", "10", "x/5", "0/5", "6/5", "1/0", "1/2/3"} {
		if _, err := check.ParseSubset(s); err == nil {
			t.Errorf("ParseSubset(%q) accepted", s)
		}
	}
}

// TestReadDataSubset: groups n of m read every pack once between them; a
// share reads at least that share; damage is found only in the packs read.
func TestReadDataSubset(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	subset := func(s string) *check.Result {
		t.Helper()
		sub, err := check.ParseSubset(s)
		if err != nil {
			t.Fatal(err)
		}
		res, err := check.Run(ctx, f.vault(t), check.Options{ReadData: true, Subset: sub})
		if err != nil && !errors.Is(err, check.ErrDamaged) {
			t.Fatal(err)
		}
		return res
	}
	all := subset("100%")
	if all.PacksRead != all.Packs || all.Packs < 2 {
		t.Fatalf("100%%: read %d of %d packs", all.PacksRead, all.Packs)
	}
	var packs int
	var bytes int64
	for _, g := range []string{"1/3", "2/3", "3/3"} {
		res := subset(g)
		packs += res.PacksRead
		bytes += res.BytesRead
	}
	if packs != all.Packs || bytes != all.BytesRead {
		t.Errorf("groups 1/3..3/3 read %d packs, %d bytes; want %d, %d", packs, bytes, all.Packs, all.BytesRead)
	}
	if res := subset("1%"); res.PacksRead != 1 {
		t.Errorf("1%% of %d packs read %d", res.Packs, res.PacksRead)
	}

	// Damage one chunk: only the groups holding its pack find it; once
	// found, it is remembered, and every later check names the file.
	chunk := f.node(t, "b").Extents[0].ID
	packID := f.damage(t, chunk)
	group := int(packID[7]%2) + 1 // packID[:8] big-endian mod 2: its last byte's parity
	if out := subset(fmt.Sprintf("%d/2", 3-group)); len(out.Problems) != 0 {
		t.Errorf("group %d/2 does not hold the damaged pack and found %v", 3-group, out.Problems)
	}
	in := subset(fmt.Sprintf("%d/2", group))
	if find(in.Problems, "chunk", chunk.String()) == nil || !in.Remembered {
		t.Errorf("group %d/2 holds the damaged pack and found nothing, or did not remember it: %v", group, in.Problems)
	}
	later := subset(fmt.Sprintf("%d/2", 3-group))
	if len(later.Problems) == 0 || !strings.HasSuffix(later.Problems[0].Name, "/b") {
		t.Errorf("after the damage was found, group %d/2 found %v; want file b named", 3-group, later.Problems)
	}
}

// TestTruncatedPackStructureCheck: a pack cut short after its first blob.
// Its trailer is gone, but the blob before the cut is intact: a check of
// the structure alone names the pack, and the files that need what was cut
// off, but not the file whose chunk is intact, and remembers no damage of
// it (remembered, it would be named lost by every later check, even one
// that reads it well). check --read-data names exactly the files cut off.
func TestTruncatedPackStructureCheck(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b := f.node(t, "b")
	packID, name := f.packOf(t, b.Extents[0].ID)
	v := f.vault(t)
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	// The cut: after the first blob of the pack.
	var first index.Location
	v.Index().EachCopy(func(_ keys.ID, loc index.Location) bool {
		if loc.Pack == packID && (first.Length == 0 || loc.Offset < first.Offset) {
			first = loc
		}
		return true
	})
	cut := first.Offset + first.Length
	intact := make(map[string]bool)
	for _, rel := range []string{"a", "b", "sub/c"} {
		whole := true
		for _, x := range f.node(t, rel).Extents {
			if loc, _ := v.Index().Lookup(x.ID); loc.Pack == packID && loc.Offset+loc.Length > cut {
				whole = false
			}
		}
		intact[rel] = whole
	}
	if !intact["a"] && !intact["sub/c"] && !intact["b"] || intact["b"] {
		t.Fatalf("the cut at %d leaves intact %v: want some file intact, and not b", cut, intact)
	}
	data, err := f.st.Load(ctx, name, 0, int64(cut))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Save(ctx, name, data); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		res, err := runCheck(t, f.vault(t), readData)
		if !errors.Is(err, check.ErrDamaged) {
			t.Fatalf("ReadData %v: check = %v, want ErrDamaged", readData, err)
		}
		for rel, whole := range intact {
			if named := find(res.Problems, "file", f.problemName(rel)) != nil; named == whole {
				t.Errorf("ReadData %v: file %s (its chunks intact: %v) named: %v", readData, rel, whole, named)
			}
		}
		if !readData && find(res.Problems, "pack", packID.String()) == nil {
			t.Errorf("the structure check does not name the pack whose trailer was cut off: %v", res.Problems)
		}
	}
}

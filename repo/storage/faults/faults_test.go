package faults_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/faults"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/storagetest"
	"github.com/azfs/azfs/repo/tree"
)

var fast = retry.Policy{Attempts: 30, Base: time.Microsecond, Max: 100 * time.Microsecond}

var kdf = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

func TestConformanceWithoutFaults(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return faults.Wrap(mem.New(), faults.Rates{Delay: 0.3, MaxDelay: time.Millisecond}, 1)
	})
}

// TestConformanceOverRetry: answers lost after the fact, retried, keep the
// storage contract (with the retry wrapper's relaxation). Not Fail: a
// retried Delete of a missing object is taken for one whose first attempt
// landed, as package retry documents.
func TestConformanceOverRetry(t *testing.T) {
	storagetest.RunWith(t, storagetest.Options{IdenticalResaveMaySucceed: true}, func(t *testing.T) storage.Storage {
		return retry.Wrap(faults.Wrap(mem.New(), faults.Rates{Lost: 0.2, Delay: 0.1, MaxDelay: time.Millisecond}, 2), fast)
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	if err := raw.Save(ctx, "a", bytes.Repeat([]byte{7}, 100)); err != nil {
		t.Fatal(err)
	}
	load := func(r faults.Rates) ([]byte, error) {
		return faults.Wrap(raw, r, 3).Load(ctx, "a", 0, -1)
	}
	if _, err := load(faults.Rates{Fail: 1}); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Fail: %v", err)
	}
	if b, err := load(faults.Rates{Truncate: 1}); err != nil || len(b) >= 100 || !bytes.Equal(b, bytes.Repeat([]byte{7}, len(b))) {
		t.Errorf("Truncate: %d bytes, %v", len(b), err)
	}
	if b, err := load(faults.Rates{Corrupt: 1}); err != nil || len(b) != 100 || bytes.Equal(b, bytes.Repeat([]byte{7}, 100)) {
		t.Errorf("Corrupt: %d bytes, %v", len(b), err)
	}
	f := faults.Wrap(raw, faults.Rates{Lost: 1}, 4)
	if err := f.Save(ctx, "b", []byte("x")); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Lost save: %v", err)
	}
	if b, err := raw.Load(ctx, "b", 0, -1); err != nil || string(b) != "x" {
		t.Errorf("after a lost save: %q, %v", b, err)
	}
	f = faults.Wrap(raw, faults.Rates{Partial: 1}, 5)
	if err := f.Save(ctx, "c", []byte("0123456789")); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Partial save: %v", err)
	}
	if b, err := raw.Load(ctx, "c", 0, -1); err != nil || len(b) >= 10 || !bytes.HasPrefix([]byte("0123456789"), b) {
		t.Errorf("after a partial save: %q, %v", b, err)
	}
	if f.Count(faults.Partial) != 1 || f.String() != "fail=0 lost=0 delay=0 truncate=0 corrupt=0 partial=1" {
		t.Errorf("counts: %s", f)
	}
}

// snapshot is a source tree's file contents by absolute path.
type snapshot map[string][]byte

// mutate changes the source tree for run: new files, rewritten ones (other
// sizes and mtimes), removed ones; it returns the tree's contents.
func mutate(t *testing.T, rng *mrand.Rand, src string, run int) snapshot {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(src, "*"))
	for _, p := range names {
		if rng.IntN(4) == 0 {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 + rng.IntN(4) {
		p := filepath.Join(src, fmt.Sprintf("f%d", rng.IntN(12)))
		b := make([]byte, 1+rng.IntN(300<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(int64(1_000_000_000+run*100+i), 0)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	snap := snapshot{}
	names, _ = filepath.Glob(filepath.Join(src, "*"))
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		snap[p] = b
	}
	return snap
}

// readPoint returns the files of p as read through v: any error means a
// point that references something unreadable.
func readPoint(ctx context.Context, v *repo.Vault, p *repo.Point) (snapshot, error) {
	root, err := v.Part(ctx, p.Root)
	if err != nil {
		return nil, err
	}
	if len(root.Nodes) != 1 || root.Nodes[0].Type != tree.Dir {
		return nil, errors.New("root is not a single directory")
	}
	files := snapshot{}
	var walk func(dir *tree.Node, where string) error
	walk = func(dir *tree.Node, where string) error {
		for _, ref := range dir.Parts {
			part, err := v.Part(ctx, ref.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			for i := range part.Nodes {
				n := &part.Nodes[i]
				path := where + "/" + n.Name
				switch n.Type {
				case tree.Dir:
					if err := walk(n, path); err != nil {
						return err
					}
				case tree.File:
					b := make([]byte, n.Size)
					for _, e := range n.Extents {
						c, err := v.Chunk(ctx, e.ID)
						if err != nil {
							return fmt.Errorf("%s: %w", path, err)
						}
						copy(b[e.Offset:], c)
					}
					files[path] = b
				}
			}
		}
		return nil
	}
	if err := walk(&root.Nodes[0], ""); err != nil {
		return nil, err
	}
	return files, nil
}

// verify checks, on the storage without faults, that every listed point is
// whole and holds the tree as it was when it was taken: a point first seen
// now is this run's (a failed run may have committed it, its answer lost).
// With damageOK, damaged index files and points (what a broken storage kept
// of failed saves) are skipped, as readers skip them.
func verify(ctx context.Context, t *testing.T, raw storage.Storage, ks *keys.KeySet, taken map[keys.ID]snapshot, now snapshot, damageOK bool) {
	t.Helper()
	v, err := repo.Open(ctx, raw, ks)
	if err != nil {
		t.Fatalf("open the raw storage: %v", err)
	}
	if err := v.LoadIndex(ctx); err != nil && !(damageOK && errors.Is(err, repo.ErrDamaged)) {
		t.Fatalf("load the index from the raw storage: %v", err)
	}
	points, err := v.Points(ctx)
	if err != nil && !(damageOK && errors.Is(err, repo.ErrDamaged)) {
		t.Fatalf("points on the raw storage: %v", err)
	}
	for _, p := range points {
		want, ok := taken[p.ID]
		if !ok {
			want, taken[p.ID] = now, now
		}
		got, err := readPoint(ctx, v, p)
		if err != nil {
			t.Fatalf("point %s is committed but not whole: %v", p.ID.Short(), err)
		}
		if len(got) != len(want) {
			t.Fatalf("point %s has %d files, want %d", p.ID.Short(), len(got), len(want))
		}
		for path, b := range want {
			if !bytes.Equal(got[path], b) {
				t.Fatalf("point %s: %s differs from the source", p.ID.Short(), path)
			}
		}
	}
}

type setup struct {
	name  string
	local bool // a directory vault, else memory
	retry bool // wrapped in retry.Wrap as the CLI does for blob vaults
	rates faults.Rates
	// contractKept is false for Partial saves: a successful run is then
	// only required to leave its points whole, not the vault spotless.
	contractKept bool
}

var setups = []setup{
	{"retry-mem", false, true, faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.03, Corrupt: 0.03, MaxDelay: time.Millisecond}, true},
	{"retry-local", true, true, faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.03, Corrupt: 0.03, MaxDelay: time.Millisecond}, true},
	{"local", true, false, faults.Rates{Fail: 0.01, Lost: 0.01, Truncate: 0.01, Corrupt: 0.01}, true},
	{"mem", false, false, faults.Rates{Fail: 0.005, Lost: 0.005, Truncate: 0.005, Corrupt: 0.005}, true},
	{"partial-retry-mem", false, true, faults.Rates{Fail: 0.05, Lost: 0.02, Partial: 0.05, Truncate: 0.02, Corrupt: 0.02}, false},
	{"partial-local", true, false, faults.Rates{Partial: 0.01, Fail: 0.005}, false},
}

// TestBackupsUnderFaults runs backups over a changing tree into faulty
// storage. Each run either succeeds, and then the vault passes check
// --read-data, or fails; after every run, every committed point is whole
// and matches the tree as it was.
func TestBackupsUnderFaults(t *testing.T) {
	budget := 12 * time.Second
	if testing.Short() {
		budget = 2 * time.Second
	}
	for i, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			deadline := time.Now().Add(budget / time.Duration(len(setups)))
			var trials, runs, ok, failed int
			injected := map[faults.Kind]int64{}
			for seed := uint64(0); trials == 0 || time.Now().Before(deadline); seed++ {
				trials++
				r, o, f := backupTrial(t, s, uint64(i)<<32|seed, injected)
				runs, ok, failed = runs+r, ok+o, failed+f
			}
			t.Logf("%d trials, %d runs: %d succeeded, %d failed cleanly, nothing lost; injected %v", trials, runs, ok, failed, injected)
		})
	}
}

func backupTrial(t *testing.T, s setup, seed uint64, injected map[faults.Kind]int64) (runs, ok, failed int) {
	ctx := context.Background()
	var raw storage.Storage = mem.New()
	if s.local {
		d, err := local.Create(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		raw = d
	}
	v, err := repo.Create(ctx, raw, "correct horse battery staple", kdf)
	if err != nil {
		t.Fatal(err)
	}
	ks := v.Keys()
	rng := mrand.New(mrand.NewPCG(seed, 1))
	src := t.TempDir()
	taken := map[keys.ID]snapshot{}
	for run := range 4 {
		runs++
		now := mutate(t, rng, src, run)
		f := faults.Wrap(raw, s.rates, seed*16+uint64(run))
		var st storage.Storage = f
		if s.retry {
			st = retry.Wrap(f, fast)
		}
		v, err := repo.Open(ctx, st, ks)
		if err == nil {
			_, err = backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"})
		}
		for k := faults.Fail; k <= faults.Partial; k++ {
			injected[k] += f.Count(k)
		}
		if err != nil {
			failed++
			if !errors.Is(err, faults.ErrInjected) && !errors.Is(err, repo.ErrDamaged) && !errors.Is(err, storage.ErrExists) {
				t.Logf("seed %d run %d: failed with %v", seed, run, err)
			}
		} else {
			ok++
		}
		verify(ctx, t, raw, ks, taken, now, !s.contractKept)
		if err == nil && s.contractKept {
			fresh, oerr := repo.Open(ctx, raw, ks)
			if oerr != nil {
				t.Fatal(oerr)
			}
			if res, cerr := check.Run(ctx, fresh, check.Options{ReadData: true}); cerr != nil {
				t.Fatalf("seed %d run %d: check --read-data after a successful run: %v %v", seed, run, cerr, res.Problems)
			}
		}
	}
	return runs, ok, failed
}

// TestReadsUnderFaults reads every blob of a vault, many times, through
// storage that corrupts, truncates and fails loads: each read returns the
// right bytes or an error (ErrDamaged for what the storage mangled, the
// injected error for what it failed), never wrong bytes.
func TestReadsUnderFaults(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	v, err := repo.Create(ctx, raw, "correct horse battery staple", kdf)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	mutate(t, mrand.New(mrand.NewPCG(9, 9)), src, 0)
	if _, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	clean, err := repo.Open(ctx, raw, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := clean.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	type blob struct {
		id    keys.ID
		kind  keys.Kind
		plain []byte
	}
	var blobs []blob
	clean.Index().Each(func(id keys.ID, loc index.Location) bool {
		blobs = append(blobs, blob{id: id, kind: loc.Kind})
		return true
	})
	for i := range blobs {
		if blobs[i].plain, err = clean.LoadBlob(ctx, blobs[i].kind, blobs[i].id); err != nil {
			t.Fatal(err)
		}
	}
	f := faults.Wrap(raw, faults.Rates{}, 10)
	fv, err := repo.Open(ctx, f, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := fv.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	f.SetRates(faults.Rates{Fail: 0.1, Truncate: 0.2, Corrupt: 0.2})
	var right, damaged, failed int
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < len(blobs) || time.Now().Before(deadline); i++ {
		b := blobs[i%len(blobs)]
		got, err := fv.LoadBlob(ctx, b.kind, b.id)
		switch {
		case err == nil && bytes.Equal(got, b.plain):
			right++
		case err == nil:
			t.Fatalf("blob %s: wrong bytes with no error", b.id.Short())
		case errors.Is(err, repo.ErrDamaged):
			damaged++
		case errors.Is(err, faults.ErrInjected):
			failed++
		default:
			t.Fatalf("blob %s: %v", b.id.Short(), err)
		}
	}
	t.Logf("%d blobs, %d reads: %d right, %d ErrDamaged, %d failed; injected %s", len(blobs), right+damaged+failed, right, damaged, failed, f)
	if damaged == 0 || right == 0 {
		t.Error("the faults were not exercised")
	}
}

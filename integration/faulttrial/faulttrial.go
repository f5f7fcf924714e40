// Package faulttrial runs backups of a changing tree into storage that
// misbehaves (package faults) and checks, after every run, that each point
// the vault lists is whole and holds the tree as it was: a run either
// completes correctly or fails, and never commits a point that references
// data that did not land. It is the trial logic of package faults' tests,
// shared with the tests of each backend (RunBackups with a constructor of
// that backend's storage). It is a test harness: it lives beside the
// integration tests, not in the storage layer whose tests use it, because it
// drives whole backups (repo, backup, check) from above.
package faulttrial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/faults"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/tree"
)

// Fast is a retry policy that waits little, for tests.
var Fast = retry.Policy{Attempts: 30, Base: time.Microsecond, Max: 100 * time.Microsecond}

// KDF is a cheap key derivation, for tests.
var KDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// Passphrase is the passphrase of the vaults the trials create.
const Passphrase = "correct horse battery staple"

// Snapshot is a source tree's file contents by absolute path.
type Snapshot map[string][]byte

// Mutate changes the flat source tree in src for run: new files, rewritten
// ones (other sizes and mtimes), removed ones; it returns the tree's
// contents.
func Mutate(t testing.TB, rng *rand.Rand, src string, run int) Snapshot {
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
	snap := Snapshot{}
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

// ReadPoint returns the files of p as read through v: any error means a
// point that references something unreadable.
func ReadPoint(ctx context.Context, v *repo.Area, p *repo.Point) (Snapshot, error) {
	root, err := v.Part(ctx, p.Root)
	if err != nil {
		return nil, err
	}
	if len(root.Nodes) != 1 || root.Nodes[0].Type != tree.Dir {
		return nil, errors.New("root is not a single directory")
	}
	files := Snapshot{}
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

// Verify checks, on the storage without faults, that every listed point is
// whole and holds the tree as it was when it was taken: a point first seen
// now is this run's (a failed run may have committed it, its answer lost).
// With damageOK, damaged index files and points (what a broken storage kept
// of failed saves) are skipped, as readers skip them.
func Verify(ctx context.Context, t testing.TB, raw storage.Storage, ks *keys.KeySet, taken map[keys.ID]Snapshot, now Snapshot, damageOK bool) {
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
		got, err := ReadPoint(ctx, v, p)
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

// Setup is a kind of trial: a backend and the faults injected over it.
type Setup struct {
	Name string
	// New returns a new empty raw storage for one trial, cleaned up when
	// the test ends.
	New   func(t testing.TB) storage.Storage
	Retry bool // wrapped in retry.Wrap as the CLI does for blob vaults
	Rates faults.Rates
	// ContractKept is false for Partial saves: a successful run is then
	// only required to leave its points whole, not the vault spotless.
	ContractKept bool
}

// Tally counts trials, backup runs and injected faults.
type Tally struct {
	Trials, Runs, OK, Failed int
	Injected                 map[faults.Kind]int64
}

// Add adds u to the tally.
func (t *Tally) Add(u Tally) {
	t.Trials, t.Runs, t.OK, t.Failed = t.Trials+u.Trials, t.Runs+u.Runs, t.OK+u.OK, t.Failed+u.Failed
	if t.Injected == nil {
		t.Injected = map[faults.Kind]int64{}
	}
	for k, n := range u.Injected {
		t.Injected[k] += n
	}
}

// String summarises the tally, as "3 trials, 12 runs: ...".
func (t Tally) String() string {
	return fmt.Sprintf("%d trials, %d runs: %d succeeded, %d failed cleanly, nothing lost; injected %v",
		t.Trials, t.Runs, t.OK, t.Failed, t.Injected)
}

// Budget returns how long a fault test runs: $AZFS_FAULT_BUDGET (a Go
// duration; 'make torture' sets it) when set, else short with -short and
// normal otherwise.
func Budget(t testing.TB, normal, short time.Duration) time.Duration {
	if s := os.Getenv("AZFS_FAULT_BUDGET"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("AZFS_FAULT_BUDGET=%q: want a positive duration such as 2m", s)
		}
		return d
	}
	if testing.Short() {
		return short
	}
	return normal
}

// RunBackups runs trials of each setup, as a subtest, until its share of
// budget has passed (at least one trial each), and logs the tally.
func RunBackups(t *testing.T, setups []Setup, budget time.Duration) {
	for i, s := range setups {
		t.Run(s.Name, func(t *testing.T) {
			deadline := time.Now().Add(budget / time.Duration(len(setups)))
			var all Tally
			for seed := uint64(0); all.Trials == 0 || time.Now().Before(deadline); seed++ {
				all.Add(BackupTrial(t, s, uint64(i)<<32|seed))
			}
			t.Logf("%s", all)
		})
	}
}

// BackupTrial creates a vault in a new storage of s and runs four backups
// of a changing tree into it, each over the storage with s's faults. Each
// run either succeeds, and then (if s.ContractKept) the vault passes check
// --read-data, or fails; after every run, every committed point is whole
// and matches the tree as it was.
func BackupTrial(t testing.TB, s Setup, seed uint64) Tally {
	t.Helper()
	ctx := context.Background()
	tally := Tally{Trials: 1, Injected: map[faults.Kind]int64{}}
	raw := s.New(t)
	v, err := repo.Create(ctx, raw, Passphrase, KDF)
	if err != nil {
		t.Fatal(err)
	}
	ks := v.Keys()
	rng := rand.New(rand.NewPCG(seed, 1))
	src := t.TempDir()
	taken := map[keys.ID]Snapshot{}
	for run := range 4 {
		tally.Runs++
		now := Mutate(t, rng, src, run)
		f := faults.Wrap(raw, s.Rates, seed*16+uint64(run))
		var st storage.Storage = f
		if s.Retry {
			st = retry.Wrap(f, Fast)
		}
		v, err := repo.Open(ctx, st, ks)
		if err == nil {
			_, err = backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"})
		}
		for k := faults.Fail; k <= faults.Partial; k++ {
			tally.Injected[k] += f.Count(k)
		}
		if err != nil {
			tally.Failed++
			if !errors.Is(err, faults.ErrInjected) && !errors.Is(err, repo.ErrDamaged) && !errors.Is(err, storage.ErrExists) {
				t.Logf("seed %d run %d: failed with %v", seed, run, err)
			}
		} else {
			tally.OK++
		}
		Verify(ctx, t, raw, ks, taken, now, !s.ContractKept)
		if err == nil && s.ContractKept {
			fresh, oerr := repo.Open(ctx, raw, ks)
			if oerr != nil {
				t.Fatal(oerr)
			}
			if res, cerr := check.Run(ctx, fresh, check.Options{ReadData: true}); cerr != nil {
				t.Fatalf("seed %d run %d: check --read-data after a successful run: %v %v", seed, run, cerr, res.Problems)
			}
		}
	}
	return tally
}

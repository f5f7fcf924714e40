package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	azkeys "github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/storage/local"
)

// The concurrent test of prune (issue 5): two machines back up in a loop
// (in this process, through the library, as their agents would) while
// the owner prunes both repeatedly with a tiny margin, purging all but the
// newest points each round; then `azfs check --read-data` passes for both
// machines and every point left mounts and reads back as it was backed up.
//
// Local vault: the margin is 400 ms and the backups' guard lists the marks
// every 10 ms and tolerates 150 ms without a completed listing (the margin
// must be at least twice that). A backup the guard stops (the machine was
// too slow to list in time, which the race detector can cause) commits
// nothing and is counted, not failed: that is the guard doing its job.
var localTiming = pruneTiming{
	margin: 400 * time.Millisecond,
	guard:  guard.Options{Every: 10 * time.Millisecond, Tolerance: 150 * time.Millisecond},
	loop:   8 * time.Second,
}

// Azurite: every request is an HTTP round trip.
var blobTiming = pruneTiming{
	margin: 3 * time.Second,
	guard:  guard.Options{Every: 100 * time.Millisecond, Tolerance: 1200 * time.Millisecond},
	loop:   8 * time.Second,
}

type pruneTiming struct {
	margin time.Duration
	guard  guard.Options
	loop   time.Duration
}

// pruneTestKeep is how many points each prune round keeps per machine.
const pruneTestKeep = 3

func TestPruneWhileBackingUp(t *testing.T) {
	requireFUSE(t)
	owner := newEnv(t)
	owner.createVault()
	st, err := local.Open(owner.vault)
	if err != nil {
		t.Fatal(err)
	}
	pruneWhileBackingUp(t, owner, st, localTiming)
}

// TestBlobPruneWhileBackingUp is TestPruneWhileBackingUp on Azurite.
func TestBlobPruneWhileBackingUp(t *testing.T) {
	requireFUSE(t)
	endpoint := startAzurite(t)
	conn := azuriteConn(endpoint)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
	owner := newEnv(t)
	owner.vault = endpoint + "/vaults/prune-while-backing-up"
	owner.passFile = filepath.Join(owner.dir, "passphrase")
	owner.mustAzfs("vault", "create", owner.vault, "--generate-passphrase", owner.passFile, "--machine", testMachine)
	loc, err := azblob.ParseLocation(owner.vault)
	if err != nil {
		t.Fatal(err)
	}
	st, err := azblob.Open(context.Background(), loc, azblob.Auth{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	pruneWhileBackingUp(t, owner, st, blobTiming)
}

// treeState is what a point should hold: relative path to SHA-256.
type treeState map[string]string

func pruneWhileBackingUp(t *testing.T, owner *env, st storage.Storage, timing pruneTiming) {
	ctx := context.Background()
	creds := mcCredentials(t, owner, "web.azcreds", "--valid", "2h")
	web := newEnv(t)
	web.vault = owner.vault
	web.mustAzfs("register", "--vault-credentials", creds, "--name", "web", "--generate-passphrase", filepath.Join(web.dir, "passphrase"))
	pass, err := os.ReadFile(owner.passFile)
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	ownerKeys, err := root.UnlockOwner(ctx, azkeys.Passphrase(strings.TrimRight(string(pass), "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string) (*repo.Area, error) {
		return root.OpenMachineAsOwner(ctx, name, ownerKeys)
	}

	machines := []string{testMachine, "web"}
	srcs := map[string]string{}
	var mu sync.Mutex
	want := map[string]map[azkeys.ID]treeState{} // machine → point → content
	for i, m := range machines {
		srcs[m] = mkdir(t, filepath.Join(t.TempDir(), "src-"+m))
		want[m] = map[azkeys.ID]treeState{}
		seedTree(t, srcs[m], uint64(100*i))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stats struct {
		sync.Mutex
		backups, stopped, late, prunes, refused, deleted, repacked int
	}
	for i, m := range machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := mutateTree(srcs[m], rng, n); err != nil {
					t.Error(err)
					return
				}
				state, err := hashTree(srcs[m])
				if err != nil {
					t.Error(err)
					return
				}
				v, err := open(m)
				if err != nil {
					t.Error(err)
					return
				}
				p, err := backup.Run(ctx, v, backup.Options{Paths: []string{srcs[m]}, Machine: m, Hostname: m, Guard: timing.guard})
				stats.Lock()
				switch {
				case err == nil:
					stats.backups++
				case errors.Is(err, guard.ErrLostMarks) && p == nil:
					stats.stopped++
				case errors.Is(err, guard.ErrLostMarks):
					// Committed, but its save took longer than the
					// guard tolerates (a loaded machine): the guard
					// cannot vouch for it, so, as its error says, it
					// is not trusted; the test deletes it.
					stats.late++
					if err := v.Storage().Delete(ctx, "points/"+p.ID.String()); err != nil {
						stats.Unlock()
						t.Errorf("delete late point of %s: %v", m, err)
						return
					}
					p = nil
				default:
					stats.Unlock()
					t.Errorf("backup of %s: %v", m, err)
					return
				}
				stats.Unlock()
				if p != nil {
					mu.Lock()
					want[m][p.ID] = state
					mu.Unlock()
				}
			}
		}()
	}
	pruneAll := func(margin time.Duration) {
		for _, m := range machines {
			v, err := open(m)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := v.ObjectIDs(ctx, repo.PointsPrefix)
			if err != nil {
				t.Fatal(err)
			}
			purge := oldPoints(t, v, ids, pruneTestKeep)
			res, err := prune.Run(ctx, v, prune.Options{Owner: ownerKeys, Margin: margin, MaxUnused: 0.2, Purge: purge, Host: "test"})
			stats.Lock()
			stats.prunes++
			if err != nil {
				if !strings.Contains(err.Error(), "more than a quarter of the margin") {
					stats.Unlock()
					t.Fatalf("prune of %s: %v", m, err)
				}
				stats.refused++ // the mark's save was slow: nothing marked
			} else {
				stats.deleted += res.Deleted
				stats.repacked += res.Repacked
			}
			stats.Unlock()
			mu.Lock()
			for _, id := range purge {
				delete(want[m], id)
			}
			mu.Unlock()
		}
	}
	deadline := time.Now().Add(timing.loop)
	for time.Now().Before(deadline) && !t.Failed() {
		pruneAll(timing.margin)
		time.Sleep(timing.margin / 4)
	}
	close(stop)
	wg.Wait()
	// The last marks come due.
	time.Sleep(timing.margin)
	pruneAll(timing.margin)
	t.Logf("%d backups committed, %d stopped by their guard, %d committed too late for it; %d prunes (%d refused a slow mark) deleted %d packs and repacked %d",
		stats.backups, stats.stopped, stats.late, stats.prunes, stats.refused, stats.deleted, stats.repacked)
	if t.Failed() {
		return
	}
	if stats.backups < 10 || stats.deleted == 0 {
		t.Fatalf("the loop did too little to prove anything: %d backups, %d packs deleted", stats.backups, stats.deleted)
	}

	owner.mustAzfs("check", "--read-data")
	web.mustAzfs("check", "--read-data")
	for _, m := range machines {
		e := owner
		if m == "web" {
			e = web
		}
		v, err := open(m)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := v.ObjectIDs(ctx, repo.PointsPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(want[m]) {
			t.Errorf("machine %s has %d points, want %d", m, len(ids), len(want[m]))
		}
		for _, id := range ids {
			state, ok := want[m][id]
			if !ok {
				t.Errorf("machine %s: point %s was not committed by the test", m, id.Short())
				continue
			}
			mnt := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", id.String())
			got, err := hashTree(filepath.Join(mnt.dir, srcs[m]))
			if err != nil {
				t.Errorf("machine %s, point %s: %v", m, id.Short(), err)
			} else if !maps.Equal(got, state) {
				t.Errorf("machine %s, point %s: mounted tree differs from what was backed up (%d files, want %d)", m, id.Short(), len(got), len(state))
			}
			mnt.cleanup()
		}
	}
}

// oldPoints returns the points of v but the keep newest.
func oldPoints(t *testing.T, v *repo.Area, ids []azkeys.ID, keep int) []azkeys.ID {
	t.Helper()
	type pt struct {
		id azkeys.ID
		at time.Time
	}
	var pts []pt
	for _, id := range ids {
		p, err := v.LoadPoint(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		pts = append(pts, pt{id, p.Time})
	}
	slices.SortFunc(pts, func(a, b pt) int { return a.at.Compare(b.at) })
	var out []azkeys.ID
	for i := 0; i < len(pts)-keep; i++ {
		out = append(out, pts[i].id)
	}
	return out
}

// seedTree writes the first files of a source tree.
func seedTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	for i := range 12 {
		size := int64(4<<10 + 37<<10*i)
		writeRandom(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), size, seed+uint64(i))
	}
	writeRandom(t, filepath.Join(mkdir(t, filepath.Join(dir, "sub")), "big"), 600<<10, seed+50)
}

// mutateTree changes a source tree between backups: a file rewritten, one
// added, one removed, now and then.
func mutateTree(dir string, rng *rand.Rand, n int) error {
	names, err := filepath.Glob(filepath.Join(dir, "f*"))
	if err != nil {
		return err
	}
	rewrite := func(path string, size int) error {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return os.WriteFile(path, b, 0o644)
	}
	if err := rewrite(names[rng.IntN(len(names))], 8<<10+rng.IntN(200<<10)); err != nil {
		return err
	}
	if err := rewrite(filepath.Join(dir, fmt.Sprintf("f-new-%d", n)), 1<<10+rng.IntN(100<<10)); err != nil {
		return err
	}
	if n%2 == 1 && len(names) > 4 {
		return os.Remove(names[rng.IntN(len(names))])
	}
	return nil
}

// hashTree returns the SHA-256 of every regular file under dir.
func hashTree(dir string) (treeState, error) {
	out := treeState{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	return out, err
}

// TestPruneCommand: azfs prune as the owner uses it, its refusals, and
// check --read-data-subset.
func TestPruneCommand(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	writeRandom(t, filepath.Join(src, "old"), 3<<20, 1)
	writeRandom(t, filepath.Join(src, "kept"), 1<<20, 2)
	first := e.backup(src)
	if err := os.Remove(filepath.Join(src, "old")); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	// Forgotten and purged: what a purge does first.
	if err := os.Remove(filepath.Join(e.area(), "points", first.Point)); err != nil {
		t.Fatal(err)
	}
	packs := vaultFiles(t, e.vault, "machines/"+testMachine+"/data/")
	before := sum(packs)

	for _, c := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"prune", "--safety-margin", "1m"}, "azfs: --safety-margin 1m0s is below 10m0s"},
		{[]string{"prune", "--max-unused", "200%"}, "azfs: --max-unused \"200%\""},
		{[]string{"prune", "--machine", "nosuch"}, "azfs: machine nosuch:"},
		{[]string{"check", "--read-data-subset", "0/3"}, "azfs: read-data subset \"0/3\""},
	} {
		checkOneLineError(t, e.azfs(c.args...), c.prefix)
	}

	r := e.mustAzfs("prune", "--dry-run")
	if !strings.Contains(r.stdout, "would mark") {
		t.Errorf("dry run:\n%s", r)
	}
	r = e.mustAzfs("prune")
	if !strings.Contains(r.stdout, "marked") {
		t.Errorf("first prune:\n%s", r)
	}
	after := vaultFiles(t, e.vault, "machines/"+testMachine+"/data/")
	for name := range packs {
		if _, ok := after[name]; !ok {
			t.Errorf("the first prune deleted %s", name)
		}
	}
	r = e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	if !strings.Contains(r.stdout, "deleted") {
		t.Errorf("second prune:\n%s", r)
	}
	if after := sum(vaultFiles(t, e.vault, "machines/"+testMachine+"/data/")); after >= before-(3<<20) {
		t.Errorf("stored %d bytes before, %d after: the old file's 3 MiB are still there", before, after)
	}
	r = e.mustAzfs("check", "--read-data-subset", "50%")
	if !strings.Contains(r.stderr, "subset 50%") {
		t.Errorf("check --read-data-subset:\n%s", r)
	}
	e.mustAzfs("check", "--read-data")
}

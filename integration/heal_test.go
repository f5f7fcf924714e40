package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11: damage found is damage repaired. Each test here is one of the
// issue's findings; each failed before the index kept every copy of a blob,
// reads fell back between copies, and found damage was remembered.

// healSource writes a tree of a few files of unique random content and
// returns their SHA-256 by path relative to src.
func healSource(t *testing.T, src string, seed uint64) map[string]string {
	t.Helper()
	mkdir(t, filepath.Join(src, "d"))
	want := map[string]string{
		"big.bin": writeRandom(t, filepath.Join(src, "big.bin"), 6<<20, seed),
	}
	for i := range 4 {
		rel := fmt.Sprintf("d/%d.bin", i)
		want[rel] = writeRandom(t, filepath.Join(src, rel), 200<<10, seed+1+uint64(i))
	}
	return want
}

// healBackedUp creates a vault in a fresh env, writes healSource's tree
// from seed and backs it up once: the start of every test here.
func healBackedUp(t *testing.T, seed uint64) (e *env, src string, want map[string]string, first backupOut) {
	t.Helper()
	e = newEnv(t)
	e.createVault()
	src = filepath.Join(t.TempDir(), "src")
	want = healSource(t, src, seed)
	return e, src, want, e.backup(src)
}

// damageBiggestPack flips a byte a third into, or with how "truncated"
// cuts in half, the vault area's largest pack.
func damageBiggestPack(t *testing.T, e *env, how string) {
	t.Helper()
	victim := biggestPack(t, e)
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if how == "truncated" {
		if err := os.Truncate(victim, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		return
	}
	flipByte(t, victim, fi.Size()/3)
}

// biggestPack returns the path of the vault area's largest pack (one of
// file data: tree packs are small).
func biggestPack(t *testing.T, e *env) string {
	t.Helper()
	packs := vaultFiles(t, e.area(), "data")
	var victim string
	for name, size := range packs {
		if victim == "" || size > packs[victim] {
			victim = name
		}
	}
	if victim == "" {
		t.Fatal("the vault has no pack")
	}
	return filepath.Join(e.area(), victim)
}

// verifyPoint mounts point id and checks that every file of want reads
// back whole and right under src.
func verifyPoint(t *testing.T, e *env, id, src string, want map[string]string) {
	t.Helper()
	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt-"+id[:8])), "--point", id)
	defer m.cleanup()
	for rel, sha := range want {
		b, err := readMountFile(filepath.Join(m.dir, src, rel))
		if err != nil {
			t.Errorf("point %s: read %s: %v", id[:8], rel, err)
		} else if got := shaOf(b); got != sha {
			t.Errorf("point %s: %s has the wrong content", id[:8], rel)
		}
	}
}

// dropFileCache deletes azfs's cache, so the next backup reads every file
// (as after a reinstall).
func dropFileCache(t *testing.T, e *env) {
	t.Helper()
	if err := os.RemoveAll(e.cacheDir); err != nil {
		t.Fatal(err)
	}
	mkdir(t, e.cacheDir)
}

// Finding 1: a pack is lost; a backup stores its blobs again, so the index
// has two locations for them. Every read and every check must use the one
// that exists, every time, and the older point must read again too.
func TestLostPackThenBackup(t *testing.T) {
	requireFUSE(t)
	e, src, want, first := healBackedUp(t, 11)
	if err := os.Remove(biggestPack(t, e)); err != nil {
		t.Fatal(err)
	}
	if r := e.azfs("check"); r.code != 1 {
		t.Errorf("check after losing a pack: exit %d, want 1\n%s", r.code, r)
	}
	second := e.backup(src)
	if second.Stats.BytesStored == 0 {
		t.Fatalf("the backup after losing a pack stored nothing: %+v", second.Stats)
	}
	for i := range 4 {
		if r := e.azfs("check"); r.code != 0 {
			t.Fatalf("check %d after the healing backup: exit %d, want 0\n%s", i, r.code, r)
		}
	}
	for i := range 3 {
		t.Run(fmt.Sprintf("mount%d", i), func(t *testing.T) {
			verifyPoint(t, e, second.Point, src, want)
			verifyPoint(t, e, first.Point, src, want)
		})
	}
}

// Findings 2 and 3: a damaged or truncated pack. Once check has found the
// damage, the next backup of the intact source stores the blobs again, even
// without its file cache, and every point reads back; check is clean after.
func TestDamagedPackHealedByBackup(t *testing.T) {
	requireFUSE(t)
	for _, how := range []string{"flipped", "truncated"} {
		t.Run(how, func(t *testing.T) {
			e, src, want, first := healBackedUp(t, 21)
			damageBiggestPack(t, e, how)
			r := e.azfs("check", "--read-data")
			if r.code != 1 || !strings.Contains(r.stderr, `damaged: file "`+first.Point[:8]) {
				t.Fatalf("check --read-data after damaging a pack: exit %d, want 1 naming a file\n%s", r.code, r)
			}
			dropFileCache(t, e)
			second := e.backup(src)
			if second.Stats.BytesStored == 0 {
				t.Fatalf("the backup after the damage stored nothing: %+v", second.Stats)
			}
			if r := e.azfs("check", "--read-data"); r.code != 0 || !strings.Contains(r.stderr, "have a good copy elsewhere") {
				t.Errorf("check --read-data after the healing backup: exit %d, want 0 and the bad copies counted\n%s", r.code, r)
			}
			verifyPoint(t, e, first.Point, src, want)
			verifyPoint(t, e, second.Point, src, want)
			// Prune keeps the good copies and drops the bad ones with
			// their damage records.
			e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running", "--max-unused", "0%")
			r = e.azfs("check", "--read-data")
			if r.code != 0 || strings.Contains(r.stderr, "good copy elsewhere") {
				t.Errorf("check --read-data after prune: exit %d, want 0 and no bad copy left\n%s", r.code, r)
			}
			if n := len(vaultFiles(t, e.area(), "damage")); n != 0 {
				t.Errorf("%d damage records left after prune deleted every bad copy", n)
			}
			verifyPoint(t, e, first.Point, src, want)
		})
	}
}

// Finding 3 without a check first: a backup sees a pack stored shorter
// than indexed from the listing alone, and stores what was cut off again,
// even through the file cache.
func TestTruncatedPackFoundByBackup(t *testing.T) {
	requireFUSE(t)
	e, src, want, first := healBackedUp(t, 31)
	damageBiggestPack(t, e, "truncated")
	second := e.backup(src)
	if second.Stats.BytesStored == 0 {
		t.Fatalf("the backup after truncating a pack stored nothing: %+v", second.Stats)
	}
	if r := e.azfs("check", "--read-data"); r.code != 0 {
		t.Errorf("check --read-data after the healing backup: exit %d, want 0\n%s", r.code, r)
	}
	verifyPoint(t, e, first.Point, src, want)
}

// Finding 2 with --verify-reused: no check ran, the file cache is gone, and
// a byte of a pack is flipped; the backup reads back what it reuses, finds
// the damage and stores the blob again.
func TestVerifyReusedHeals(t *testing.T) {
	requireFUSE(t)
	e, src, want, first := healBackedUp(t, 41)
	damageBiggestPack(t, e, "flipped")
	dropFileCache(t, e)
	r := e.azfs("backup", "--json", "--verify-reused", src)
	if r.code != 0 {
		t.Fatalf("backup --verify-reused: exit %d\n%s", r.code, r)
	}
	if !strings.Contains(r.stdout, `"blobs_stored_again"`) || !strings.Contains(r.stdout, `"blobs_verified"`) {
		t.Errorf("backup --verify-reused --json reports no blobs stored again or verified:\n%s", r.stdout)
	}
	if r := e.azfs("check", "--read-data"); r.code != 0 {
		t.Errorf("check --read-data after backup --verify-reused: exit %d, want 0\n%s", r.code, r)
	}
	verifyPoint(t, e, first.Point, src, want)
}

// Finding 4: four points share a damaged file; check --read-data names it
// under every one of them, and the same way every run.
func TestCheckNamesEveryPoint(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	healSource(t, src, 51)
	var ids []string
	for range 4 {
		dropFileCache(t, e) // the same points, whatever the cache
		ids = append(ids, e.backup(src).Point)
	}
	damageBiggestPack(t, e, "flipped")
	var runs []string
	for range 2 {
		r := e.azfs("check", "--read-data")
		if r.code != 1 {
			t.Fatalf("check --read-data: exit %d, want 1\n%s", r.code, r)
		}
		for _, id := range ids {
			if named := damagedFiles(t, r, id[:8], src); !named["big.bin"] {
				t.Errorf("check --read-data does not name big.bin under point %s:\n%s", id[:8], r.stderr)
			}
		}
		runs = append(runs, r.stderr)
	}
	if runs[0] != runs[1] {
		t.Errorf("two checks of the same vault differ:\n%s\n---\n%s", runs[0], runs[1])
	}
}

// Reads remember what they find: a mount that meets a damaged chunk
// records it in the vault, and the next backup stores it again without
// any check having run.
func TestMountReadRemembersDamage(t *testing.T) {
	requireFUSE(t)
	e, src, want, first := healBackedUp(t, 61)
	damageBiggestPack(t, e, "flipped")

	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt")), "--point", first.Point)
	if _, err := readMountFile(filepath.Join(m.dir, src, "big.bin")); !isEIO(err) {
		t.Fatalf("read of the damaged big.bin: %v, want EIO", err)
	}
	m.cleanup()
	if n := len(vaultFiles(t, e.area(), "damage")); n == 0 {
		t.Fatal("the mount's failed read left no damage record in the vault")
	}
	dropFileCache(t, e)
	if out := e.backup(src); out.Stats.BytesStored == 0 {
		t.Fatalf("the backup after the mount found damage stored nothing: %+v", out.Stats)
	}
	verifyPoint(t, e, first.Point, src, want)
}

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRollbackNoticed: a storage that withholds the newest point (here: the
// point object moved out of the vault directory) is reported by every
// command that lists points, keeps being reported after a backup into the
// rolled-back vault, and stops prune and forget; once the point is back,
// or the loss is accepted, the reports end.
func TestRollbackNoticed(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	ids := e.backupVersions(src, "f", 2)
	if r := e.mustAzfs("points"); strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("an untouched vault reported as rolled back:\n%s", r)
	}
	newest := filepath.Join(e.area(), "points", ids[1])
	hidden := filepath.Join(t.TempDir(), "hidden")
	if err := os.Rename(newest, hidden); err != nil {
		t.Fatal(err)
	}
	const report = "is missing from the vault, and no newer point is there: the storage has rolled back or deleted recovery points"
	r := e.mustAzfs("points")
	if !strings.Contains(r.stderr, ids[1][:8]) || !strings.Contains(r.stderr, report) {
		t.Fatalf("withheld newest point not reported:\n%s", r)
	}
	// Commands that forget or purge refuse, in one line.
	r = e.azfs("prune", "--safety-margin", "0", "--no-backups-running")
	if r.code == 0 || !strings.Contains(r.stderr, report) || !strings.Contains(r.stderr, "nothing pruned") {
		t.Fatalf("prune of a rolled-back vault:\n%s", r)
	}
	r = e.azfs("forget", ids[0][:10], "--pin", "00000000")
	if r.code == 0 || !strings.Contains(r.stderr, report) {
		t.Fatalf("forget in a rolled-back vault:\n%s", r)
	}
	checkOneLineError(t, r, "azfs: ")
	// A backup still runs (availability first), reports the rollback, and
	// does not make the vault look current again.
	writeFile(t, filepath.Join(src, "f"), []byte("third"), 0o644)
	r = e.azfs("backup", "--json", src)
	if r.code != 0 || !strings.Contains(r.stderr, report) {
		t.Fatalf("backup into a rolled-back vault:\n%s", r)
	}
	third := parseBackup(t, r).Point
	if r := e.mustAzfs("points"); !strings.Contains(r.stderr, report) || !strings.Contains(r.stdout, third[:8]) {
		t.Fatalf("after a backup into the rolled-back vault the report ended:\n%s", r)
	}
	// The point comes back: no more reports.
	if err := os.Rename(hidden, newest); err != nil {
		t.Fatal(err)
	}
	if r := e.mustAzfs("points"); strings.Contains(r.stderr, "rolled back") || !strings.Contains(r.stdout, ids[1][:8]) {
		t.Fatalf("the point is back but still reported:\n%s", r)
	}
	// Withheld again (now the newest is the third point), then accepted.
	if err := os.Rename(filepath.Join(e.area(), "points", third), hidden); err != nil {
		t.Fatal(err)
	}
	if r := e.mustAzfs("points"); !strings.Contains(r.stderr, third[:8]) {
		t.Fatalf("withheld third point not reported:\n%s", r)
	}
	if r := e.mustAzfs("points", "--accept-missing"); strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("--accept-missing still reports:\n%s", r)
	}
	if r := e.mustAzfs("points"); strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("after --accept-missing:\n%s", r)
	}
	e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running", "--dry-run")
}

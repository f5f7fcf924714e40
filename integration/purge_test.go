package integration

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPrunePurgesForgottenPoints: once a forgotten point's soft-delete
// window has passed, prune deletes it and then the records that named it;
// a forgotten point still inside the window stays recoverable.
func TestPrunePurgesForgottenPoints(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	all := e.backupVersions(src, "f", 3)
	e.mustAzfs("policy", "set", "--keep-all")
	e.mustAzfs("forget", all[1][:10], "--pin", e.pin())

	// Inside the default 14-day window: nothing is purged.
	e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	if got := deletedIDs(e.deleted()); !slices.Equal(got, all[1:2]) {
		t.Fatalf("after a prune inside the window, deleted points %v, want %v", got, all[1:2])
	}

	if recs := vaultFiles(t, e.area(), "owner"); len(recs) != 1 {
		t.Fatalf("the owner's forget left %d records, want 1: %v", len(recs), recs)
	}
	// A window of zero makes it purgeable at once.
	e.mustAzfs("policy", "set", "--soft-delete", "0", "--pin", e.pin())
	r := e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	if !strings.Contains(r.stdout, "purged 1 points") {
		t.Errorf("prune did not report the purge:\n%s", r)
	}
	if got := deletedIDs(e.deleted()); len(got) != 0 {
		t.Errorf("after the purge, deleted points %v, want none", got)
	}
	if got := liveIDs(e); !slices.Equal(got, []string{all[0], all[2]}) {
		t.Errorf("after the purge, live points %v, want %v", got, []string{all[0], all[2]})
	}
	if pts := vaultFiles(t, e.area(), "points"); len(pts) != 2 {
		t.Errorf("the area holds %d point objects, want 2", len(pts))
	}
	if recs := vaultFiles(t, e.area(), "owner"); len(recs) != 0 {
		t.Errorf("the owner's forget record outlived its purged point: %v", recs)
	}
	e.mustAzfs("check", "--read-data")
}

package integration

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// junkObjects are what a credential that may only create objects (a backup
// SAS) can leave where azfs lists: random bytes under a point's, an index
// file's and a tombstone's name, and a name azfs never writes.
func junkObjects() map[string][]byte {
	return map[string][]byte{
		"points/" + hex.EncodeToString(randomBytes(32, 1)): randomBytes(400, 2),
		"points/readme": []byte("not a point"),
		"index/" + hex.EncodeToString(randomBytes(32, 3)):      randomBytes(400, 4),
		"tombstones/" + hex.EncodeToString(randomBytes(32, 5)): randomBytes(400, 6),
	}
}

// TestRepairQuarantinesJunk is finding 5 of issue 11: junk a backup-only
// credential uploads under machines/<m>/points/ makes prune fail ("needs
// every point readable") and check exit 1, and no command removed it.
// azfs repair lists it, --apply moves it into the area's quarantine, and
// prune and check succeed again; repair then lists the quarantine.
func TestRepairQuarantinesJunk(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeRandom(t, filepath.Join(src, "a.bin"), 3<<20, 7)
	e.backup(src)
	junk := junkObjects()
	for name, b := range junk {
		path := filepath.Join(e.area(), name)
		mkdir(t, filepath.Dir(path))
		writeFile(t, path, b, 0o600)
	}

	if r := e.azfs("prune", "--safety-margin", "0", "--no-backups-running"); r.code == 0 || !strings.Contains(r.stderr, "readable") {
		t.Errorf("prune with junk under points/: want it refused as an unreadable point, got:\n%s", r)
	}
	if r := e.azfs("check"); r.code != 1 {
		t.Errorf("check with junk: exit %d, want 1\n%s", r.code, r)
	}

	dry := e.azfs("repair")
	t.Logf("repair (dry run):\n%s", dry.stdout)
	if dry.code != 1 {
		t.Errorf("repair (dry run) with junk: exit %d, want 1 (problems found)\n%s", dry.code, dry)
	}
	for name := range junk {
		if !strings.Contains(dry.stdout, "would move "+`"`+name+`"`) {
			t.Errorf("repair (dry run) does not name %q:\n%s", name, dry)
		}
		if _, err := os.Stat(filepath.Join(e.area(), name)); err != nil {
			t.Errorf("the dry run moved %q: %v", name, err)
		}
	}

	e.mustAzfs("repair", "--apply")
	for name, b := range junk {
		if _, err := os.Stat(filepath.Join(e.area(), name)); !os.IsNotExist(err) {
			t.Errorf("%q is still in place after repair --apply: %v", name, err)
		}
		got, err := os.ReadFile(filepath.Join(e.area(), "quarantine", name))
		if err != nil || string(got) != string(b) {
			t.Errorf("quarantine/%s: %v (same bytes: %v)", name, err, string(got) == string(b))
		}
	}
	e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	e.mustAzfs("check", "--read-data")
	r := e.mustAzfs("repair")
	for name := range junk {
		if !strings.Contains(r.stdout, `"quarantine/`+name+`"`) {
			t.Errorf("repair does not list %q in quarantine:\n%s", name, r)
		}
	}
	if strings.Contains(r.stdout, "would move") {
		t.Errorf("repair after --apply would still move junk:\n%s", r)
	}
}

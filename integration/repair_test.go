package integration

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repairEnv returns an env with a vault and a point of a source directory
// holding one file of size random bytes.
func repairEnv(t *testing.T, size int64) (*env, string) {
	e := newEnv(t)
	e.createVault()
	src := oneFileSource(t, size)
	e.backup(src)
	return e, src
}

// oneFileSource returns a source directory holding one file of size
// random bytes.
func oneFileSource(t *testing.T, size int64) string {
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeRandom(t, filepath.Join(src, "a.bin"), size, 7)
	return src
}

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
	e, _ := repairEnv(t, 3<<20)
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
	var out struct {
		Machines []struct {
			Machine    string `json:"machine"`
			Junk       []any  `json:"junk"`
			Quarantine []struct {
				Name string `json:"name"`
			} `json:"quarantine"`
		} `json:"machines"`
	}
	if err := json.Unmarshal([]byte(e.mustAzfs("repair", "--json").stdout), &out); err != nil {
		t.Fatalf("repair --json: %v", err)
	}
	if len(out.Machines) != 1 || len(out.Machines[0].Junk) != 0 || len(out.Machines[0].Quarantine) != len(junk) {
		t.Errorf("repair --json: %+v, want one machine, no junk, %d objects in quarantine", out, len(junk))
	}
}

// TestRepairRebuildsConfig is finding 8 of issue 11 (configs): the root
// config and a machine area's config are plaintext and were each a single
// point of failure. Deleted or damaged, every command said "no vault at
// ..." and nothing rebuilt them. Now commands say the config is lost and
// that 'azfs repair --apply' rebuilds it; repair does, from the signed
// copy vault create writes, from the owner's keys (this machine's, or the
// owner passphrase on a machine that holds nothing), or from a machine's
// escrow; and backups and mounts work again.
func TestRepairRebuildsConfig(t *testing.T) {
	requireFUSE(t)
	e, src := repairEnv(t, 1<<20)
	for _, name := range []string{"config.signed", "machines/" + testMachine + "/config.signed"} {
		if _, err := os.Stat(filepath.Join(e.vault, name)); err != nil {
			t.Fatalf("vault create wrote no signed copy %s: %v", name, err)
		}
	}
	rootCfg := filepath.Join(e.vault, "config")
	areaCfg := filepath.Join(e.area(), "config")
	original, err := os.ReadFile(rootCfg)
	if err != nil {
		t.Fatal(err)
	}

	lose := func(path string, garbage []byte) {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if garbage != nil {
			writeFile(t, path, garbage, 0o600)
		}
	}
	refused := func(what string) {
		t.Helper()
		r := e.azfs("backup", src)
		if r.code == 0 || !strings.Contains(r.stderr, "azfs repair --apply") {
			t.Errorf("backup with the %s: want it refused with a pointer to 'azfs repair --apply', got:\n%s", what, r)
		}
	}
	works := func(what string) {
		t.Helper()
		e.backup(src)
		m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
		compareTrees(t, "latest point after the repair of the "+what, snapshot(t, src), snapshot(t, filepath.Join(m.dir, src)), compareOpts{atime: true})
		if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
			t.Errorf("azmount exit %d, %v", code, err)
		}
		e.mustAzfs("check")
	}

	for _, tc := range []struct {
		what    string
		path    string
		garbage []byte
	}{
		{"root config deleted", rootCfg, nil},
		{"root config damaged", rootCfg, []byte(`{"format":1,"id":`)},
		{"machine's config deleted", areaCfg, nil},
		{"machine's config damaged", areaCfg, []byte("\x00\x01")},
	} {
		lose(tc.path, tc.garbage)
		refused(tc.what)
		dry := e.azfs("repair")
		if !strings.Contains(dry.stdout, "would rebuild it from its signed copy") {
			t.Errorf("repair (dry run), %s: want it to say it would rebuild the config:\n%s", tc.what, dry)
		}
		r := e.mustAzfs("repair", "--apply")
		if !strings.Contains(r.stdout, "rebuilt from its signed copy") {
			t.Errorf("repair --apply, %s:\n%s", tc.what, r)
		}
		works(tc.what)
	}
	if b, err := os.ReadFile(rootCfg); err != nil || string(b) != string(original) {
		t.Errorf("root config rebuilt from its copy differs from the original:\n%s\nwant\n%s", b, original)
	}

	// No copy, no config: the owner passphrase on a machine that holds
	// nothing finds the vault's ID in the machine's config, and repair
	// rebuilds the config and writes the copy again.
	lose(filepath.Join(e.vault, "config.signed"), nil)
	lose(rootCfg, nil)
	other := newEnv(t)
	r := other.mustAzfs("repair", "--apply", "--vault", e.vault, "--passphrase-file", e.passFile)
	if !strings.Contains(r.stdout, "rebuilt from the owner's keys") || !strings.Contains(r.stdout, "wrote the signed copy") {
		t.Errorf("repair --apply with the owner passphrase, no copy:\n%s", r)
	}
	works("root config rebuilt from the owner's keys")
	// And a machine's config without its copy, from its escrow.
	lose(filepath.Join(e.area(), "config.signed"), nil)
	lose(areaCfg, nil)
	r = e.mustAzfs("repair", "--apply")
	if !strings.Contains(r.stdout, "rebuilt from the machine's escrow") {
		t.Errorf("repair --apply, machine config without copy:\n%s", r)
	}
	works("machine's config rebuilt from its escrow")
}

// TestRepairNewKeySlot is finding 8 of issue 11 (key slots): a machine's
// only key slot damaged made its points unreadable anywhere but on the
// machine itself. With the owner's keys, repair --machine NAME --apply
// --generate-passphrase F writes a new slot from the machine's escrow;
// elsewhere the points list and mount with the new passphrase.
func TestRepairNewKeySlot(t *testing.T) {
	requireFUSE(t)
	e, src := repairEnv(t, 1<<20)
	slots, err := os.ReadDir(filepath.Join(e.area(), "keys"))
	if err != nil || len(slots) != 1 {
		t.Fatalf("the machine's key slots: %v, %v; want one", slots, err)
	}
	writeFile(t, filepath.Join(e.area(), "keys", slots[0].Name()), []byte("{\"kind\":\"passphrase\",\"salt\":"), 0o600)
	other := newEnv(t)
	if r := other.azfs("points", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", e.passFile); r.code == 0 {
		t.Fatalf("points with the machine's only slot damaged: exit 0\n%s", r)
	}

	newPass := filepath.Join(e.dir, "new-passphrase")
	dry := e.mustAzfs("repair", "--machine", testMachine, "--generate-passphrase", newPass)
	if !strings.Contains(dry.stdout, "would write a new key slot") || !strings.Contains(dry.stdout, "does not parse") {
		t.Errorf("repair (dry run) with a new key slot:\n%s", dry)
	}
	if _, err := os.Stat(newPass); !os.IsNotExist(err) {
		t.Errorf("the dry run wrote the passphrase file: %v", err)
	}
	r := e.mustAzfs("repair", "--machine", testMachine, "--apply", "--generate-passphrase", newPass)
	if !strings.Contains(r.stdout, "wrote a new key slot") {
		t.Errorf("repair --apply with a new key slot:\n%s", r)
	}
	if fi, err := os.Stat(newPass); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated passphrase file: %v, %v", fi, err)
	}
	rows := other.mustAzfs("points", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", newPass)
	if !strings.Contains(rows.stdout, testMachine) {
		t.Errorf("points with the new passphrase:\n%s", rows)
	}
	m := other.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--vault", e.vault, "--machine", testMachine, "--passphrase-file", newPass, "--point", "latest")
	compareTrees(t, "the point mounted with the new key slot", snapshot(t, src), snapshot(t, filepath.Join(m.dir, src)), compareOpts{atime: true})
	if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
		t.Errorf("azmount exit %d, %v", code, err)
	}
	if r := e.azfs("repair", "--generate-passphrase", filepath.Join(e.dir, "p2")); r.code != 2 {
		t.Errorf("a new key slot without --machine: exit %d, want 2 (usage)\n%s", r.code, r)
	}
}

// TestRepairCertificateMode: the owner's escrow of a write-only machine
// reads its index but no point. Repair rebuilds nothing it need not,
// quarantines junk it can tell by name, leaves the points it cannot read
// alone, says the area was not checked, and refuses a new key slot.
func TestRepairCertificateMode(t *testing.T) {
	c := ctNewCert(t, t.TempDir(), "backup", false)
	e := newEnv(t)
	ctCreateVault(t, e, c)
	e.backup(oneFileSource(t, 1<<20))
	writeFile(t, filepath.Join(e.area(), "points", "readme"), []byte("junk"), 0o600)

	r := e.mustAzfs("repair", "--apply")
	if !strings.Contains(r.stdout, `"quarantine/points/readme"`) || !strings.Contains(r.stdout, "not checked") {
		t.Errorf("repair --apply of a certificate-mode machine:\n%s", r)
	}
	if points, err := os.ReadDir(filepath.Join(e.area(), "points")); err != nil || len(points) != 1 {
		t.Errorf("points left: %v, %v; want the one point", points, err)
	}
	if r := e.azfs("repair", "--machine", testMachine, "--generate-passphrase", filepath.Join(e.dir, "p")); r.code != 1 || !strings.Contains(r.stderr, "certificate mode") {
		t.Errorf("a new key slot for a write-only machine: want it refused, got:\n%s", r)
	}
}

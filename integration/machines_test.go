package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Machines, vault credentials, security PINs and owner key slots (issue 3),
// end to end: every simulated machine is an env of its own, with its own
// config (keyring), cache and home directories.

// pinRe is the shape of a security PIN as 'azfs vault pin' prints it.
var pinRe = regexp.MustCompile(`^[0-9]{4}-[0-9]{4}$`)

// mcCheckSecretFile checks that path is a regular file with mode 0600 and,
// for a passphrase file, that the passphrase (without its line break) has at
// least minLen characters.
func mcCheckSecretFile(t *testing.T, what, path string, minLen int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s %s: mode %v, want a regular file", what, path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s %s: mode %#o, want 0600", what, path, perm)
	}
	if minLen > 0 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if n := len([]rune(strings.TrimRight(string(b), "\r\n"))); n < minLen {
			t.Errorf("%s %s: %d characters, want at least %d", what, path, n, minLen)
		}
	}
}

// mcKeyring is the path of the env's keyring.
func mcKeyring(e *env) string { return filepath.Join(e.cfgDir, "keyring.json") }

// mcNoKeyring checks that the env has no keyring: the commands it ran
// stored nothing on the machine.
func mcNoKeyring(t *testing.T, e *env, after string) {
	t.Helper()
	if _, err := os.Stat(mcKeyring(e)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after %s, the machine has a keyring (stat: %v): a refused or read-only command must store nothing", after, err)
	}
}

// mcNotExist checks that path does not exist.
func mcNotExist(t *testing.T, path, why string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (stat: %v): %s", path, err, why)
	}
}

// mcCredentials has the owner env write a vault credentials file with the
// extra flags (--valid, --access) and returns its path.
func mcCredentials(t *testing.T, owner *env, name string, flags ...string) string {
	t.Helper()
	path := filepath.Join(owner.dir, name)
	owner.mustAzfs(append(append([]string{"vault", "credentials"}, flags...), "-o", path)...)
	mcCheckSecretFile(t, "credentials file "+name, path, 0)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<VaultCredentials") || !strings.Contains(string(b), "<Location>") {
		t.Fatalf("credentials file %s is not the XML expected:\n%s", name, b)
	}
	return path
}

// mcRegister makes a fresh env and registers it as machine name with the
// credentials file, generating its passphrase; it returns the env (whose
// vault field is set) and the passphrase file.
func mcRegister(t *testing.T, owner *env, creds, name string) (*env, string) {
	t.Helper()
	m := newEnv(t)
	m.vault = owner.vault
	pass := filepath.Join(m.dir, "passphrase-"+name)
	m.mustAzfs("register", "--vault-credentials", creds, "--name", name, "--generate-passphrase", pass)
	mcCheckSecretFile(t, "generated passphrase of "+name, pass, 32)
	mcCheckSecretFile(t, "keyring of "+name, mcKeyring(m), 0)
	for _, f := range []string{"config", "escrow", "keys"} {
		if _, err := os.Stat(filepath.Join(owner.vault, "machines", name, f)); err != nil {
			t.Errorf("after registering %s: %v", name, err)
		}
	}
	return m, pass
}

// mcMachines lists the machine areas in the vault (the names under
// machines/).
func mcMachines(t *testing.T, vault string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(vault, "machines"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// mcNames lists the file names in dir.
func mcNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// mcPoints lists machine's points from env e with a credentials file and a
// passphrase file, as a machine without the keys does.
func mcPoints(e *env, creds, machine, pass string) result {
	e.t.Helper()
	return e.azfs("points", "--vault-credentials", creds, "--machine", machine, "--passphrase-file", pass, "--json")
}

// mcMustPoints is mcPoints expecting success; it returns the rows.
func mcMustPoints(t *testing.T, e *env, creds, machine, pass string) []pointRow {
	t.Helper()
	r := mcPoints(e, creds, machine, pass)
	if r.code != 0 {
		t.Fatalf("points of %s with its passphrase: want exit 0, got:\n%s", machine, r)
	}
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	return rows
}

// mcRefused checks that r is a one-line error of azfs mentioning each of
// want (case-insensitively).
func mcRefused(t *testing.T, r result, want ...string) {
	t.Helper()
	checkOneLineError(t, r, "azfs: ")
	for _, w := range want {
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(w)) {
			t.Errorf("want the error to mention %q, got:\n%s", w, r)
		}
	}
}

// mcMountRefused starts azmount with args on a fresh mountpoint of e,
// expecting it to exit with an error before mounting; it returns azmount's
// stderr. A mount that comes up anyway is unmounted at the end of the test.
func mcMountRefused(t *testing.T, e *env, args ...string) string {
	t.Helper()
	dir := mkdir(t, filepath.Join(t.TempDir(), "refused-mnt"))
	m := e.startMount(dir, args...)
	if err := m.waitReady(); err == nil {
		t.Errorf("azmount %s mounted, want it refused", strings.Join(args, " "))
		return m.stderr.String()
	}
	<-m.done
	r := result{args: append([]string{"azmount"}, args...), stderr: m.stderr.String(), code: m.code}
	checkOneLineError(t, r, "azmount: ")
	if isMounted(t, dir) {
		t.Errorf("a refused azmount left %s mounted", dir)
	}
	return r.stderr
}

// mcBuildTree creates a small tree under src: directories with different
// modes, small files, a 3 MiB random file, a symlink, a hard link, a file
// with a user xattr and, as root, one owned by another user. It returns
// the random file's SHA-256.
func mcBuildTree(t *testing.T, src string) string {
	t.Helper()
	p := func(rel string) string { return filepath.Join(src, rel) }
	for _, d := range []string{"", "docs", "docs/private", "bin"} {
		mkdir(t, p(d))
	}
	writeFile(t, p("hello.txt"), []byte("hello from alpha\n"), 0o644)
	writeFile(t, p("empty"), nil, 0o600)
	writeFile(t, p("docs/readme.md"), []byte("# alpha\n\nbacked up across machines\n"), 0o640)
	writeFile(t, p("docs/private/secret.txt"), []byte("not for machine B's eyes, unless it has alpha's passphrase\n"), 0o600)
	writeFile(t, p("bin/run.sh"), []byte("#!/bin/sh\necho run\n"), 0o755)
	sha := writeRandom(t, p("random.bin"), 3<<20, 42)
	if err := os.Symlink("../hello.txt", p("docs/hello-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p("docs/readme.md"), p("readme-hardlink.md")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p("hello.txt"), "user.azfs.origin", []byte("alpha"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatalf("setxattr: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(p("docs/readme.md"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(p("docs/private"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	for _, rel := range []string{"hello.txt", "docs/readme.md", "random.bin", "bin"} {
		if err := os.Chtimes(p(rel), old, old); err != nil {
			t.Fatal(err)
		}
	}
	return sha
}

// fuseOK reports whether FUSE mounts can be tried here (requireFUSE skips
// the test instead).
func fuseOK() bool {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return false
	}
	_, err := exec.LookPath("fusermount3")
	return err == nil
}

// mcWriteWrongPass writes a well-formed passphrase that opens nothing.
func mcWriteWrongPass(t *testing.T, e *env) string {
	t.Helper()
	path := filepath.Join(e.dir, "wrong-passphrase")
	writeFile(t, path, []byte("this is certainly not the passphrase\n"), 0o600)
	return path
}

// TestCrossMachineRecovery: the owner creates a vault and issues backup
// credentials; machine alpha registers with them and backs up; machine B,
// which has no azfs state at all, lists alpha's points and mounts the latest
// with the credentials file and alpha's passphrase, and cp -a recovers the
// tree exactly. Each machine's passphrase opens its own points only.
func TestCrossMachineRecovery(t *testing.T) {
	requireFUSE(t)
	owner := newEnv(t)
	owner.createVault()
	mcCheckSecretFile(t, "owner's generated passphrase", owner.passFile, 32)
	mcCheckSecretFile(t, "owner's keyring", mcKeyring(owner), 0)
	for _, rel := range []string{"config", "keys", filepath.Join("machines", testMachine, "config"), filepath.Join("machines", testMachine, "escrow")} {
		if _, err := os.Stat(filepath.Join(owner.vault, rel)); err != nil {
			t.Errorf("vault layout: %v", err)
		}
	}
	if slots := mcNames(t, filepath.Join(owner.vault, "keys")); len(slots) != 1 {
		t.Errorf("vault root has owner key slots %v, want exactly one", slots)
	}
	creds := mcCredentials(t, owner, "backup.VaultCredentials")

	// Machine alpha registers and backs up without any passphrase.
	alpha, alphaPass := mcRegister(t, owner, creds, "alpha")
	src := filepath.Join(t.TempDir(), "src")
	randomSHA := mcBuildTree(t, src)
	want := snapshot(t, src) // before the backup
	out := alpha.backup(src)
	if out.Machine != "alpha" {
		t.Errorf("alpha's backup: machine %q, want alpha", out.Machine)
	}
	if got := alpha.points(); len(got) != 1 || got[0].ID != out.Point {
		t.Errorf("alpha lists its own points as %+v, want just %s", got, out.Point)
	}
	if _, err := os.Stat(filepath.Join(owner.vault, "machines", "alpha", "points")); err != nil {
		t.Errorf("alpha's point is not in its area: %v", err)
	}
	if n := len(vaultFiles(t, owner.vault, filepath.Join("machines", "alpha", "data"))); n == 0 {
		t.Errorf("alpha's backup stored no pack under machines/alpha/data/")
	}
	if n := len(vaultFiles(t, owner.vault, filepath.Join("machines", testMachine, "data"))); n != 0 {
		t.Errorf("alpha's backup stored %d packs in the owner machine's area", n)
	}

	// Machine B: no state, only the credentials file and alpha's passphrase.
	b := newEnv(t)
	rows := mcMustPoints(t, b, creds, "alpha", alphaPass)
	if len(rows) != 1 || rows[0].ID != out.Point || rows[0].Machine != "alpha" {
		t.Fatalf("B lists alpha's points as %+v, want just %s of alpha", rows, out.Point)
	}
	mnt := mkdir(t, filepath.Join(b.dir, "mnt"))
	b.mount(mnt, "--vault-credentials", creds, "--machine", "alpha", "--passphrase-file", alphaPass, "--point", "latest")
	inMount := filepath.Join(mnt, src)
	compareTrees(t, "B's mount of alpha's latest point", want, snapshot(t, inMount), compareOpts{atime: true})
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", inMount, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a from B's mount: %v\n%s", err, out)
	}
	copySnap := snapshot(t, dst)
	compareTrees(t, "B's cp -a copy", want, copySnap, compareOpts{atime: true, xattrPrefix: "user."})
	if e := copySnap["random.bin"]; e == nil || e.sha != randomSHA {
		t.Errorf("B's copy of random.bin: %+v, want sha256 %s", e, randomSHA)
	}

	// B with a wrong passphrase, for points and for azmount.
	wrong := mcWriteWrongPass(t, b)
	mcRefused(t, mcPoints(b, creds, "alpha", wrong), "wrong passphrase")
	if msg := mcMountRefused(t, b, "--vault-credentials", creds, "--machine", "alpha", "--passphrase-file", wrong, "--point", "latest"); !strings.Contains(msg, "wrong passphrase") {
		t.Errorf("azmount with a wrong passphrase: want it to mention %q, got:\n%s", "wrong passphrase", msg)
	}
	// B asking for a machine the vault does not have.
	mcRefused(t, mcPoints(b, creds, "ghost", alphaPass), "ghost", "no such machine")
	mcMountRefused(t, b, "--vault-credentials", creds, "--machine", "ghost", "--passphrase-file", alphaPass, "--point", "latest")
	// ... and for no machine at all.
	mcRefused(t, b.azfs("points", "--vault-credentials", creds, "--passphrase-file", alphaPass), "--machine")

	// Per-machine keys: alpha's passphrase does not open the owner
	// machine's points, while the owner machine's own passphrase does. That
	// one is also the owner passphrase ('vault create' set both), which
	// opens alpha's points too, through alpha's escrow (issue 14).
	mcRefused(t, mcPoints(b, creds, testMachine, alphaPass), "wrong passphrase")
	if rows := mcMustPoints(t, b, creds, testMachine, owner.passFile); len(rows) != 0 {
		t.Errorf("owner machine %s has points %+v, want none", testMachine, rows)
	}
	if rows := mcMustPoints(t, b, creds, "alpha", owner.passFile); len(rows) != 1 || rows[0].ID != out.Point {
		t.Errorf("alpha's points with the owner passphrase: %+v, want its point %s", rows, out.Point)
	}

	// Recovery stored nothing on B.
	mcNoKeyring(t, b, "recovery on B")
	// Registering alpha did not change the owner's default vault or keys.
	mcCheckSecretFile(t, "owner's keyring", mcKeyring(owner), 0)
	mcCheckSecretFile(t, "alpha's keyring", mcKeyring(alpha), 0)
	if got := mcMachines(t, owner.vault); strings.Join(got, ",") != "alpha,"+testMachine {
		t.Errorf("vault machines = %v, want [alpha %s]", got, testMachine)
	}
}

// mcSetXML replaces the text of element name in the credentials file src
// and writes the result to dst (0600).
func mcSetXML(t *testing.T, src, dst, name, text string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`<` + name + `>[^<]*</` + name + `>`)
	if !re.Match(b) {
		t.Fatalf("no %s element in %s:\n%s", name, src, b)
	}
	out := re.ReplaceAllLiteral(b, []byte("<"+name+">"+text+"</"+name+">"))
	writeFile(t, dst, out, 0o600)
}

// mcXMLText returns the text of element name in the credentials file.
func mcXMLText(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<` + name + `>([^<]*)</` + name + `>`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s element in %s:\n%s", name, path, b)
	}
	return string(m[1])
}

// mcKeyringDefault returns the default vault ID of the env's keyring.
func mcKeyringDefault(t *testing.T, e *env) string {
	t.Helper()
	b, err := os.ReadFile(mcKeyring(e))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Default string `json:"default"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return k.Default
}

// mcVaultID returns the ID in the vault root's config.
func mcVaultID(t *testing.T, vault string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vault, "config"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("vault config %s: id %q, %v", vault, c.ID, err)
	}
	return c.ID
}

// TestCredentialsRefused presents credentials that must not register a
// machine (expired, malformed, restore-only, for another vault, revoked,
// altered) and checks each refusal changes nothing; restore credentials
// still recover.
func TestCredentialsRefused(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	other := newEnv(t) // the owner of another vault, Y
	other.createVault()
	backupCreds := mcCredentials(t, owner, "backup.VaultCredentials")
	restoreCreds := mcCredentials(t, owner, "restore.VaultCredentials", "--access", "restore")
	if got := mcXMLText(t, restoreCreds, "Access"); got != "restore" {
		t.Errorf("restore credentials: Access %q, want restore", got)
	}
	expiredCreds := mcCredentials(t, owner, "expired.VaultCredentials", "--valid", "1s")
	start := time.Now()
	alpha, alphaPass := mcRegister(t, owner, backupCreds, "alpha")
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "file.txt"), []byte("restore me\n"), 0o644)
	point := alpha.backup(src).Point

	good, err := os.ReadFile(backupCreds)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.VaultCredentials")
	writeFile(t, truncated, good[:len(good)/2], 0o600)
	garbage := filepath.Join(dir, "garbage.VaultCredentials")
	writeFile(t, garbage, randomBytes(300, 7), 0o600)
	empty := filepath.Join(dir, "empty.VaultCredentials")
	writeFile(t, empty, nil, 0o600)
	notXML := filepath.Join(dir, "text.VaultCredentials")
	writeFile(t, notXML, []byte("vault=/somewhere secret=1234\n"), 0o600)
	foreign := filepath.Join(dir, "foreign.VaultCredentials") // X's credentials pointing at Y's directory
	mcSetXML(t, backupCreds, foreign, "Location", other.vault)
	upgraded := filepath.Join(dir, "upgraded.VaultCredentials") // restore credentials edited to allow backup
	mcSetXML(t, restoreCreds, upgraded, "Access", "backup")
	revoked := mcCredentials(t, owner, "revoked.VaultCredentials")
	revokedRecord := filepath.Join(owner.vault, "credentials", mcXMLText(t, revoked, "CredentialId"))
	if _, err := os.Stat(revokedRecord); err != nil {
		t.Fatalf("the vault keeps no record of issued credentials at credentials/<CredentialId>: %v", err)
	}
	if err := os.Remove(revokedRecord); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(start.Add(1500 * time.Millisecond)); d > 0 {
		time.Sleep(d) // the 1-second credentials are now expired (wall clock)
	}

	machinesX, machinesY := mcMachines(t, owner.vault), mcMachines(t, other.vault)
	fresh := newEnv(t) // a machine that tries to register
	cases := []struct {
		name  string
		creds string
		want  []string
	}{
		{"expired", expiredCreds, []string{"expired"}},
		{"truncated XML", truncated, []string{"malformed"}},
		{"garbage", garbage, []string{"malformed"}},
		{"empty file", empty, []string{"malformed"}},
		{"not XML", notXML, []string{"malformed"}},
		{"restore access", restoreCreds, []string{"do not allow"}},
		{"access edited to backup", upgraded, []string{"altered"}},
		{"other vault's directory", foreign, []string{"not issued for this vault"}},
		{"revoked", revoked, []string{"revoked"}},
		{"missing file", filepath.Join(dir, "no-such.VaultCredentials"), []string{"no such file"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fresh.t = t
			defer func() { fresh.t = nil }()
			name := fmt.Sprintf("refused%d", i)
			gen := filepath.Join(fresh.dir, "passphrase-"+name)
			r := fresh.azfs("register", "--vault-credentials", tc.creds, "--name", name, "--generate-passphrase", gen)
			mcRefused(t, r, tc.want...)
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			mcNotExist(t, gen, "a refused registration must not write a passphrase file")
			mcNoKeyring(t, fresh, "a refused registration")
			if got := mcMachines(t, owner.vault); strings.Join(got, ",") != strings.Join(machinesX, ",") {
				t.Errorf("vault X machines after a refused registration: %v, want %v", got, machinesX)
			}
			if got := mcMachines(t, other.vault); strings.Join(got, ",") != strings.Join(machinesY, ",") {
				t.Errorf("vault Y machines after a refused registration: %v, want %v", got, machinesY)
			}
		})
	}
	fresh.t = t

	// Recovery with credentials that are no longer (or never were) good is
	// refused too.
	mcRefused(t, mcPoints(fresh, expiredCreds, "alpha", alphaPass), "expired")
	mcRefused(t, mcPoints(fresh, revoked, "alpha", alphaPass), "revoked")
	mcRefused(t, mcPoints(fresh, foreign, "alpha", alphaPass), "not issued for this vault")
	mcRefused(t, mcPoints(fresh, truncated, "alpha", alphaPass), "malformed")
	if fuseOK() {
		for _, c := range []struct{ creds, want string }{{expiredCreds, "expired"}, {revoked, "revoked"}, {foreign, "not issued for this vault"}} {
			if msg := mcMountRefused(t, fresh, "--vault-credentials", c.creds, "--machine", "alpha", "--passphrase-file", alphaPass, "--point", "latest"); !strings.Contains(msg, c.want) {
				t.Errorf("azmount with %s credentials: want the error to mention %q, got:\n%s", c.want, c.want, msg)
			}
		}
	}
	mcNoKeyring(t, fresh, "refused recovery")

	// A machine that already has a default vault (Y) registers with X: it
	// works, and Y stays its default.
	defY := mcKeyringDefault(t, other)
	if defY != mcVaultID(t, other.vault) {
		t.Fatalf("Y's owner: default vault %s, want Y (%s)", defY, mcVaultID(t, other.vault))
	}
	otherPass := filepath.Join(other.dir, "passphrase-for-x")
	other.mustAzfs("register", "--vault-credentials", backupCreds, "--name", "ybox", "--generate-passphrase", otherPass)
	if got := mcKeyringDefault(t, other); got != defY {
		t.Errorf("registering with vault X changed the default vault from %s to %s", defY, got)
	}
	mcCheckSecretFile(t, "keyring of Y's owner", mcKeyring(other), 0)
	mcCheckSecretFile(t, "generated passphrase of ybox", otherPass, 32)
	// Registering again with X under another name is refused.
	mcRefused(t, other.azfs("register", "--vault-credentials", backupCreds, "--name", "ybox2", "--generate-passphrase", filepath.Join(other.dir, "again")), "already registered")
	// A name that is taken is refused without what proves the right to it:
	// alpha's passphrase or the owner's (with either, a reinstalled alpha
	// takes it up: TestReregisterReinstalledMachine, issue 14).
	alphaSlots := mcNames(t, filepath.Join(owner.vault, "machines", "alpha", "keys"))
	taken := newEnv(t)
	mcRefused(t, taken.azfs("register", "--vault-credentials", backupCreds, "--name", "alpha", "--passphrase-file", mcWriteWrongPass(t, taken)), "alpha")
	mcNoKeyring(t, taken, "registering under a taken name")
	// ... also with a generated passphrase: no passphrase file is left
	// behind that would look like alpha's but opens nothing.
	takenGen := filepath.Join(taken.dir, "passphrase-alpha")
	mcRefused(t, taken.azfs("register", "--vault-credentials", backupCreds, "--name", "alpha", "--generate-passphrase", takenGen), "alpha")
	mcNotExist(t, takenGen, "a refused registration (name taken) must not write a passphrase file")
	mcNoKeyring(t, taken, "registering under a taken name")
	if got := mcNames(t, filepath.Join(owner.vault, "machines", "alpha", "keys")); strings.Join(got, ",") != strings.Join(alphaSlots, ",") {
		t.Errorf("registering under the taken name alpha changed alpha's key slots from %v to %v", alphaSlots, got)
	}

	// Restore credentials recover: points and a mount from a fresh machine.
	reader := newEnv(t)
	rows := mcMustPoints(t, reader, restoreCreds, "alpha", alphaPass)
	if len(rows) != 1 || rows[0].ID != point {
		t.Errorf("points with restore credentials: %+v, want just %s", rows, point)
	}
	requireFUSE(t)
	mnt := mkdir(t, filepath.Join(reader.dir, "mnt"))
	reader.mount(mnt, "--vault-credentials", restoreCreds, "--machine", "alpha", "--passphrase-file", alphaPass, "--point", "latest")
	if b, err := os.ReadFile(filepath.Join(mnt, src, "file.txt")); err != nil || string(b) != "restore me\n" {
		t.Errorf("mount with restore credentials: read %q, %v", b, err)
	}
	mcNoKeyring(t, reader, "recovery with restore credentials")
}

// TestPassphraseChangeWithPIN: with a PIN from the owner, a registered
// machine replaces its passphrase without knowing the old one; the old one
// stops opening its points elsewhere, the new one opens them, and no pack is
// rewritten. PINs work once, wrong PINs change nothing, and a machine that
// is not registered cannot change a passphrase.
func TestPassphraseChangeWithPIN(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	creds := mcCredentials(t, owner, "backup.VaultCredentials")
	alpha, oldPass := mcRegister(t, owner, creds, "alpha")
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeRandom(t, filepath.Join(src, "data.bin"), 1<<20, 3)
	writeFile(t, filepath.Join(src, "note.txt"), []byte("before the change\n"), 0o644)
	first := alpha.backup(src).Point
	dataDir := filepath.Join("machines", "alpha", "data")
	dataBefore := vaultFiles(t, owner.vault, dataDir)
	if len(dataBefore) == 0 {
		t.Fatal("alpha's backup stored no pack")
	}
	slotsDir := filepath.Join(owner.vault, "machines", "alpha", "keys")
	recovery := newEnv(t) // another machine, recovering with a passphrase file

	// Only the owner issues PINs.
	mcRefused(t, alpha.azfs("vault", "pin"))
	pin := owner.mustAzfs("vault", "pin")
	pin1 := strings.TrimSpace(pin.stdout)
	if !pinRe.MatchString(pin1) {
		t.Fatalf("vault pin printed %q, want a PIN like 1234-5678\n%s", pin.stdout, pin)
	}

	// The change, with the PIN and no old passphrase.
	newPass := filepath.Join(alpha.dir, "new-passphrase")
	alpha.mustAzfs("passphrase", "change", "--generate-passphrase", newPass, "--pin", pin1)
	mcCheckSecretFile(t, "generated new passphrase", newPass, 32)
	mcCheckSecretFile(t, "alpha's keyring", mcKeyring(alpha), 0)
	mcRefused(t, mcPoints(recovery, creds, "alpha", oldPass), "wrong passphrase")
	if rows := mcMustPoints(t, recovery, creds, "alpha", newPass); len(rows) != 1 || rows[0].ID != first {
		t.Errorf("points with the new passphrase: %+v, want just %s", rows, first)
	}
	if got := vaultFiles(t, owner.vault, dataDir); !maps.Equal(got, dataBefore) {
		t.Errorf("packs changed by the passphrase change:\nbefore %v\nafter  %v", dataBefore, got)
	}
	slotsAfter := mcNames(t, slotsDir)
	if len(slotsAfter) != 1 {
		t.Errorf("alpha has key slots %v after the change, want exactly one (the old ones deleted)", slotsAfter)
	}
	// The owner's passphrase and machine are untouched.
	mcMustPoints(t, recovery, creds, testMachine, owner.passFile)

	// Reusing the PIN is refused, and changes nothing.
	again := filepath.Join(alpha.dir, "again-passphrase")
	mcRefused(t, alpha.azfs("passphrase", "change", "--generate-passphrase", again, "--pin", pin1), "used")
	mcNotExist(t, again, "a refused change must not write a passphrase file")

	// A wrong PIN (one digit off a valid one) is refused, and changes
	// nothing: the current passphrase still opens alpha's points.
	pin2 := strings.TrimSpace(owner.mustAzfs("vault", "pin").stdout)
	if !pinRe.MatchString(pin2) || pin2 == pin1 {
		t.Fatalf("second PIN %q (first %q): want a new PIN like 1234-5678", pin2, pin1)
	}
	wrongPIN := pin2[:len(pin2)-1] + string('0'+(pin2[len(pin2)-1]-'0'+1)%10)
	for _, bad := range []string{wrongPIN, "0000-000", "not-a-pin"} {
		r := alpha.azfs("passphrase", "change", "--generate-passphrase", again, "--pin", bad)
		mcRefused(t, r, "pin")
		mcNotExist(t, again, "a refused change must not write a passphrase file")
	}
	if got := mcNames(t, slotsDir); strings.Join(got, ",") != strings.Join(slotsAfter, ",") {
		t.Errorf("alpha's key slots after refused changes: %v, want %v", got, slotsAfter)
	}
	mcMustPoints(t, recovery, creds, "alpha", newPass)

	// Expired PINs: a PIN is valid for 5 minutes, too long to wait for
	// here; repo/access's unit tests cover expiry with an injected clock.

	// A machine that is not registered cannot change a passphrase, even
	// with a valid PIN, and its attempt does not use the PIN up.
	stranger := newEnv(t)
	pin3 := strings.TrimSpace(owner.mustAzfs("vault", "pin").stdout)
	strangerPass := filepath.Join(stranger.dir, "new-passphrase")
	mcRefused(t, stranger.azfs("passphrase", "change", "--vault", owner.vault, "--generate-passphrase", strangerPass, "--pin", pin3), "not registered")
	mcNotExist(t, strangerPass, "a refused change must not write a passphrase file")
	mcNoKeyring(t, stranger, "a refused passphrase change")

	// pin3 was not consumed: alpha uses it for a second change.
	third := filepath.Join(alpha.dir, "third-passphrase")
	alpha.mustAzfs("passphrase", "change", "--generate-passphrase", third, "--pin", pin3)
	mcRefused(t, mcPoints(recovery, creds, "alpha", newPass), "wrong passphrase")
	mcMustPoints(t, recovery, creds, "alpha", third)

	// A change refused for its new passphrase (too short, or a generated
	// passphrase's file already there) changes nothing either: the PIN is
	// not used up, and the owner need not issue another.
	short := filepath.Join(alpha.dir, "short-passphrase")
	writeFile(t, short, []byte("too short\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"too short", []string{"--new-passphrase-file", short}, "16"},
		{"generated file exists", []string{"--generate-passphrase", third}, "exists"},
	} {
		pin := strings.TrimSpace(owner.mustAzfs("vault", "pin").stdout)
		r := alpha.azfs(append(append([]string{"passphrase", "change"}, tc.args...), "--pin", pin)...)
		mcRefused(t, r, tc.want)
		if got := mcNames(t, slotsDir); len(got) != 1 {
			t.Errorf("%s: alpha has key slots %v, want one", tc.name, got)
		}
		mcMustPoints(t, recovery, creds, "alpha", third)
		retry := filepath.Join(alpha.dir, "retry-"+strings.ReplaceAll(tc.name, " ", "-"))
		if r := alpha.azfs("passphrase", "change", "--generate-passphrase", retry, "--pin", pin); r.code != 0 {
			t.Errorf("passphrase change refused (%s) used up the PIN: retrying with the same PIN and a good passphrase failed:\n%s", tc.name, r)
			continue
		}
		third = retry // the current passphrase
	}
	mcMustPoints(t, recovery, creds, "alpha", third)

	// Alpha still backs up with the keys it holds, no passphrase needed, and
	// the earlier packs are still unchanged.
	writeFile(t, filepath.Join(src, "note.txt"), []byte("after the change\n"), 0o644)
	alpha.backup(src)
	after := vaultFiles(t, owner.vault, dataDir)
	for name, size := range dataBefore {
		if after[name] != size {
			t.Errorf("pack %s: size %d after the change, was %d", name, after[name], size)
		}
	}
	if rows := mcMustPoints(t, recovery, creds, "alpha", third); len(rows) != 2 {
		t.Errorf("alpha has %d points after a second backup, want 2", len(rows))
	}
	mcNoKeyring(t, recovery, "recovery")
}

// mcSlots runs 'azfs key list' in e with args and returns the slot IDs.
func mcSlots(t *testing.T, e *env, args ...string) []string {
	t.Helper()
	r := e.mustAzfs(append([]string{"key", "list"}, args...)...)
	var ids []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids = append(ids, l)
		}
	}
	return ids
}

// TestOwnerKeySlots: the owner adds and removes key slots; the last one
// cannot be removed; the passphrase of the remaining slot opens owner
// operations from a machine without the owner's keys, and a removed slot's
// passphrase no longer does.
func TestOwnerKeySlots(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	slots := mcSlots(t, owner)
	if len(slots) != 1 {
		t.Fatalf("key list after vault create: %v, want one slot", slots)
	}
	orig := slots[0]
	if got := mcNames(t, filepath.Join(owner.vault, "keys")); strings.Join(got, ",") != orig {
		t.Errorf("vault root keys/ holds %v, want the listed slot %s", got, orig)
	}

	addedPass := filepath.Join(owner.dir, "added-passphrase")
	owner.mustAzfs("key", "add", "--generate-passphrase", addedPass)
	mcCheckSecretFile(t, "generated passphrase of the added slot", addedPass, 32)
	slots = mcSlots(t, owner)
	if len(slots) != 2 {
		t.Fatalf("key list after key add: %v, want two slots", slots)
	}
	var added string
	for _, s := range slots {
		if s != orig {
			added = s
		}
	}
	if added == "" {
		t.Fatalf("key list after key add: %v, want a new slot besides %s", slots, orig)
	}

	// A fresh machine opens owner operations with either passphrase.
	fresh := newEnv(t)
	for _, pass := range []string{owner.passFile, addedPass} {
		r := fresh.mustAzfs("vault", "pin", "--vault", owner.vault, "--passphrase-file", pass)
		if !pinRe.MatchString(strings.TrimSpace(r.stdout)) {
			t.Errorf("vault pin printed %q, want a PIN like 1234-5678", r.stdout)
		}
	}

	// Remove the original slot: one left, the added one.
	owner.mustAzfs("key", "remove", orig)
	if slots = mcSlots(t, owner); len(slots) != 1 || slots[0] != added {
		t.Fatalf("key list after removing %s: %v, want just %s", orig, slots, added)
	}
	// Removing the last slot is refused; so is removing one that does not
	// exist. Neither changes the slots.
	mcRefused(t, owner.azfs("key", "remove", added), "last")
	mcRefused(t, owner.azfs("key", "remove", orig), orig)
	mcRefused(t, owner.azfs("key", "remove", "../config"))
	if _, err := os.Stat(filepath.Join(owner.vault, "config")); err != nil {
		t.Fatalf("key remove ../config: %v", err)
	}
	if slots = mcSlots(t, owner); len(slots) != 1 || slots[0] != added {
		t.Fatalf("key list after refused removals: %v, want just %s", slots, added)
	}

	// From a fresh machine: the remaining slot's passphrase opens owner
	// operations; the removed slot's passphrase and a wrong one do not.
	r := fresh.mustAzfs("vault", "pin", "--vault", owner.vault, "--passphrase-file", addedPass)
	if !pinRe.MatchString(strings.TrimSpace(r.stdout)) {
		t.Errorf("vault pin printed %q, want a PIN like 1234-5678", r.stdout)
	}
	if got := mcSlots(t, fresh, "--vault", owner.vault, "--passphrase-file", addedPass); len(got) != 1 || got[0] != added {
		t.Errorf("key list from a fresh machine: %v, want just %s", got, added)
	}
	mcRefused(t, fresh.azfs("vault", "pin", "--vault", owner.vault, "--passphrase-file", owner.passFile), "wrong owner passphrase")
	mcRefused(t, fresh.azfs("vault", "pin", "--vault", owner.vault, "--passphrase-file", mcWriteWrongPass(t, fresh)), "wrong owner passphrase")
	mcRefused(t, fresh.azfs("key", "add", "--vault", owner.vault, "--passphrase-file", owner.passFile, "--generate-passphrase", filepath.Join(fresh.dir, "x")), "wrong owner passphrase")
	mcNotExist(t, filepath.Join(fresh.dir, "x"), "a refused key add must not write a passphrase file")
	credsFromFresh := filepath.Join(fresh.dir, "creds.VaultCredentials")
	fresh.mustAzfs("vault", "credentials", "--vault", owner.vault, "--passphrase-file", addedPass, "-o", credsFromFresh)
	mcCheckSecretFile(t, "credentials file written from a fresh machine", credsFromFresh, 0)
	mcNoKeyring(t, fresh, "owner operations with a passphrase file")

	// Owner slots are not machine slots: the owner machine's passphrase,
	// whose owner slot is gone, still opens that machine's points.
	if rows := mcMustPoints(t, fresh, credsFromFresh, testMachine, owner.passFile); len(rows) != 0 {
		t.Errorf("owner machine points: %+v, want none", rows)
	}

	// A registered machine that is not the owner cannot manage owner keys.
	alpha, _ := mcRegister(t, owner, credsFromFresh, "alpha")
	mcRefused(t, alpha.azfs("key", "list"))
	mcRefused(t, alpha.azfs("key", "add", "--generate-passphrase", filepath.Join(alpha.dir, "y")))
	mcNotExist(t, filepath.Join(alpha.dir, "y"), "a refused key add must not write a passphrase file")
	mcRefused(t, alpha.azfs("vault", "credentials", "-o", filepath.Join(alpha.dir, "c")))
	mcNotExist(t, filepath.Join(alpha.dir, "c"), "refused credentials must not be written")
	if slots = mcSlots(t, owner); len(slots) != 1 || slots[0] != added {
		t.Errorf("key list at the end: %v, want just %s", slots, added)
	}
}

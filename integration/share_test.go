package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/storage/smb/smbtest"
)

// shareEnv is an env whose vault is on a share of its own smbd, reached
// as smbtest.User with the password in the file AZFS_SMB_PASSWORD_FILE
// names.
type shareEnv struct {
	*env
	srv      *smbtest.Server
	share    string
	dir      string // the vault's directory on the server's disk
	passFile string // the share password's file
}

// newShareEnv starts an smbd for the test and returns an env whose vault
// location (not created yet) is path in one of its shares.
func newShareEnv(t *testing.T, path string) *shareEnv {
	t.Helper()
	srv := smbtest.Start(t)
	e := &shareEnv{env: newEnv(t), srv: srv, share: srv.NewShare(t)}
	e.dir = filepath.Join(srv.ShareDir(e.share), filepath.FromSlash(path))
	e.passFile = filepath.Join(e.env.dir, "smb-password")
	writeFile(t, e.passFile, []byte(srv.Password+"\n"), 0o600)
	e.extraEnv = append(e.extraEnv, "AZFS_SMB_PASSWORD_FILE="+e.passFile)
	e.vault = srv.URL(smbtest.User, e.share, path)
	e.env.passFile = filepath.Join(e.env.dir, "passphrase")
	return e
}

// create creates the vault on the share.
func (e *shareEnv) create() {
	e.t.Helper()
	e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.env.passFile, "--machine", testMachine)
}

// packs lists the packs of the env machine's area, as the server's disk
// holds them.
func (e *shareEnv) packs() map[string]int64 {
	return vaultFiles(e.t, e.dir, filepath.Join("machines", testMachine, "data"))
}

// noPassword fails the test if a file below dir holds the share's
// password.
func (e *shareEnv) noPassword(dir string) {
	e.t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == e.passFile {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), e.srv.Password) {
			e.t.Errorf("%s holds the share's password", path)
		}
		return nil
	})
}

// TestShareVaultRoundTrip: a vault on an SMB share (a real smbd, SMB 3,
// signed and encrypted) is created, backs up a tree with every kind of
// entry, mounts its latest point and gives it back with its metadata;
// `check --read-data` finds it intact. The keyring and the vault
// credentials file name the share but hold no password.
func TestShareVaultRoundTrip(t *testing.T) {
	requireFUSE(t)
	e := newShareEnv(t, "vaults/home")
	e.create()

	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	first := e.backup(src)
	if first.Stats.BytesStored == 0 || len(e.packs()) == 0 {
		t.Fatalf("the first backup stored %d bytes and the share holds %d packs", first.Stats.BytesStored, len(e.packs()))
	}
	// As the first backup left it: reading a symlink's target updates its
	// atime (see TestCertificateModeBackupRecordsSymlinkAtime).
	want := snapshot(t, src)
	second := e.backup(src)
	if second.Stats.BytesRead != 0 || second.Stats.BytesStored > 64<<10 {
		t.Errorf("second backup of an unchanged tree read %d and stored %d bytes, want 0 and a few KiB of listings", second.Stats.BytesRead, second.Stats.BytesStored)
	}
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
	compareTrees(t, "the share vault's mount", want, snapshot(t, filepath.Join(m.dir, src)), compareOpts{atime: true})
	e.mustAzfs("check", "--read-data")

	creds := filepath.Join(e.env.dir, "creds")
	e.mustAzfs("vault", "credentials", "-o", creds, "--access", "restore")
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), e.vault) {
		t.Errorf("the vault credentials do not name the share %s:\n%s", e.vault, b)
	}
	e.noPassword(e.cfgDir)
	e.noPassword(e.env.dir)

	// A second vault where this one is, or in a directory holding files
	// that are not a vault, is refused.
	r := e.azfs("vault", "create", e.vault, "--generate-passphrase", filepath.Join(e.env.dir, "p2"))
	checkOneLineError(t, r, "azfs: a vault already exists at "+e.vault)
	r = e.azfs("vault", "create", e.srv.URL(smbtest.User, e.share, "vaults"), "--generate-passphrase", filepath.Join(e.env.dir, "p3"))
	checkOneLineError(t, r, "azfs: "+e.srv.URL(smbtest.User, e.share, "vaults")+" is not empty")

	// Another machine reaches the vault with the credentials file and the
	// share's password from its admin.
	other := newEnv(t)
	other.extraEnv = []string{"AZFS_SMB_PASSWORD_FILE=" + e.passFile}
	r = other.mustAzfs("points", "--vault-credentials", creds, "--machine", testMachine, "--passphrase-file", e.env.passFile, "--json")
	if !strings.Contains(r.stdout, first.Point) {
		t.Errorf("points through the credentials file do not list %s:\n%s", first.Point, r)
	}
}

// TestShareWrongPassword: a wrong share password is a one-line error that
// says what to check, for a new vault and for an existing one, and shows
// no password.
func TestShareWrongPassword(t *testing.T) {
	e := newShareEnv(t, "v")
	e.create()
	writeFile(t, e.passFile, []byte("wrong-password\n"), 0o600)
	for _, args := range [][]string{
		{"points"},
		{"vault", "create", e.srv.URL(smbtest.User, e.share, "other"), "--generate-passphrase", filepath.Join(e.env.dir, "p2")},
	} {
		r := e.azfs(args...)
		checkOneLineError(t, r, "azfs: vault "+e.srv.URL(smbtest.User, e.share, ""))
		if !strings.Contains(r.stderr, "refused the password of user "+smbtest.User) || strings.Contains(r.stderr, "wrong-password") {
			t.Errorf("azfs %s: %q, want the refused password named without the password", strings.Join(args, " "), r.stderr)
		}
	}
}

// TestShareReadOnlyUser: an account that may read the share but not write
// it cannot create a vault there (given as a UNC path with --smb-user) nor
// register a machine with a vault's credentials: one-line errors saying
// so, and nothing written.
func TestShareReadOnlyUser(t *testing.T) {
	srv := smbtest.Start(t)
	rwPass := filepath.Join(t.TempDir(), "rw-password")
	writeFile(t, rwPass, []byte(srv.Password+"\n"), 0o600)
	roPass := filepath.Join(t.TempDir(), "ro-password")
	writeFile(t, roPass, []byte(srv.ROPassword+"\n"), 0o600)

	// The vault, made by the account that may write, and backup
	// credentials for another machine.
	owner := newEnv(t)
	owner.extraEnv = []string{"AZFS_SMB_PASSWORD_FILE=" + rwPass}
	owner.passFile = filepath.Join(owner.dir, "passphrase")
	owner.mustAzfs("vault", "create", srv.URL(smbtest.User, "ro", "v"), "--generate-passphrase", owner.passFile, "--machine", testMachine)
	creds := filepath.Join(owner.dir, "creds")
	owner.mustAzfs("vault", "credentials", "-o", creds)
	before := vaultFiles(t, filepath.Join(srv.ShareDir("ro"), "v"), "")

	e := newEnv(t)
	unc := fmt.Sprintf(`\\%s\ro\new`, srv.Addr())
	r := e.azfs("vault", "create", unc, "--smb-user", smbtest.ReadOnly, "--smb-password-file", roPass, "--generate-passphrase", filepath.Join(e.dir, "p0"))
	checkOneLineError(t, r, "azfs: vault "+srv.URL(smbtest.ReadOnly, "ro", "new")+": ")
	if !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("vault create as %s: %q, want permission denied", smbtest.ReadOnly, r.stderr)
	}
	r = e.azfs("register", "--vault-credentials", creds, "--smb-user", smbtest.ReadOnly, "--smb-password-file", roPass, "--name", "other", "--generate-passphrase", filepath.Join(e.dir, "p1"))
	checkOneLineError(t, r, "azfs: ")
	if !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "the share refuses user "+smbtest.ReadOnly) {
		t.Errorf("register as %s: %q, want permission denied and what to do", smbtest.ReadOnly, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(srv.ShareDir("ro"), "new")); err == nil {
		t.Errorf("the refused vault create made its directory")
	}
	if after := vaultFiles(t, filepath.Join(srv.ShareDir("ro"), "v"), ""); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the refused registration changed the vault: %d files before, %d after", len(before), len(after))
	}
}

// TestShareServerRestart: smbd restarts (every connection dropped) while a
// backup uploads packs. The backup either completes, reconnecting through
// the retry wrapper, or fails with a one-line error; the next backup
// stores none of what landed again, and the vault checks and mounts whole.
func TestShareServerRestart(t *testing.T) {
	requireFUSE(t)
	e := newShareEnv(t, "vault")
	e.create()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	want := writeRandomFiles(t, src, 6, 40<<20, 300)
	total := int64(6 * 40 << 20)

	_, stderr, done := backupUntilPack(t, e.env, src, e.packs)
	e.srv.Restart(t)
	err := <-done
	if err != nil {
		if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "azfs: ") {
			t.Errorf("the backup that met the restart failed (%v) with other than one error line:\n%s", err, stderr)
		}
	}
	landed := e.packs()
	t.Logf("backup across the restart: err %v, %d packs (%d bytes) landed", err, len(landed), sum(landed))

	out := e.backup(src)
	const slack = 1 << 20
	if out.Stats.BytesStored+uint64(sum(landed)) > uint64(total)+slack {
		t.Errorf("the next backup stored %d bytes with %d bytes of packs landed: landed packs not reused", out.Stats.BytesStored, sum(landed))
	}
	if all := sum(e.packs()); all > total+slack {
		t.Errorf("the share holds %d bytes of packs for %d bytes of incompressible data: data stored twice", all, total)
	}
	e.mustAzfs("check", "--read-data")
	m := e.mount(mkdir(t, filepath.Join(e.env.dir, "mnt")), "--point", "latest")
	for name, sha := range want {
		if got, err := fileSHA(filepath.Join(m.dir, src, name)); err != nil || got != sha {
			t.Errorf("%s in the mount: sha256 %s (err %v), want %s", name, got, err, sha)
		}
	}
}

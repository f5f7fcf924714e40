package open

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert/certtest"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/rollback"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const (
	ownerPass keys.Passphrase = "owner passphrase, long enough"
	webPass   keys.Passphrase = "web01 passphrase, long enough"
	dbPass    keys.Passphrase = "db01 passphrase, long enough"
)

// given is a passphrase given up front, and records whose was asked.
type given struct {
	pass  keys.Passphrase
	asked []string
}

func (g *given) Given() (bool, error) { return true, nil }

func (g *given) Passphrase(whose string) (keys.Passphrase, error) {
	g.asked = append(g.asked, whose)
	return g.pass, nil
}

// fixture is a vault with two machines, web01 (this host's, in its
// keyring, with the owner's keys) and db01, each with a point.
type fixture struct {
	st    storage.Storage
	dir   string // the vault's directory; "" in memory
	root  repo.Root
	owner *keys.OwnerKeys
	web   *repo.Area
	ring  *keyring.Keyring
}

// newFixture makes the vault in st, and this host's config and cache
// directories under a temporary directory.
func newFixture(t *testing.T, st storage.Storage, dir string) *fixture {
	t.Helper()
	t.Setenv("AZFS_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AZFS_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	ctx := context.Background()
	root, owner, err := repo.CreateVault(ctx, st, ownerPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, dir: dir, root: root, owner: owner}
	for _, m := range []struct {
		name string
		pass keys.Passphrase
	}{{"web01", webPass}, {"db01", dbPass}} {
		v, err := root.RegisterMachine(ctx, m.name, m.pass, cheapKDF, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SavePoint(ctx, &repo.Point{Machine: m.name, Time: time.Unix(1e9, 0), Root: keys.ID{1}}); err != nil {
			t.Fatal(err)
		}
		if m.name == "web01" {
			f.web = v
		}
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	if f.ring, err = keyring.Load(configDir); err != nil {
		t.Fatal(err)
	}
	f.ring.Add(&keyring.Vault{ID: root.ID, Location: dir, Machine: "web01", Keys: f.web.Keys(), Owner: owner}, true)
	f.save(t)
	return f
}

// inDir is a fixture in a local directory, which Targets name.
func inDir(t *testing.T) *fixture {
	dir := filepath.Join(t.TempDir(), "vault")
	st, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	return newFixture(t, st, dir)
}

func (f *fixture) save(t *testing.T) {
	t.Helper()
	if err := f.ring.Save(); err != nil {
		t.Fatal(err)
	}
}

// entry is this host's keyring entry of the fixture's vault.
func (f *fixture) entry() *keyring.Vault { return f.ring.Vaults[f.root.ID] }

// opened is the fixture's root as Root returns it, for tests on storage
// no location names.
func (f *fixture) opened() *Opened {
	return &Opened{Root: f.root.Config, Storage: f.st, Location: "mem", Ring: f.ring, Entry: f.entry()}
}

// otherOwner returns the owner keys of another vault.
func otherOwner(t *testing.T) *keys.OwnerKeys {
	t.Helper()
	_, owner, err := repo.CreateVault(context.Background(), mem.New(), ownerPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	return owner
}

// TestOwnerKeysPinned: a vault whose config names other owner keys than
// those this host pinned when it joined is refused, and so are owner keys
// this host holds that are not the vault's.
func TestOwnerKeysPinned(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	if o, err := Root(ctx, Target{Vault: f.dir}); err != nil || o.Root.ID != f.root.ID || o.Entry == nil {
		t.Fatalf("Root of the vault as this host knows it: %v", err)
	}

	// A registered machine pins the owner keys its credentials vouched for.
	other := otherOwner(t).Public()
	e := f.entry()
	e.Owner, e.OwnerPublic = nil, &other
	f.save(t)
	for what, open := range map[string]func() error{
		"Root": func() error { _, err := Root(ctx, Target{Vault: f.dir}); return err },
		"Machine": func() error {
			_, err := Machine(ctx, Target{Vault: f.dir, Passphrases: &given{pass: webPass}})
			return err
		},
		"Owner": func() error {
			_, _, err := Owner(ctx, Target{Vault: f.dir, Passphrases: &given{pass: ownerPass}})
			return err
		},
	} {
		if err := open(); !errors.Is(err, repo.ErrOwnerMismatch) || !strings.Contains(err.Error(), "refusing to trust it") {
			t.Errorf("%s with other owner keys pinned: %v, want ErrOwnerMismatch", what, err)
		}
	}

	// The owner's keys on this host must be the vault's.
	e.Owner, e.OwnerPublic = otherOwner(t), nil
	f.save(t)
	if _, _, err := Owner(ctx, Target{Vault: f.dir}); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Owner with another vault's owner keys: %v, want ErrOwnerMismatch", err)
	}
}

// TestOtherVaultAtPlace: another vault at the place where this host knows
// a vault is refused (a swapped storage), and so is a machine area named
// as a vault root.
func TestOtherVaultAtPlace(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	if _, err := Root(ctx, Target{Vault: filepath.Join(f.dir, "machines", "web01")}); err == nil || !strings.Contains(err.Error(), "not a vault root") {
		t.Errorf("Root of a machine area: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	st, err := local.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.CreateVault(ctx, st, ownerPass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, f.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Root(ctx, Target{Vault: f.dir}); err == nil || !strings.Contains(err.Error(), "is not the vault this machine knows there") {
		t.Errorf("Root of another vault at a known place: %v", err)
	}
}

// TestOwner: the owner's keys come from this host's keyring, else from the
// owner passphrase, asked for by name; a wrong one is refused.
func TestOwner(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	_, owner, err := Owner(ctx, Target{Vault: f.dir})
	if err != nil || !owner.Public().Equal(f.owner.Public()) {
		t.Fatalf("Owner from the keyring: %v", err)
	}
	f.entry().Owner = nil
	f.save(t)
	pass := &given{pass: ownerPass}
	if _, owner, err = Owner(ctx, Target{Vault: f.dir, Passphrases: pass}); err != nil || !owner.Public().Equal(f.owner.Public()) {
		t.Fatalf("Owner from the passphrase: %v", err)
	}
	if want := "the owner passphrase of the vault at " + f.dir; len(pass.asked) != 1 || pass.asked[0] != want {
		t.Errorf("asked for %q, want %q", pass.asked, want)
	}
	if _, _, err := Owner(ctx, Target{Vault: f.dir, Passphrases: &given{pass: dbPass}}); err == nil || err.Error() != "wrong owner passphrase for the vault at "+f.dir {
		t.Errorf("Owner with a wrong passphrase: %v", err)
	}
	if _, _, err := Owner(ctx, Target{Vault: f.dir}); !errors.Is(err, ErrNoPassphrase) {
		t.Errorf("Owner with no passphrase at hand: %v, want ErrNoPassphrase", err)
	}
}

// TestMachine: this host's machine opens with its keys, another with the
// owner's escrow unless a passphrase is given, which then goes first; what
// the caller must say is a usage error.
func TestMachine(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	o, err := Machine(ctx, Target{Vault: f.dir})
	if err != nil || o.Machine != "web01" || o.Area == nil {
		t.Fatalf("Machine of this host: %v", err)
	}
	o, err = Machine(ctx, Target{Vault: f.dir, Machine: "db01"})
	if err != nil || o.Machine != "db01" {
		t.Fatalf("Machine db01 through the owner's escrow: %v", err)
	}
	pass := &given{pass: dbPass}
	if o, err = Machine(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: pass}); err != nil || o.Machine != "db01" {
		t.Fatalf("Machine db01 with its passphrase: %v", err)
	}
	if want := "the passphrase of machine db01 (or the vault owner's)"; len(pass.asked) != 1 || pass.asked[0] != want {
		t.Errorf("asked for %q, want %q", pass.asked, want)
	}
	if _, err := Machine(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: &given{pass: webPass}}); err == nil || !strings.HasPrefix(err.Error(), "wrong passphrase for machine db01") {
		t.Errorf("Machine db01 with web01's passphrase: %v", err)
	}
	if _, err := Machine(ctx, Target{Vault: f.dir, Machine: "bad/name"}); errkind.Of(err) != errkind.Usage {
		t.Errorf("Machine with a bad name on the owner's host: %v (%v), want a usage error", err, errkind.Of(err))
	}

	delete(f.ring.Vaults, f.root.ID)
	f.ring.Default = ""
	f.save(t)
	if _, err := Machine(ctx, Target{Vault: f.dir}); !errors.Is(err, errkind.Usage) || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("Machine of an unregistered host: %v, want a usage error", err)
	}
	if _, err := Root(ctx, Target{}); !errors.Is(err, ErrNoDefault) || errkind.Of(err) != errkind.Usage {
		t.Errorf("Root with no vault and no default: %v, want ErrNoDefault", err)
	}
}

// TestCredentials: a credentials file opens the vault it names for what
// its access allows, restore credentials write nothing, and credentials
// that are expired, revoked, for another vault or of too little access
// are refused.
func TestCredentials(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	now := time.Now()
	write := func(c *access.Credentials) string {
		t.Helper()
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "creds.xml")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	issue := func(a access.Access, valid time.Duration) *access.Credentials {
		t.Helper()
		c, err := access.Issue(ctx, f.root, f.owner, f.dir, a, valid, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	restore, backup := write(issue(access.AccessRestore, time.Hour)), write(issue(access.AccessBackup, time.Hour))

	o, err := WithCredentials(ctx, Target{Credentials: restore}, access.AccessRestore)
	if err != nil || o.Root.ID != f.root.ID || o.Credentials == nil || o.Credentials.Access != access.AccessRestore {
		t.Fatalf("restore credentials for restoring: %v", err)
	}
	if err := o.Storage.Save(ctx, "junk", []byte("x")); err == nil {
		t.Error("restore credentials wrote to the vault")
	}
	if _, err := WithCredentials(ctx, Target{Credentials: restore}, access.AccessBackup); !errors.Is(err, access.ErrAccess) {
		t.Errorf("restore credentials for a backup: %v, want ErrAccess", err)
	}
	if _, err := WithCredentials(ctx, Target{Credentials: backup}, access.AccessBackup); err != nil {
		t.Errorf("backup credentials for a backup: %v", err)
	}
	// Root takes a Target's credentials file for restoring.
	if o, err := Root(ctx, Target{Credentials: backup}); err != nil || o.Credentials == nil {
		t.Errorf("Root with backup credentials: %v", err)
	}

	expired := issue(access.AccessRestore, time.Hour)
	expired.Issued, expired.Expires = now.Add(-2*time.Hour), now.Add(-time.Minute)
	if _, err := WithCredentials(ctx, Target{Credentials: write(expired)}, access.AccessRestore); !errors.Is(err, access.ErrExpired) {
		t.Errorf("expired credentials: %v, want ErrExpired", err)
	}

	if _, err := access.Revoke(ctx, f.root, f.owner, access.AccessBackup); err != nil {
		t.Fatal(err)
	}
	if _, err := WithCredentials(ctx, Target{Credentials: backup}, access.AccessBackup); !errors.Is(err, access.ErrRevoked) {
		t.Errorf("revoked credentials: %v, want ErrRevoked", err)
	}

	// Credentials of another vault, pointed at this one.
	g := inDir(t)
	foreign, err := access.Issue(ctx, g.root, g.owner, f.dir, access.AccessRestore, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WithCredentials(ctx, Target{Credentials: write(foreign)}, access.AccessRestore); !errors.Is(err, access.ErrForeign) {
		t.Errorf("another vault's credentials: %v, want ErrForeign", err)
	}
}

// TestCurrentCertificate: the vault's certificate is taken only when the
// owner keys this host trusts signed it: a certificate another key signed
// is refused, even with a root config naming that key, when this host
// pinned the owner's.
func TestCurrentCertificate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New(), "")
	o := f.opened()
	if c, err := o.CurrentCertificate(ctx); c != nil || err != nil {
		t.Fatalf("passphrase mode: %v, %v; want none", c, err)
	}
	ec := certtest.Certificate(t, "ec.crt")
	if err := certs.Add(ctx, f.st, f.owner, ec); err != nil {
		t.Fatal(err)
	}
	if c, err := o.CurrentCertificate(ctx); err != nil || c == nil || c.ID() != ec.ID() {
		t.Fatalf("the owner's certificate: %v, %v", c, err)
	}

	// A storage adds its own certificate, signed by its own key.
	forger := otherOwner(t)
	rsa := certtest.Certificate(t, "rsa.crt")
	if err := certs.Add(ctx, f.st, forger, rsa); err != nil {
		t.Fatal(err)
	}
	if c, err := o.CurrentCertificate(ctx); !errors.Is(err, repo.ErrDamaged) || c != nil {
		t.Errorf("a certificate the owner did not sign: %v, %v; want ErrDamaged", c, err)
	}
	// ... and names its key in the root config: the pin still refuses it.
	forged := f.root.Config
	pub := forger.Public()
	forged.Owner = &pub
	o.Root = forged
	if c, err := o.CurrentCertificate(ctx); !errors.Is(err, repo.ErrDamaged) || c != nil {
		t.Errorf("a forged certificate and config against the pinned owner: %v, %v; want ErrDamaged", c, err)
	}
}

// TestRollback: an area that lost the newest point this host saw it show
// is reported by State and refused by StateToChange, until the point is
// back.
func TestRollback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New(), "")
	o := f.opened()
	if err := o.openArea(ctx, Target{}, nil); err != nil || o.Machine != "web01" {
		t.Fatalf("open web01: %v", err)
	}
	newest := &repo.Point{Machine: "web01", Time: time.Unix(2e9, 0), Root: keys.ID{2}}
	if err := o.Area.SavePoint(ctx, newest); err != nil {
		t.Fatal(err)
	}
	var warned []string
	warn := func(msg string) { warned = append(warned, msg) }
	if s, err := o.State(ctx, warn); err != nil || len(s.Live()) != 2 || len(warned) != 0 {
		t.Fatalf("State: %v, warned %q", err, warned)
	}

	// The storage withholds the newest point.
	var names []string
	if err := f.st.List(ctx, "machines/web01/points/", func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil || len(names) != 2 {
		t.Fatalf("points stored: %q, %v", names, err)
	}
	held := map[string][]byte{}
	for _, name := range names {
		b, err := f.st.Load(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		held[name] = b
		if err := f.st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	var older *repo.Point
	for name, b := range held { // put back the older one
		if err := f.st.Save(ctx, name, b); err != nil {
			t.Fatal(err)
		}
		points, err := o.Area.Points(ctx)
		if err == nil && len(points) == 1 && points[0].ID != newest.ID {
			older = points[0]
			break
		}
		if err := f.st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if older == nil {
		t.Fatal("could not put back the older point alone")
	}

	if _, err := o.State(ctx, warn); err != nil || len(warned) != 1 || !strings.HasPrefix(warned[0], "machine web01: ") || !strings.Contains(warned[0], "is missing from the vault") {
		t.Errorf("State of a rolled back area: %v, warned %q", err, warned)
	}
	if _, err := o.StateToChange(ctx, warn); !errors.Is(err, rollback.ErrRolledBack) || !strings.HasSuffix(err.Error(), "; nothing forgotten or purged") {
		t.Errorf("StateToChange of a rolled back area: %v, want ErrRolledBack", err)
	}

	// Once this host forgets what it saw, the area is taken as it is.
	if err := o.ForgetSeen(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StateToChange(ctx, warn); err != nil {
		t.Errorf("StateToChange after ForgetSeen: %v", err)
	}
}

package open

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert/certtest"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/restore"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestAreaAsOwner: another machine's area opens through the owner's
// escrow, this host's own with its keys, and the Opened it is asked of
// keeps no area; a machine whose escrow is gone does not open.
func TestAreaAsOwner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New(), "")
	o := f.opened()
	for _, name := range []string{"db01", "web01"} {
		v, err := o.AreaAsOwner(ctx, Target{}, f.owner, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if points, err := v.Points(ctx); err != nil || len(points) != 1 || points[0].Machine != name {
			t.Errorf("%s's points: %v, %v", name, points, err)
		}
	}
	if o.Area != nil || o.Machine != "" {
		t.Errorf("the Opened asked has area %q open, want none", o.Machine)
	}
	if err := f.root.MachineStorage("db01").Delete(ctx, "escrow"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.AreaAsOwner(ctx, Target{}, f.owner, "db01"); err == nil {
		t.Error("db01 without its escrow opened")
	}
	if _, err := o.AreaAsOwner(ctx, Target{}, otherOwner(t), "db01"); err == nil {
		t.Error("db01 opened with another vault's owner keys")
	}
}

// TestPreviewState: the state of a machine the owner reads; a write-only
// machine's (certificate mode, no private key) is warned of and nil.
func TestPreviewState(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New(), "")
	c := certtest.Certificate(t, "ec.crt")
	v, err := f.root.RegisterMachine(ctx, "cert01", webPass, cheapKDF, &repo.CertMode{ID: c.ID(), Wrap: c.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.StartSession(ctx, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if err := v.SavePoint(ctx, &repo.Point{Machine: "cert01", Time: time.Unix(1e9, 0), Root: keys.ID{1}}); err != nil {
		t.Fatal(err)
	}
	var warned []string
	warn := func(msg string) { warned = append(warned, msg) }
	s, err := f.opened().PreviewState(ctx, Target{Machine: "db01"}, f.owner, warn)
	if err != nil || s == nil || s.Machine != "db01" || len(s.Live()) != 1 || warned != nil {
		t.Fatalf("db01: %v, %v, warned %q", s, err, warned)
	}
	s, err = f.opened().PreviewState(ctx, Target{Machine: "cert01"}, f.owner, warn)
	if err != nil || s != nil || len(warned) != 1 || !strings.Contains(warned[0], "cannot read the points of cert01 (certificate mode)") {
		t.Errorf("write-only cert01: %v, %v, warned %q; want nil, a warning", s, err, warned)
	}
	if _, err := f.opened().PreviewState(ctx, Target{Machine: "nosuch"}, f.owner, warn); !errors.Is(err, repo.ErrNoMachine) {
		t.Errorf("a machine the vault does not have: %v, want ErrNoMachine", err)
	}
}

// TestPointsReader: on the owner's host another machine's points open
// through the escrow even with a passphrase given (not asked), this
// host's through its keys; elsewhere a machine's passphrase opens them.
func TestPointsReader(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	pass := &given{pass: webPass} // not db01's: never asked
	o, err := PointsReader(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: pass})
	if err != nil || o.Machine != "db01" || o.Area == nil || pass.asked != nil {
		t.Fatalf("db01 on the owner's host: %v, asked %q", err, pass.asked)
	}
	if o, err = PointsReader(ctx, Target{Vault: f.dir, Passphrases: pass}); err != nil || o.Machine != "web01" || pass.asked != nil {
		t.Fatalf("this host's machine: %v, asked %q", err, pass.asked)
	}

	f.entry().Owner = nil // a host that is not the owner's
	f.save(t)
	if _, err := PointsReader(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: pass}); err == nil || !strings.HasPrefix(err.Error(), "wrong passphrase for machine db01") {
		t.Errorf("db01 with web01's passphrase off the owner's host: %v", err)
	}
	pass = &given{pass: dbPass}
	if o, err = PointsReader(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: pass}); err != nil || o.Machine != "db01" || len(pass.asked) != 1 {
		t.Errorf("db01 with its passphrase: %v, asked %q", err, pass.asked)
	}
}

// TestOwnerState: the owner's keys, the named machine's area and what
// became of its points; a wrong owner passphrase opens nothing.
func TestOwnerState(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	o, owner, s, err := OwnerState(ctx, Target{Vault: f.dir, Machine: "db01"}, func(msg string) { t.Errorf("warned %q", msg) })
	if err != nil || o.Machine != "db01" || owner == nil || s.Machine != "db01" || len(s.Live()) != 1 {
		t.Fatalf("OwnerState db01: %v", err)
	}
	f.entry().Owner = nil
	f.save(t)
	if _, _, _, err := OwnerState(ctx, Target{Vault: f.dir, Machine: "db01", Passphrases: &given{pass: dbPass}}, nil); err == nil || !strings.HasPrefix(err.Error(), "wrong owner passphrase") {
		t.Errorf("OwnerState with a machine's passphrase as the owner's: %v", err)
	}
}

// TestReadPoint: the area for reading and the point a selector names;
// a selector naming no point is an error.
func TestReadPoint(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	r, p, err := ReadPoint(ctx, Target{Vault: f.dir, Machine: "db01"}, ReadOptions{Warn: func(msg string) { t.Errorf("warned %q", msg) }}, "latest")
	if err != nil || r.Machine != "db01" || p == nil || p.Machine != "db01" {
		t.Fatalf("ReadPoint db01 latest: %v", err)
	}
	if _, _, err := ReadPoint(ctx, Target{Vault: f.dir}, ReadOptions{}, "1999-01-01"); err == nil {
		t.Error("a date before every point selected one")
	}
}

// TestStartBackupSession: in passphrase mode nothing moves; a certificate
// the owner added moves the machine to its key epoch, kept in the
// keyring; one another key planted is refused; a write-only machine in a
// vault without a certificate is refused, naming the vault.
func TestStartBackupSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New(), "")
	o := f.opened()
	if err := o.openArea(ctx, Target{}, nil); err != nil {
		t.Fatal(err)
	}
	if moved, err := o.StartBackupSession(ctx); moved != nil || err != nil {
		t.Fatalf("passphrase mode: %v, %v", moved, err)
	}
	wo, err := f.root.RegisterMachine(ctx, "wo", webPass, cheapKDF, &repo.CertMode{ID: strings.Repeat("a", 64), Wrap: certtest.Certificate(t, "ec.crt").Wrap})
	if err != nil {
		t.Fatal(err)
	}
	other := f.opened()
	other.Machine, other.Area = "wo", wo
	if _, err := other.StartBackupSession(ctx); !errors.Is(err, repo.ErrNoCertificateForWriteOnly) || !strings.HasPrefix(err.Error(), "vault at mem: ") {
		t.Errorf("write-only without a certificate: %v", err)
	}

	ec := certtest.Certificate(t, "ec.crt")
	if err := certs.Add(ctx, f.st, f.owner, ec); err != nil {
		t.Fatal(err)
	}
	moved, err := o.StartBackupSession(ctx)
	if err != nil || moved == nil || moved.ID() != ec.ID() || o.Area.Keys().Certificate != ec.ID() {
		t.Fatalf("to the owner's certificate: %v, %v", moved, err)
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Load(configDir)
	if err != nil || ring.Vaults[f.root.ID].Keys.Certificate != ec.ID() {
		t.Errorf("the keyring kept: %v", err)
	}
	if moved, err := o.StartBackupSession(ctx); moved != nil || err != nil {
		t.Errorf("on its certificate already: %v, %v", moved, err)
	}
	if err := certs.Add(ctx, f.st, otherOwner(t), certtest.Certificate(t, "rsa.crt")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartBackupSession(ctx); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("a certificate the owner did not sign: %v, want ErrDamaged", err)
	}
}

// TestReadingRestore: a point backed up is restored through the Reading
// that selected it, and nothing is warned of.
func TestReadingRestore(t *testing.T) {
	ctx := context.Background()
	f := inDir(t)
	src := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(src, "a.txt"), []byte("restored"))
	if _, err := backup.Run(ctx, f.web, backup.Options{Paths: []string{src}, Machine: "web01"}); err != nil {
		t.Fatal(err)
	}
	r, p, err := ReadPoint(ctx, Target{Vault: f.dir}, ReadOptions{Warn: func(msg string) { t.Errorf("warned %q", msg) }}, "latest")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if res, err := r.Restore(ctx, p, src, dst, restore.Options{}); err != nil || res.Files != 1 {
		t.Fatalf("Restore: %+v, %v", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a.txt")); err != nil || string(b) != "restored" {
		t.Errorf("restored a.txt: %q, %v", b, err)
	}
}

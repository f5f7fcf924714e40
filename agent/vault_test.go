package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/storage/local"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// vaultFixture is a vault in a local directory with machine web01, this
// host's (in its keyring, with the owner's keys), and its points.
type vaultFixture struct {
	dir   string
	root  repo.Root
	owner *keys.OwnerKeys
	area  *repo.Area
}

func newVaultFixture(t *testing.T) *vaultFixture {
	t.Helper()
	t.Setenv("AZFS_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AZFS_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	ctx := context.Background()
	f := &vaultFixture{dir: filepath.Join(t.TempDir(), "vault")}
	st, err := local.Create(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	const pass keys.Passphrase = "a passphrase long enough"
	if f.root, f.owner, err = repo.CreateVault(ctx, st, pass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	if f.area, err = f.root.RegisterMachine(ctx, "web01", pass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Load(configDir)
	if err != nil {
		t.Fatal(err)
	}
	ring.Add(&keyring.Vault{ID: f.root.ID, Location: f.dir, Machine: "web01", Keys: f.area.Keys(), Owner: f.owner}, true)
	if err := ring.Save(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *vaultFixture) point(t *testing.T, at time.Time, set string) *repo.Point {
	t.Helper()
	p := &repo.Point{Machine: "web01", Time: at, Root: keys.ID{1}, Paths: []string{"/"}, SetName: set}
	if err := f.area.SavePoint(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *vaultFixture) opened(t *testing.T) *open.Opened {
	t.Helper()
	o, err := open.Machine(context.Background(), open.Target{Vault: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestVaultMachine: the agent's machine in a vault reads the policy and
// the last point of each set anew, and applies retention.
func TestVaultMachine(t *testing.T) {
	ctx := context.Background()
	f := newVaultFixture(t)
	dir, err := f.opened(t).StateDir()
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	m := &VaultMachine{Target: open.Target{Vault: f.dir}, Machine: "web01", Dir: dir, Log: slog.New(slog.NewTextHandler(&logged, nil))}

	if p, err := m.Policy(ctx); err != nil || !p.IsDefault() {
		t.Errorf("policy of a new machine: %+v, %v", p, err)
	}
	p := policy.Default("web01")
	p.Retention = retention.Retention{KeepLast: 1}
	if _, err := policy.Set(ctx, f.root, f.owner, p, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, err := m.Policy(ctx); err != nil || p.Seq != 1 {
		t.Errorf("policy after 'policy set': %+v, %v", p, err)
	}

	if on, err := m.Enabled(); !on || err != nil {
		t.Errorf("Enabled = %v, %v", on, err)
	}
	if err := dir.Disable(time.Now()); err != nil {
		t.Fatal(err)
	}
	if on, err := m.Enabled(); on || err != nil {
		t.Errorf("Enabled after Disable = %v, %v", on, err)
	}

	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	if last, err := m.LastBackup(ctx, ""); err != nil || !last.IsZero() {
		t.Errorf("LastBackup without points = %v, %v", last, err)
	}
	f.point(t, base, "")
	f.point(t, base.Add(time.Minute), "")
	f.point(t, base.Add(2*time.Minute), "db")
	if last, err := m.LastBackup(ctx, ""); err != nil || !last.Equal(base.Add(time.Minute)) {
		t.Errorf("LastBackup of the paths' set = %v, %v", last, err)
	}
	// A later point recorded on this host counts (the vault may not show it yet).
	if err := dir.SaveLast(hoststate.Last{Point: keys.ID{9}.String(), Time: base.Add(3 * time.Minute), Set: "db"}); err != nil {
		t.Fatal(err)
	}
	if last, err := m.LastBackup(ctx, "db"); err != nil || !last.Equal(base.Add(3*time.Minute)) {
		t.Errorf("LastBackup of db = %v, %v; log %s", last, err, logged.String())
	}

	if err := m.ApplyRetention(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := f.opened(t).State(ctx, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if live := s.Live(); len(live) != 2 || !live[0].Time.Equal(base.Add(time.Minute)) {
		t.Errorf("live after retention (keep last 1 of each set): %d points", len(live))
	}
	if !strings.Contains(logged.String(), "retention applied") || !strings.Contains(logged.String(), "forgot=1") {
		t.Errorf("log: %s", logged.String())
	}
}

// TestMachineStatus: 'azfs status' of this host's machine: the vault's
// points and policy, and this host's state (disabled, no agent).
func TestMachineStatus(t *testing.T) {
	ctx := context.Background()
	f := newVaultFixture(t)
	p := f.point(t, time.Now().Add(-time.Hour).Truncate(time.Second), "")
	o := f.opened(t)
	dir, err := o.StateDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Disable(time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := MachineStatus(ctx, o, func(msg string) { t.Errorf("warned: %s", msg) }, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Machine != "web01" || s.VaultID != f.root.ID || !s.ThisHost || s.LivePoints == nil || *s.LivePoints != 1 ||
		s.LastPoint == nil || s.LastPoint.ID != p.ID.String() || s.AutomaticBackups == nil || *s.AutomaticBackups || s.NextRun != nil ||
		s.Agent == nil || s.Agent.Running || !s.Policy.Default {
		t.Errorf("status %+v", s)
	}

	// Another host's view of the machine (this host is not web01): no host state.
	o.Entry.Machine = "db01"
	if s, err := MachineStatus(ctx, o, func(string) {}, time.Now()); err != nil || s.ThisHost || s.AutomaticBackups != nil || s.Agent != nil {
		t.Errorf("status from another host: %+v, %v", s, err)
	}
}

// TestEnableMachine: 'azfs schedule enable' resumes the backups on the
// policy's schedule and says no agent runs.
func TestEnableMachine(t *testing.T) {
	ctx := context.Background()
	f := newVaultFixture(t)
	dir, err := f.opened(t).StateDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Disable(time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	e, err := EnableMachine(ctx, f.root, "web01", dir, now)
	if err != nil {
		t.Fatal(err)
	}
	def := policy.Default("web01")
	loc, _ := def.Location()
	if e.AgentRuns || e.Schedule.String() != def.Schedule.String() || !e.Next.Equal(def.Schedule.Next(now, loc)) {
		t.Errorf("enabling: %+v", e)
	}
	if _, disabled, err := dir.Disabled(); disabled || err != nil {
		t.Errorf("still disabled: %v", err)
	}
}

// TestVaultMachineBackup: a scheduled backup of a job through the vault
// commits a point of the job's set, logs it, and is what LastBackup sees.
func TestVaultMachineBackup(t *testing.T) {
	ctx := context.Background()
	f := newVaultFixture(t)
	dir, err := f.opened(t).StateDir()
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("some data"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	m := &VaultMachine{Target: open.Target{Vault: f.dir}, Machine: "web01", Dir: dir, Log: slog.New(slog.NewTextHandler(&logged, nil)), Uploads: 1}
	before := time.Now().Add(-time.Second)
	if err := m.Backup(ctx, policy.SetPolicy{Name: "etc", Paths: []string{src}}); err != nil {
		t.Fatalf("Backup: %v; log %s", err, logged.String())
	}
	s, err := f.opened(t).State(ctx, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	live := s.Live()
	if len(live) != 1 || live[0].SetName != "etc" || live[0].Stats.Files != 1 || live[0].Time.Before(before) {
		t.Fatalf("points after the backup: %+v", live)
	}
	if last, err := m.LastBackup(ctx, "etc"); err != nil || !last.Equal(live[0].Time) {
		t.Errorf("LastBackup(etc) = %v, %v; want %v", last, err, live[0].Time)
	}
	if out := logged.String(); !strings.Contains(out, "backup committed") || !strings.Contains(out, "set=etc") || !strings.Contains(out, live[0].ID.Short()) {
		t.Errorf("log: %s", out)
	}
	// A job whose paths are gone fails, and commits nothing.
	if err := m.Backup(ctx, policy.SetPolicy{Paths: []string{filepath.Join(src, "gone")}}); err == nil {
		t.Error("a backup of a path that does not exist succeeded")
	}
}

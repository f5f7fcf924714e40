package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert/certtest"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage/mem"
)

const pass keys.Passphrase = "web01's passphrase, long enough"

// openedMachine is machine web01 of a vault in memory as open.Machine
// returns it on web01's host, whose config and cache directories are in
// src (which the tests back up).
func openedMachine(t *testing.T, src string) (*open.Opened, *keys.OwnerKeys) {
	t.Helper()
	t.Setenv("AZFS_CONFIG_DIR", filepath.Join(src, "config"))
	t.Setenv("AZFS_CACHE_DIR", filepath.Join(src, "cache"))
	ctx := context.Background()
	root, owner, err := repo.CreateVault(ctx, mem.New(), pass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	v, err := root.RegisterMachine(ctx, "web01", pass, cheapKDF, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Load(filepath.Join(src, "config"))
	if err != nil {
		t.Fatal(err)
	}
	entry := &keyring.Vault{ID: root.ID, Location: "mem", Machine: "web01", Keys: v.Keys(), Owner: owner}
	ring.Add(entry, true)
	if err := ring.Save(); err != nil {
		t.Fatal(err)
	}
	return &open.Opened{Root: root.Config, Storage: root.Storage, Location: "mem", Ring: ring, Entry: entry, Machine: "web01", Area: v}, owner
}

// TestBackup: a backup under the backup lock leaves azfs's own state out
// (the config directory with the keyring, the cache), records its point
// in this host's state; a second backup meanwhile is refused, naming the
// first; a new certificate moves the machine to it and says so.
func TestBackup(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	o, owner := openedMachine(t, src)
	if err := os.WriteFile(filepath.Join(src, "data.txt"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock, err := LockBackup(ctx, o, Holder{PID: os.Getpid(), What: "azfs backup"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockBackup(ctx, o, Holder{PID: 1, What: "scheduled backup (azfs agent)"}, false, nil); err == nil || !strings.Contains(err.Error(), "a backup of machine web01 is running: ") {
		t.Errorf("a second backup while one runs: %v", err)
	}
	var warned, told []string
	req := Request{
		Options: backup.Options{Paths: []string{src}},
		Warn:    func(msg string) { warned = append(warned, msg) },
		Tell:    func(msg string) { told = append(told, msg) },
	}
	p, err := Backup(ctx, o, req)
	lock.Unlock()
	if err != nil || p == nil || p.Machine != "web01" || p.Hostname == "" || warned != nil || told != nil {
		t.Fatalf("Backup: %v, %v, warned %q, told %q", p, err, warned, told)
	}
	if p.Stats.Files != 1 {
		t.Errorf("backed up %d files, want data.txt alone (azfs's config and cache left out)", p.Stats.Files)
	}
	dir, err := o.StateDir()
	if err != nil {
		t.Fatal(err)
	}
	if last, ok, err := dir.LoadLast(); err != nil || !ok || last.Point != p.ID.String() {
		t.Errorf("this host's record of the last point: %+v, %v, %v; want %s", last, ok, err, p.ID)
	}

	ec := certtest.Certificate(t, "ec.crt")
	if err := certs.Add(ctx, o.Storage, owner, ec); err != nil {
		t.Fatal(err)
	}
	if p, err = Backup(ctx, o, req); err != nil || p == nil {
		t.Fatalf("Backup to a new certificate: %v", err)
	}
	if len(told) != 1 || !strings.Contains(told[0], "backing up to the vault's certificate "+ec.Thumbprint()) || !o.Area.Keys().WriteOnly() {
		t.Errorf("told %q, write-only %v; want the move to the certificate", told, o.Area.Keys().WriteOnly())
	}
}

package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/prune"
)

// TestPrune: the owner prunes a machine's area, opened through its escrow,
// beside this host's backups of it: a backup holding the lock makes a
// prune that would delete at once refuse.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	o, owner := openedMachine(t, src)
	if err := os.WriteFile(filepath.Join(src, "data.txt"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, o, Request{Options: backup.Options{Paths: []string{src}}, Warn: func(msg string) { t.Errorf("warned %q", msg) }}); err != nil {
		t.Fatal(err)
	}
	root := *o
	root.Entry = nil // the owner's keys open web01's area through its escrow
	root.Machine, root.Area = "", nil
	opts := prune.Options{Owner: owner, Margin: prune.DefaultMargin, MaxUnused: 0.1, DryRun: true, Host: "test"}
	res, err := Prune(ctx, &root, open.Target{}, owner, "web01", opts, func(msg string) { t.Errorf("warned %q", msg) })
	if err != nil || res.Points != 1 || res.Blobs == 0 {
		t.Fatalf("dry run: %+v, %v; want one point's blobs", res, err)
	}
	lock, err := LockBackup(ctx, o, Holder{PID: os.Getpid(), What: "azfs backup"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	opts.DryRun, opts.Margin = false, 0
	if _, err := Prune(ctx, &root, open.Target{}, owner, "web01", opts, nil); !errors.Is(err, prune.ErrBackupRunning) {
		t.Errorf("beside a running backup: %v, want ErrBackupRunning", err)
	}
}

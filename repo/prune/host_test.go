package prune_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestRefusesBesideHostBackup: while a backup of the machine holds its
// lock on this host, prune refuses whatever its options, naming the
// backup, and changes nothing.
func TestRefusesBesideHostBackup(t *testing.T) {
	f := newFixture(t)
	p1 := f.commit(map[string][]byte{"a": testfiles.RandomBytes(64<<10, 1)})
	f.commit(map[string][]byte{"b": testfiles.RandomBytes(64<<10, 2)})
	dir := hoststate.StateDir(t.TempDir(), "vault", "m")
	bk, err := agent.TryLock(dir.BackupLock(), agent.Holder{PID: 4242, What: "azfs backup", Paths: []string{"/a"}})
	if err != nil {
		t.Fatal(err)
	}
	host := agent.HostBackups{Dir: dir, Prune: agent.Holder{PID: os.Getpid(), What: "azfs prune"}}
	before := f.names("")
	for _, opts := range []prune.Options{
		{Margin: 0, Purge: []keys.ID{p1.ID}},
		{Margin: margin, Purge: []keys.ID{p1.ID}},
		{Margin: 0, DryRun: true},
		{Margin: margin, DryRun: true},
	} {
		opts.Backups = host
		_, err := f.tryPrune(opts)
		if !errors.Is(err, prune.ErrBackupRunning) || !strings.Contains(err.Error(), "pid 4242 (azfs backup of /a, since ") {
			t.Errorf("prune %+v beside a backup: %v, want ErrBackupRunning naming pid 4242", opts, err)
		}
	}
	if after := f.names(""); !slices.Equal(before, after) {
		t.Errorf("refused prunes changed the storage:\nbefore %v\nafter  %v", before, after)
	}
	if h, held, err := agent.Probe(dir.BackupLock()); err != nil || !held || h.PID != 4242 {
		t.Errorf("the backup's lock after the refusals: %+v, held %v, %v", h, held, err)
	}
	if err := bk.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestHoldsHostBackupsWithShortMargin: a prune whose margin does not
// protect running backups holds the machine's backup lock on this host
// until it ends, so that a backup starting meanwhile refuses or waits; a
// prune with a margin that protects them lets them start.
func TestHoldsHostBackupsWithShortMargin(t *testing.T) {
	dir := hoststate.StateDir(t.TempDir(), "vault", "m")
	for _, c := range []struct {
		margin   int // in multiples of prune.MinMargin
		wantHeld bool
	}{{0, true}, {1, false}} {
		var during agent.Holder
		var held bool
		st := &onSave{Storage: mem.New(), prefix: prune.LockName, fn: func() {
			// What a backup starting while the prune runs finds.
			var err error
			during, held, err = agent.Probe(dir.BackupLock())
			if err != nil {
				t.Error(err)
			}
		}}
		f := newFixtureOn(t, st)
		p1 := f.commit(map[string][]byte{"a": testfiles.RandomBytes(64<<10, 1)})
		f.commit(map[string][]byte{"b": testfiles.RandomBytes(64<<10, 2)})
		host := agent.HostBackups{Dir: dir, Prune: agent.Holder{PID: os.Getpid(), What: "azfs prune --no-backups-running"}}
		f.prune(prune.Options{Margin: prune.MinMargin * time.Duration(c.margin), Purge: []keys.ID{p1.ID}, Backups: host})
		if held != c.wantHeld || held && (during.PID != os.Getpid() || during.What != "azfs prune --no-backups-running") {
			t.Errorf("margin %d×MinMargin: backup lock during the prune held %v by %+v, want held %v by this prune", c.margin, held, during, c.wantHeld)
		}
		if _, held, err := agent.Probe(dir.BackupLock()); err != nil || held {
			t.Errorf("margin %d×MinMargin: backup lock after the prune: held %v, %v", c.margin, held, err)
		}
	}
}

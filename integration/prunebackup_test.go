package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// TestPruneRefusesBesideBackup is finding 6 of issue 11: `azfs backup A B &`
// then `azfs prune --safety-margin 0 --no-backups-running` on the same host
// deleted the packs the running backup reused, and the backup then
// committed a point that needs them, all with exit 0. The backup's lock
// says it runs: prune refuses, whatever the flags, naming the backup.
//
// The backup is held mid-run, its index loaded and the reused chunks
// chosen, by a source file whose reads block until the test lets them go
// (a FUSE file system served by the test), so the order does not depend
// on timing.
func TestPruneRefusesBesideBackup(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	a := mkdir(t, filepath.Join(t.TempDir(), "a"))
	for i := range 3 {
		writeRandom(t, filepath.Join(a, fmt.Sprintf("f%d", i)), 2<<20, uint64(i))
	}
	first := e.backup(a)
	other := mkdir(t, filepath.Join(t.TempDir(), "other"))
	writeRandom(t, filepath.Join(other, "g"), 1<<20, 9)
	e.backup(other)
	// Forgotten and purged: no point needs a's packs any more, but the next
	// backup reuses their chunks (its index and file cache name them).
	if err := os.Remove(filepath.Join(e.area(), "points", first.Point)); err != nil {
		t.Fatal(err)
	}
	packs := vaultFiles(t, e.vault, "machines/"+testMachine+"/data/")

	g := mountGate(t, []byte("held until the test lets go"))
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	bk := e.command(ctx, azfsBin, "backup", "--json", a, g.dir)
	var stdout, stderr bytes.Buffer
	bk.Stdout, bk.Stderr = &stdout, &stderr
	if err := bk.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		g.release()
		if !waited {
			_ = bk.Wait()
		}
	}()
	select {
	case <-g.reached:
	case <-time.After(cmdTimeout):
		t.Fatalf("the backup never read the held file\nstderr:\n%s", stderr.String())
	}

	for _, args := range [][]string{
		{"prune", "--safety-margin", "0", "--no-backups-running"},
		{"prune", "--dry-run"},
		{"prune"},
	} {
		r := e.azfs(args...)
		checkOneLineError(t, r, "azfs: machine "+testMachine+": a backup of the machine is running on this host: pid "+fmt.Sprint(bk.Process.Pid)+" (azfs backup of ")
	}
	if after := vaultFiles(t, e.vault, "machines/"+testMachine+"/data/"); len(after) < len(packs) {
		t.Errorf("%d packs before the prunes, %d after: a refused prune deleted packs", len(packs), len(after))
	}

	g.release()
	err := bk.Wait()
	waited = true
	r := result{args: []string{"azfs", "backup"}, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		t.Fatalf("the held backup: %v\n%s", err, r)
	}
	parseBackup(t, r)
	e.mustAzfs("check", "--read-data")
	// Once the backup has ended, prune runs (and its point keeps a's packs).
	e.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	e.mustAzfs("check", "--read-data")
}

// gate is a FUSE file system served by the test with one file, "held",
// whose reads block until release.
type gate struct {
	dir     string
	reached chan struct{} // closed at the file's first read
	once    sync.Once
	open    chan struct{}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

type heldFile struct {
	gofs.MemRegularFile
	g       *gate
	reached sync.Once
}

func (f *heldFile) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.reached.Do(func() { close(f.g.reached) })
	select {
	case <-f.g.open:
	case <-ctx.Done():
		return nil, syscall.EINTR
	}
	return f.MemRegularFile.Read(ctx, fh, dest, off)
}

// mountGate mounts a gate holding data; it is released and unmounted when
// the test ends.
func mountGate(t *testing.T, data []byte) *gate {
	t.Helper()
	g := &gate{dir: mkdir(t, filepath.Join(t.TempDir(), "held")), reached: make(chan struct{}), open: make(chan struct{})}
	file := &heldFile{g: g, MemRegularFile: gofs.MemRegularFile{Data: data, Attr: fuse.Attr{Mode: 0o644}}}
	root := &gofs.Inode{}
	srv, err := gofs.Mount(g.dir, root, &gofs.Options{OnAdd: func(ctx context.Context) {
		root.AddChild("held", root.NewPersistentInode(ctx, file, gofs.StableAttr{Mode: syscall.S_IFREG}), false)
	}})
	if err != nil {
		t.Fatalf("mount the held source: %v", err)
	}
	t.Cleanup(func() {
		g.release()
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount the held source: %v", err)
		}
	})
	return g
}

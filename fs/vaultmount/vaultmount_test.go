package vaultmount

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	azfs "github.com/azfs/azfs/fs"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage/local"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// vaultWithPoint makes a vault in a directory whose machine web01 is this
// host's (its keyring in a temporary config directory), with one point of
// a file holding content; it returns the vault's directory and the area.
func vaultWithPoint(t *testing.T, content string) (string, *repo.Area) {
	t.Helper()
	t.Setenv("AZFS_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AZFS_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vault")
	st, err := local.Create(dir)
	testfiles.Must(t, err)
	const pass keys.Passphrase = "web01's passphrase, long enough"
	root, owner, err := repo.CreateVault(ctx, st, pass, cheapKDF)
	testfiles.Must(t, err)
	v, err := root.RegisterMachine(ctx, "web01", pass, cheapKDF, nil)
	testfiles.Must(t, err)
	configDir, err := keyring.ConfigDir()
	testfiles.Must(t, err)
	ring, err := keyring.Load(configDir)
	testfiles.Must(t, err)
	ring.Add(&keyring.Vault{ID: root.ID, Location: dir, Machine: "web01", Keys: v.Keys(), Owner: owner}, true)
	testfiles.Must(t, ring.Save())
	src := t.TempDir()
	testfiles.WriteFile(t, filepath.Join(src, "a.txt"), []byte(content))
	_, err = backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "web01", Tags: []string{"daily"}})
	testfiles.Must(t, err)
	return src, v
}

// TestMount: one point (by selector) or every point is served through a
// real FUSE mount, read through a disk cache under the azfs cache
// directory; a tag filter serves only its points; a tag or a selector
// naming no point mounts nothing.
func TestMount(t *testing.T) {
	testfiles.RequireFUSE(t)
	ctx := context.Background()
	src, v := vaultWithPoint(t, "mounted content")
	opts := Options{Target: open.Target{}, Point: "latest", DiskBytes: 1 << 20, FS: azfs.Options{CacheBytes: 32 << 20}}
	mnt := t.TempDir()
	m, err := Mount(ctx, mnt, opts)
	if err != nil {
		t.Fatal(err)
	}
	go m.Wait()
	b, err := os.ReadFile(filepath.Join(mnt, src, "a.txt"))
	uerr := m.Unmount()
	m.Close()
	if err != nil || string(b) != "mounted content" || uerr != nil {
		t.Fatalf("read through the mount: %q, %v; unmount: %v", b, err, uerr)
	}
	cacheDir, err := keyring.CacheDir()
	testfiles.Must(t, err)
	if _, err := os.Stat(filepath.Join(cacheDir, v.ID(), "blobs-web01")); err != nil {
		t.Errorf("the disk cache: %v", err)
	}

	opts.Point = ""
	opts.Tags, err = repo.ParseTagFilter([]string{"daily"})
	testfiles.Must(t, err)
	if m, err = Mount(ctx, mnt, opts); err != nil {
		t.Fatal(err)
	}
	go m.Wait()
	_, err = os.Stat(filepath.Join(mnt, "web01", "latest", src, "a.txt"))
	testfiles.Must(t, m.Unmount())
	m.Close()
	if err != nil || len(m.Points) != 1 {
		t.Errorf("every point with tag daily: %d served, %v", len(m.Points), err)
	}
	opts.Tags, err = repo.ParseTagFilter([]string{"weekly"})
	testfiles.Must(t, err)
	if _, err := Mount(ctx, mnt, opts); err == nil {
		t.Error("a tag no point has mounted")
	}

	opts.Tags, opts.Point = repo.TagFilter{}, time.Unix(1, 0).Format("2006-01-02")
	if _, err := Mount(ctx, mnt, opts); err == nil {
		t.Error("a selector naming no point mounted")
	}
}

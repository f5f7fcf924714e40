package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOwnStateNotBackedUp (finding 9): azfs left its vault, config and
// cache out only when it met them below a named path, so `azfs backup
// ~/.config/azfs` stored the keyring and `azfs backup VAULT` backed the
// vault up into itself. Now naming them (or a path inside them, however
// reached) is refused with one line, and below a named path they stay out
// however the walk meets them: a bind mount of the config dir, another
// hard link of the keyring.
func TestOwnStateNotBackedUp(t *testing.T) {
	requireFUSE(t)
	requireRoot(t) // the bind mount
	e := newEnv(t)
	e.createVault()
	keyringFile := filepath.Join(e.cfgDir, "keyring.json")
	keyringData, err := os.ReadFile(keyringFile)
	if err != nil {
		t.Fatal(err)
	}
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeFile(t, filepath.Join(src, "data"), []byte("ordinary"), 0o644)
	if err := os.Symlink(e.vault, filepath.Join(src, "vault-link")); err != nil {
		t.Fatal(err)
	}

	for _, named := range []string{
		e.cfgDir,
		keyringFile,
		e.vault,
		filepath.Join(e.vault, "machines"),
		e.cacheDir,
		filepath.Join(src, "vault-link", "machines"), // inside the vault through a symlink
	} {
		r := e.azfs("backup", named)
		checkOneLineError(t, r, fmt.Sprintf("azfs: cannot back up %q: it is or lies inside", named))
		if r.code != 1 {
			t.Errorf("backup %s: exit %d, want 1", named, r.code)
		}
	}
	if n := len(e.points()); n != 0 {
		t.Fatalf("%d points committed by refused backups", n)
	}

	// Below a named path: the env's own dirs, a bind mount of the config
	// dir and a second hard link of the keyring are left out.
	bound := mkdir(t, filepath.Join(src, "bound"))
	if err := unix.Mount(e.cfgDir, bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bound, unix.MNT_DETACH) })
	if err := os.Link(keyringFile, filepath.Join(src, "keyring-copy")); err != nil {
		t.Fatal(err)
	}
	e.backup(e.dir)

	mnt := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
	e.mount(mnt, "--point", "latest")
	names := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join(mnt, dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range entries {
			out = append(out, d.Name())
		}
		return out
	}
	for _, own := range []string{"config", "cache", "vault"} {
		if slices.Contains(names(e.dir), own) {
			t.Errorf("the point holds %s/%s: azfs's own state", e.dir, own)
		}
	}
	if got, want := names(src), []string{"data", "vault-link"}; !slices.Equal(got, want) {
		t.Errorf("the point's %s holds %q, want %q (no bind-mounted config dir, no keyring hard link)", src, got, want)
	}
	// No file of the point holds the keyring.
	err = filepath.WalkDir(filepath.Join(mnt, e.dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Equal(b, keyringData) {
			t.Errorf("%s in the point is the keyring", strings.TrimPrefix(path, mnt))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

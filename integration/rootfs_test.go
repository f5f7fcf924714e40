package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRootFileSystem (issue 13, item 4): `azfs backup /` of this
// machine, with -x and without, finishes with exit 0 and no "skipped"
// line, and the point holds no /proc or /sys contents (their mount points
// are empty directories; with -x /dev too), nor the vault, cache or config
// of the azfs that made it, nor the contents of azmount's mount of that
// vault. To stay bounded under `make test`, the big trees of this build
// machine are left out with --exclude (/usr, /root, /work, /opt, /tmp,
// /var/lib/docker and the benchmarks' corpus and vaults in
// /var/tmp/azfs-bench), and so is the sandbox's own mount (/mnt/sandboxing);
// the env lives in /var/tmp, on the root file system, so the walk meets
// its state.
func TestBackupRootFileSystem(t *testing.T) {
	requireFUSE(t)
	requireRoot(t) // reading all of /etc and /var
	t.Setenv("TMPDIR", "/var/tmp")
	e := newEnv(t)
	e.createVault()
	writeFile(t, filepath.Join(e.dir, "marker"), []byte("on the root file system"), 0o644)
	e.backup(filepath.Join(e.dir, "marker"))
	inside := mkdir(t, filepath.Join(e.dir, "azmount"))
	e.mount(inside, "--point", "latest")

	backupRoot := func(flags ...string) string {
		t.Helper()
		args := append([]string{"backup", "--json"}, flags...)
		for _, big := range []string{"/usr", "/root", "/work", "/opt", "/tmp", "/var/lib/docker", "/var/tmp/azfs-bench", "/mnt/sandboxing"} {
			args = append(args, "--exclude", big)
		}
		r := e.azfs(append(args, "/")...)
		if r.code != 0 || strings.Contains(r.stderr, "skipped") {
			t.Fatalf("backup %q /: want exit 0 and nothing skipped, got:\n%s", flags, r)
		}
		mnt := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
		e.mount(mnt, "--point", parseBackup(t, r).Point[:12])
		return mnt
	}

	// Without -x, only the pseudo file systems and azmount's mount are
	// not entered: /dev (devtmpfs) is.
	mnt := backupRoot()
	for _, empty := range []string{"/proc", "/sys", "/dev/pts", inside} {
		names, err := readDirNames(filepath.Join(mnt, empty))
		if err != nil || len(names) != 0 {
			t.Errorf("default: %s in the point: %q, %v; want an empty directory (a mount point not entered)", empty, names, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(mnt, "/dev/null")); err != nil {
		t.Errorf("default: /dev/null in the point: %v", err)
	}
	for _, absent := range []string{e.vault, e.cfgDir, e.cacheDir} {
		if _, err := os.Lstat(filepath.Join(mnt, absent)); !os.IsNotExist(err) {
			t.Errorf("default: %s in the point: %v; want it left out", absent, err)
		}
	}

	mnt = backupRoot("-x")
	for _, empty := range []string{"/proc", "/sys", "/dev", inside} {
		names, err := readDirNames(filepath.Join(mnt, empty))
		if err != nil || len(names) != 0 {
			t.Errorf("%s in the point: %q, %v; want an empty directory (a mount point not entered)", empty, names, err)
		}
	}
	for _, absent := range []string{e.vault, e.cfgDir, e.cacheDir, "/usr", "/tmp"} {
		if _, err := os.Lstat(filepath.Join(mnt, absent)); !os.IsNotExist(err) {
			t.Errorf("%s in the point: %v; want it left out", absent, err)
		}
	}
	for _, kept := range []string{"/etc/passwd", filepath.Join(e.dir, "marker")} {
		want, err := os.ReadFile(kept)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(mnt, kept)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the point: %v; want it as on disk", kept, err)
		}
	}
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSizeFlagsRefused is finding 11 of issue 11: azmount took NaN,
// infinities and sizes that overflow to negative numbers as cache sizes.
// Each is refused before anything is opened, with one line naming the flag
// and the value.
func TestSizeFlagsRefused(t *testing.T) {
	e := newEnv(t)
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	for _, tc := range []struct{ flag, value string }{
		{"cache-size", "NaN"},
		{"cache-size", "Inf"},
		{"cache-size", "999999999TiB"},
		{"cache-size", "-1MiB"},
		{"disk-cache", "NaN"},
		{"disk-cache", "99999999999999999999"},
	} {
		r := e.run(azmountBin, "--"+tc.flag, tc.value, mnt)
		want := "azmount: --" + tc.flag + " " + strconv.Quote(tc.value) + ": "
		checkOneLineError(t, r, want)
		if r.code != 2 {
			t.Errorf("--%s %s: exit %d, want 2 (usage)", tc.flag, tc.value, r.code)
		}
		if strings.Contains(r.stderr, "vault") {
			t.Errorf("--%s %s: azmount went on to open a vault:\n%s", tc.flag, tc.value, r)
		}
	}
}

// withoutDACOverride returns the arguments that run bin with args through
// setpriv as root without the capabilities that read any file, so that a
// file of mode 000 fails to open as it would for any other user.
func withoutDACOverride(t *testing.T, bin string, args ...string) (string, []string) {
	t.Helper()
	requireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		unavailable(t, "setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE: "+err.Error())
	}
	return setpriv, append([]string{"--bounding-set", "-dac_override,-dac_read_search", "--", bin}, args...)
}

// TestOutputQuotedAndPlain is finding 11 of issue 11: a file name with a
// newline forged a line of the backup's output, and "\r\033[K" reached a
// stderr that is not a terminal. A file that cannot be read, named to
// forge a line, is reported on one line with its name quoted; stderr, a
// file here, holds no carriage return or escape; and 'azfs points' quotes
// the backed-up path that holds a space.
func TestOutputQuotedAndPlain(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "my src"))
	writeFile(t, filepath.Join(src, "fine.txt"), []byte("readable\n"), 0o644)
	evil := filepath.Join(src, "evil\nazfs: backup complete")
	writeFile(t, evil, []byte("secret\n"), 0o000)

	bin, args := withoutDACOverride(t, azfsBin, "backup", src)
	errFile, err := os.Create(filepath.Join(e.dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, bin, args...)
	cmd.Stderr = errFile
	runErr := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(runErr, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("backup of a tree with an unreadable file: %v, want exit 3", runErr)
	}
	b, err := os.ReadFile(errFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	stderr := string(b)
	if strings.ContainsAny(stderr, "\r\033") {
		t.Errorf("stderr, a file, holds a carriage return or an escape:\n%q", stderr)
	}
	want := "azfs: skipped " + strconv.Quote(evil) + ": open: permission denied"
	lines := strings.Split(stderr, "\n")
	if !slices.Contains(lines, want) {
		t.Errorf("want the line %s on stderr, got:\n%s", want, stderr)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "azfs: backup complete") {
			t.Errorf("a file name forged the line %q:\n%s", l, stderr)
		}
	}

	r := e.mustAzfs("points")
	if !strings.Contains(r.stdout, strconv.Quote(src)+" (partial)") {
		t.Errorf("want 'azfs points' to list the path %s quoted, got:\n%s", src, r.stdout)
	}
}

// TestKeyringPermissionsWarned is finding 11 of issue 11: a keyring that
// other users could read, in a directory they could list, gave no warning.
// A command warns once for each, naming the path and the chmod to run, and
// goes on.
func TestKeyringPermissionsWarned(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	ring := filepath.Join(e.cfgDir, "keyring.json")
	for path, mode := range map[string]os.FileMode{ring: 0o644, e.cfgDir: 0o755} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	r := e.mustAzfs("points")
	want := []string{
		"warning: keyring directory " + strconv.Quote(e.cfgDir) + " has mode 0755: other users may read or replace this machine's vault keys; run: chmod 700 " + strconv.Quote(e.cfgDir),
		"warning: keyring " + strconv.Quote(ring) + " has mode 0644: other users may read or replace this machine's vault keys; run: chmod 600 " + strconv.Quote(ring),
	}
	if got := r.stderrLines(); !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for path, mode := range map[string]os.FileMode{ring: 0o600, e.cfgDir: 0o700} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.mustAzfs("points"); r.stderr != "" {
		t.Errorf("after the chmods, stderr is not empty:\n%s", r)
	}
}

// TestRestoreCredentialsWriteNothing is finding 11 of issue 11: restore
// credentials and a machine's passphrase applied that machine's retention,
// writing a tombstone that forgot points. Now a command opened with restore
// credentials refuses every write before the storage sees it, and reads as
// before.
func TestRestoreCredentialsWriteNothing(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	src := mkdir(t, filepath.Join(owner.dir, "src"))
	owner.backupVersions(src, "f", 1)
	pin := strings.TrimSpace(owner.mustAzfs("vault", "pin").stdout)
	owner.mustAzfs(append(keepOnlyLast(1), "--pin", pin)...)
	owner.backupVersions(src, "f", 2) // the policy forgets two at its next application
	restore := mcCredentials(t, owner, "restore.azcreds", "--access", "restore")

	rescue := newEnv(t)
	args := []string{"--vault-credentials", restore, "--machine", testMachine, "--passphrase-file", owner.passFile}
	if r := rescue.azfs(append([]string{"policy", "apply", "--dry-run"}, args...)...); r.code != 0 || !strings.Contains(r.stderr, "would forget 2 of 3") {
		t.Fatalf("dry run from restore credentials: want it to read the points and plan to forget two:\n%s", r)
	}
	r := rescue.azfs(append([]string{"policy", "apply"}, args...)...)
	checkOneLineError(t, r, "azfs: ")
	if !strings.Contains(r.stderr, "restore credentials allow no writes") {
		t.Errorf("want the refusal to say restore credentials allow no writes:\n%s", r)
	}
	if got := vaultFiles(t, owner.vault, "machines/"+testMachine+"/tombstones/"); len(got) != 0 {
		t.Errorf("restore credentials wrote tombstones: %v", got)
	}
	if rows := owner.points(); len(rows) != 3 {
		t.Errorf("after the refused apply the owner sees %d live points, want 3", len(rows))
	}
}

// TestVaultSymlinksNotFollowed is finding 11 of issue 11: azfs followed
// symbolic links to directories inside a local vault, so that whoever could
// write the vault directory made a backup (often run as root) write its
// packs anywhere. With every data/<xx> directory of the machine's area a
// link to a directory outside, the backup fails, says which link it met,
// and writes nothing outside.
func TestVaultSymlinksNotFollowed(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeRandom(t, filepath.Join(src, "file"), 1<<20, 1)
	outside := mkdir(t, filepath.Join(e.dir, "outside"))
	data := filepath.Join(e.area(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		link := filepath.Join(data, fmt.Sprintf("%02x", i))
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, link); err != nil {
			t.Fatal(err)
		}
	}
	r := e.azfs("backup", src)
	checkOneLineError(t, r, "azfs: ")
	if !strings.Contains(r.stderr, "is a symbolic link to "+strconv.Quote(outside)) {
		t.Errorf("want the error to name the link and its target %s:\n%s", outside, r)
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("the backup wrote outside the vault: %v, %v", entries, err)
	}
}

// TestRemountAfterKill is finding 11 of issue 11: after azmount was killed,
// mounting on the same directory again said only "transport endpoint is
// not connected". azmount now tells a stale mount of its own apart: while
// a file of it is still open (the mount is busy) it says what happened and
// how to unmount; once it is not, it unmounts it itself and mounts.
func TestRemountAfterKill(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeFile(t, filepath.Join(src, "file.txt"), []byte("content\n"), 0o644)
	e.backup(src)
	dir := mkdir(t, filepath.Join(e.dir, "mnt"))
	t.Cleanup(func() {
		if isMounted(t, dir) {
			if out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); err != nil {
				t.Errorf("fusermount3 -u -z %s: %v\n%s", dir, err, out)
			}
		}
	})

	// The first azmount, killed while a file of its mount is open.
	first := e.command(nil, azmountBin, "--point", "latest", dir)
	var stderr syncBuffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(mountTimeout)
	for !(strings.Contains(stderr.String(), "mounted read-only at") && isMounted(t, dir)) {
		if time.Now().After(deadline) {
			_ = first.Process.Kill() // our own child, by its PID
			t.Fatalf("azmount not ready; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	open, err := os.Open(filepath.Join(dir, src, "file.txt"))
	if err != nil {
		t.Fatal(err)
	}
	_ = first.Process.Kill() // our own child, by its PID
	_ = first.Wait()
	if _, err := os.ReadDir(dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL, listing the mountpoint: %v, want ENOTCONN", err)
	}

	r := e.run(azmountBin, "--point", "latest", dir)
	checkOneLineError(t, r, "azmount: ")
	q := strconv.Quote(dir)
	for _, want := range []string{"a previous azmount at " + q + " was killed and left its mount behind", "run `fusermount3 -u " + q + "` (or `umount " + q + "` as root)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("want the error to say %q:\n%s", want, r)
		}
	}

	open.Close()
	m := e.mount(dir, "--point", "latest")
	if !strings.Contains(m.stderr.String(), "a previous azmount was killed and left its mount behind: unmounted it") {
		t.Errorf("want azmount to say it unmounted the stale mount; stderr:\n%s", m.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, src, "file.txt")); err != nil || string(b) != "content\n" {
		t.Errorf("read from the new mount: %q, %v", b, err)
	}
}

package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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

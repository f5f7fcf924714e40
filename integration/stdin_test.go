package integration

// Backing up a stream (issue 13, item 1): 'azfs backup --stdin' and
// '--stdin-from-command', whose failure commits no point.

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// checkMountedStream mounts the latest point and checks that it holds
// only the file name, with want as its content, mode 0600 and the running
// user as owner.
func checkMountedStream(t *testing.T, e *env, name string, want []byte) {
	t.Helper()
	requireFUSE(t)
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		t.Fatalf("the mounted point holds %v, want only %q", entries, name)
	}
	path := filepath.Join(m.dir, name)
	got, err := readMountFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes (sha %s), want the stream's %d (sha %s)", name, len(got), shaOf(got)[:12], len(want), shaOf(want)[:12])
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o600 || st.Uid != uint32(os.Getuid()) || st.Gid != uint32(os.Getgid()) {
		t.Errorf("%s: mode %o, owner %d:%d; want 0600 and the running user %d:%d", name, st.Mode&0o7777, st.Uid, st.Gid, os.Getuid(), os.Getgid())
	}
}

// TestBackupStdinFromCommand: a command that fails (non-zero exit, or
// killed by a signal) after writing output fails the backup with one line
// naming the command and its status, and commits no point; one that
// succeeds is a point holding its output, as the mount shows it, under
// the name --stdin-filename gives (default: the command's base name).
func TestBackupStdinFromCommand(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	dump := filepath.Join(e.dir, "dump.bin")
	want := randomBytes(3<<20+17, 13)
	writeFile(t, dump, want, 0o600)

	for _, tc := range []struct {
		script, status string
	}{
		{"cat " + dump + "; exit 3", `"sh" exited with status 3`},
		{"cat " + dump + "; kill -KILL $$", `"sh" was killed by signal SIGKILL`},
	} {
		r := e.azfs("backup", "--stdin-from-command", "--stdin-filename", "db.sql", "--", "sh", "-c", tc.script)
		mcRefused(t, r, tc.status, "no point committed")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
	}
	if rows := e.setRows(); len(rows) != 0 {
		t.Fatalf("failed commands committed points: %+v", rows)
	}

	r := e.mustAzfs("backup", "--stdin-from-command", "--stdin-filename", "db.sql", "--", "sh", "-c", "cat "+dump+"; echo dumped >&2")
	if !strings.Contains(r.stderr, "dumped\n") {
		t.Errorf("the command's stderr did not pass through:\n%s", r)
	}
	rows := e.setRows()
	if len(rows) != 1 || !slices.Equal(rows[0].Paths, []string{"/db.sql"}) || rows[0].Set != "db.sql" || rows[0].Files != 1 || rows[0].Bytes != uint64(len(want)) {
		t.Fatalf("points: %+v; want one point of /db.sql in set db.sql, one file of %d bytes", rows, len(want))
	}
	checkMountedStream(t, e, "db.sql", want)

	e.mustAzfs("backup", "--stdin-from-command", "--", "cat", dump)
	checkMountedStream(t, e, "cat", want)

	mcRefused(t, e.azfs("backup", "--stdin-from-command", "--", "azfs-no-such-command"), "azfs-no-such-command")
	mcRefused(t, e.azfs("backup", "--stdin-from-command"), "command")
	mcRefused(t, e.azfs("backup", "--stdin-from-command", "--stdin", "--", "true"), "--stdin")
	if n := len(e.setRows()); n != 2 {
		t.Errorf("%d points, want the 2 successful commands'", n)
	}
}

// TestBackupStdin: piped data becomes a point holding one file named by
// --stdin-filename (default "stdin"), in the set of that name.
func TestBackupStdin(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	want := randomBytes(2<<20+5, 21)
	r := e.runInput(bytes.NewReader(want), azfsBin, "backup", "--json", "--stdin", "--stdin-filename", "db.sql")
	if r.code != 0 {
		t.Fatalf("backup --stdin: want exit 0, got:\n%s", r)
	}
	out := parseBackup(t, r)
	if out.Stats.Files != 1 || out.Stats.Bytes != uint64(len(want)) {
		t.Errorf("backup --stdin stats %+v, want one file of %d bytes", out.Stats, len(want))
	}
	rows := e.setRows("--set", "db.sql")
	if len(rows) != 1 || rows[0].ID != out.Point || !slices.Equal(rows[0].Paths, []string{"/db.sql"}) {
		t.Fatalf("points --set db.sql: %+v, want the stdin point of /db.sql", rows)
	}
	checkMountedStream(t, e, "db.sql", want)

	if r := e.runInput(strings.NewReader("plain\n"), azfsBin, "backup", "--stdin"); r.code != 0 {
		t.Fatalf("backup --stdin without a name: %s", r)
	}
	checkMountedStream(t, e, "stdin", []byte("plain\n"))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stdin", "--stdin-filename", "a/b"}, "a/b"},
		{[]string{"--stdin", "--stdin-filename", "my dump.sql"}, "set"},
		{[]string{"--stdin", e.dir}, "--stdin"},
		{[]string{"--stdin-filename", "x", e.dir}, "--stdin-filename"},
	} {
		r := e.runInput(strings.NewReader("x"), azfsBin, append([]string{"backup"}, tc.args...)...)
		mcRefused(t, r, tc.want)
	}
	if r := e.runInput(strings.NewReader("x"), azfsBin, "backup", "--stdin", "--stdin-filename", "my dump.sql", "--set", "dump"); r.code != 0 {
		t.Fatalf("backup --stdin of \"my dump.sql\" in set dump: %s", r)
	}
	if rows := e.setRows("--set", "dump"); len(rows) != 1 || rows[0].Paths[0] != "/my dump.sql" {
		t.Errorf("a stdin point named \"my dump.sql\" in set dump: %+v", rows)
	}
}

// TestBackupStdinMemory: a stream is chunked as it arrives, never held
// whole: 1 GiB piped in (zeros, so that storing it costs little) leaves
// the backup's peak RSS far below its size.
func TestBackupStdinMemory(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	const size = 1 << 30
	r := e.mustAzfs("backup", "--json", "--stdin-from-command", "--stdin-filename", "zeros", "--", "head", "-c", "1073741824", "/dev/zero")
	out := parseBackup(t, r)
	t.Logf("1 GiB stream: peak RSS %d MiB, stored %d bytes", out.PeakRSS>>20, out.Stats.BytesStored)
	if out.Stats.Bytes != size || out.Stats.BytesRead != size {
		t.Errorf("stats %+v, want %d bytes read", out.Stats, size)
	}
	if out.PeakRSS == 0 || out.PeakRSS > 256<<20 {
		t.Errorf("peak RSS %d MiB for a 1 GiB stream: want it bounded (under 256 MiB)", out.PeakRSS>>20)
	}
}

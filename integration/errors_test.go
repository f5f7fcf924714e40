package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestErrors runs commands that must fail: each exits non-zero with exactly
// one line on stderr that says what is wrong, and no failed azmount leaves a
// mount behind.
func TestErrors(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t) // has the vault, as its default, with one point
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "file.txt"), []byte("content\n"), 0o644)
	e.backup(src)

	stranger := newEnv(t) // a machine that knows no vault
	wrongPass := filepath.Join(stranger.dir, "wrong-passphrase")
	writeFile(t, wrongPass, []byte("this is not the passphrase\n"), 0o600)
	shortPass := filepath.Join(stranger.dir, "short-passphrase")
	writeFile(t, shortPass, []byte("too short\n"), 0o600)
	missing := filepath.Join(stranger.dir, "no-such-dir")
	notVault := mkdir(t, filepath.Join(stranger.dir, "not-a-vault"))
	writeFile(t, filepath.Join(notVault, "something"), []byte("x"), 0o644)
	aFile := filepath.Join(e.dir, "a-file")
	writeFile(t, aFile, []byte("x"), 0o644)
	notEmpty := mkdir(t, filepath.Join(e.dir, "not-empty"))
	writeFile(t, filepath.Join(notEmpty, "x"), []byte("x"), 0o644)
	busy := e.mount(mkdir(t, filepath.Join(e.dir, "busy")), "--point", "latest")
	mnt := func(name string) string { return mkdir(t, filepath.Join(t.TempDir(), name)) }

	tests := []struct {
		name       string
		env        *env
		bin        string
		args       []string
		want       string // the error line contains this
		mountpoint string // azmount's mountpoint, which must not end up mounted
	}{
		{"short passphrase at create", stranger, azfsBin,
			[]string{"vault", "create", filepath.Join(stranger.dir, "new-vault"), "--passphrase-file", shortPass}, "16", ""},
		{"points: wrong passphrase", stranger, azfsBin,
			[]string{"points", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", wrongPass}, "wrong passphrase", ""},
		{"points: missing vault dir", stranger, azfsBin,
			[]string{"points", "--vault", missing}, "does not exist", ""},
		{"points: not a vault", stranger, azfsBin,
			[]string{"points", "--vault", notVault}, "no vault", ""},
		{"backup: no vault on this machine", stranger, azfsBin,
			[]string{"backup", src}, "vault", ""},
		{"check: no vault on this machine", stranger, azfsBin,
			[]string{"check"}, "vault", ""},
		{"mount: wrong passphrase", stranger, azmountBin,
			[]string{"--vault", e.vault, "--machine", testMachine, "--passphrase-file", wrongPass}, "wrong passphrase", mnt("wrong-pass")},
		{"mount: missing vault dir", stranger, azmountBin,
			[]string{"--vault", missing}, "does not exist", mnt("missing-vault")},
		{"mount: not a vault", stranger, azmountBin,
			[]string{"--vault", notVault}, "no vault", mnt("not-vault")},
		{"mount: unknown point", e, azmountBin,
			[]string{"--point", "not-a-point"}, "no such recovery point", mnt("unknown-point")},
		{"mount: date without points", e, azmountBin,
			[]string{"--point", "1999-12-31"}, "nearest", mnt("old-date")},
		{"mount: mountpoint missing", e, azmountBin,
			[]string{"--point", "latest"}, "does not exist", filepath.Join(e.dir, "no-mountpoint")},
		{"mount: mountpoint is a file", e, azmountBin,
			[]string{"--point", "latest"}, "not a directory", aFile},
		{"mount: mountpoint not empty", e, azmountBin,
			[]string{"--point", "latest"}, "not empty", notEmpty},
		{"mount: already mounted", e, azmountBin,
			[]string{"--point", "latest"}, "busy", busy.dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.mountpoint != "" {
				args = append(args[:len(args):len(args)], tc.mountpoint)
			}
			tc.env.t = t
			defer func() { tc.env.t = nil }()
			r := tc.env.run(tc.bin, args...)
			checkOneLineError(t, r, filepath.Base(tc.bin)+": ")
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want the error to mention %q, got:\n%s", tc.want, r)
			}
			if tc.mountpoint != "" && tc.mountpoint != busy.dir && isMounted(t, tc.mountpoint) {
				t.Errorf("failed azmount left %s mounted", tc.mountpoint)
			}
		})
	}
	e.t, stranger.t = t, t

	if _, err := os.Stat(filepath.Join(stranger.dir, "new-vault", "config")); err == nil {
		t.Errorf("vault create with a short passphrase created a vault")
	}

	// The failed attempt on the busy mountpoint did not disturb its mount.
	if b, err := os.ReadFile(filepath.Join(busy.dir, src, "file.txt")); err != nil || string(b) != "content\n" {
		t.Errorf("existing mount after a second azmount on it: read %q, %v", b, err)
	}
	// Control: the right passphrase opens the vault on the other machine.
	good := stranger.mount(mnt("good-pass"), "--vault", e.vault, "--machine", testMachine, "--passphrase-file", e.passFile, "--point", "latest")
	if b, err := os.ReadFile(filepath.Join(good.dir, src, "file.txt")); err != nil || string(b) != "content\n" {
		t.Errorf("mount with the right passphrase: read %q, %v", b, err)
	}
}

// TestUnmountOnSignal checks that azmount unmounts and exits 0 on SIGTERM,
// and on SIGINT once a busy mount is released.
func TestUnmountOnSignal(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "file.txt"), []byte("content\n"), 0o644)
	e.backup(src)

	t.Run("SIGTERM", func(t *testing.T) {
		e.t = t
		m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
		code, err := m.stop(syscall.SIGTERM)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("azmount exited with %d on SIGTERM, want 0; stderr:\n%s", code, m.stderr)
		}
		if isMounted(t, m.dir) {
			t.Errorf("%s is still mounted after SIGTERM", m.dir)
		}
		if names, err := readDirNames(m.dir); err != nil || len(names) != 0 {
			t.Errorf("mountpoint after unmount: entries %q, err %v; want an empty, usable directory", names, err)
		}
	})

	t.Run("SIGINT while busy", func(t *testing.T) {
		e.t = t
		m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
		f, err := os.Open(filepath.Join(m.dir, src, "file.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := m.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if !m.waitStderr("unmount failed") {
			t.Fatalf("azmount did not report a failed unmount while a file is open; stderr:\n%s", m.stderr)
		}
		if m.exited() || !isMounted(t, m.dir) {
			t.Fatalf("azmount gave up the busy mount (exited %v, mounted %v); stderr:\n%s", m.exited(), isMounted(t, m.dir), m.stderr)
		}
		if _, err := f.Read(make([]byte, 1)); err != nil {
			t.Errorf("read from the busy mount while unmount is pending: %v", err)
		}
		f.Close()
		code, err := m.stop(os.Interrupt) // already signalled: just waits
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("azmount exited with %d once the mount was released, want 0; stderr:\n%s", code, m.stderr)
		}
		if isMounted(t, m.dir) {
			t.Errorf("%s is still mounted after azmount exited", m.dir)
		}
	})
}

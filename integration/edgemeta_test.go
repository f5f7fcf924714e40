package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tmpfsDir returns a fresh directory on a tmpfs (/dev/shm), removed when
// the test ends: tmpfs holds any time (ext4 clamps to 1901-2446, which
// cannot show the edges the tests need), and it is fast to rewrite big
// files on.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		unavailable(t, "no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "azfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestEdgeTimes: mtimes and atimes after 2262 (which int64 nanoseconds
// cannot hold: 2500 came back as 1861), before 1970, and with a fraction of
// a second come back exactly through a backup and a mount.
func TestEdgeTimes(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(tmpfsDir(t), "src")
	mkdir(t, filepath.Join(src, "dir-2500"))
	times := map[string]time.Time{
		"future-2500":   time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC),
		"past-1900":     time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		"epoch-half":    time.Date(1970, 1, 1, 0, 0, 0, 500_000_000, time.UTC),
		"before-epoch":  time.Date(1969, 12, 31, 23, 59, 59, 250_000_000, time.UTC),
		"dir-2500/late": time.Date(2446, 5, 10, 22, 38, 56, 1, time.UTC),
		"dir-2500":      time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	order := []string{"future-2500", "past-1900", "epoch-half", "before-epoch", "dir-2500/late", "dir-2500"}
	for _, name := range order {
		path := filepath.Join(src, name)
		if name != "dir-2500" {
			writeFile(t, path, []byte(name), 0o644)
		}
		ts := unix.NsecToTimespec(0)
		ts.Sec, ts.Nsec = times[name].Unix(), int64(times[name].Nanosecond())
		if err := unix.UtimesNano(path, []unix.Timespec{ts, ts}); err != nil {
			t.Fatalf("set times of %s: %v", name, err)
		}
	}
	e.backup(src)

	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	e.mount(mnt, "--point", "latest")
	for _, name := range order {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mnt, src, name), &st); err != nil {
			t.Fatalf("lstat in the mount: %v", err)
		}
		want := times[name]
		if got := time.Unix(st.Mtim.Unix()).UTC(); !got.Equal(want) {
			t.Errorf("%s: mtime in the mount %v, want %v", name, got, want)
		}
		if got := time.Unix(st.Atim.Unix()).UTC(); !got.Equal(want) {
			t.Errorf("%s: atime in the mount %v, want %v", name, got, want)
		}
	}
}

package integration

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/deeptree"
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

// walkAt describes every entry below root by its path relative to root
// (type, mode, size but a directory's, mtime; content, target, the
// deeptree xattr), reaching each by name
// in its open parent, so that any depth works.
func walkAt(t *testing.T, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(dirfd int, rel string)
	walk = func(dirfd int, rel string) {
		names, err := readDirNamesFD(dirfd)
		if err != nil {
			t.Fatalf("list %.60q...: %v", rel, err)
		}
		for _, n := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(dirfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatalf("stat %.60q...: %v", rel+"/"+n, err)
			}
			size := st.Size
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				size = 0 // a directory's size is its file system's business
			}
			desc := fmt.Sprintf("type %o mode %o size %d mtime %d.%09d", st.Mode&unix.S_IFMT, st.Mode&0o7777, size, st.Mtim.Sec, st.Mtim.Nsec)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				buf := make([]byte, 256)
				k, err := unix.Readlinkat(dirfd, n, buf)
				if err != nil {
					t.Fatal(err)
				}
				desc += " -> " + string(buf[:k])
			case unix.S_IFREG:
				fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatalf("open %.60q...: %v", rel+"/"+n, err)
				}
				f := os.NewFile(uintptr(fd), n)
				data, err := io.ReadAll(f)
				if err != nil {
					t.Fatalf("read %.60q...: %v", rel+"/"+n, err)
				}
				buf := make([]byte, 64)
				k, _ := unix.Fgetxattr(fd, deeptree.XattrName, buf)
				f.Close()
				desc += fmt.Sprintf(" content %q xattr %q", data, buf[:max(k, 0)])
			case unix.S_IFDIR:
				fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatalf("open %.60q...: %v", rel+"/"+n, err)
				}
				walk(fd, rel+"/"+n)
				unix.Close(fd)
			}
			out[rel+"/"+n] = desc
		}
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	walk(fd, ".")
	return out
}

// readDirNamesFD lists the directory open as fd (which it leaves open).
func readDirNamesFD(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// TestDeepTree (finding 10): entries whose paths are longer than PATH_MAX
// (4096 bytes) were dropped with their whole subtree, exit 3. A tree 30
// levels of 200-byte names deep backs up whole, and the mount serves it
// as it was.
func TestDeepTree(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	const levels = 30
	if _, err := deeptree.Build(src, levels); err != nil {
		t.Fatal(err)
	}
	want := walkAt(t, src)

	out := e.backup(src) // exit 0, no errors
	if out.Stats.Files != levels || out.Stats.Others != 1 {
		t.Errorf("backup stats %+v, want %d files and a symlink", out.Stats, levels)
	}
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	e.mount(mnt, "--point", "latest")
	got := walkAt(t, filepath.Join(mnt, src))
	if len(got) != len(want) {
		t.Errorf("the mount has %d entries below the source, want %d", len(got), len(want))
	}
	depth := 0
	for rel, w := range want {
		if g := got[rel]; g != w {
			t.Errorf("%.40q...%q (%d bytes):\n mount  %s\n source %s", rel, rel[max(len(rel)-40, 0):], len(rel), g, w)
		}
		depth = max(depth, len(rel))
	}
	if depth < unix.PathMax+1000 {
		t.Errorf("the deepest path is %d bytes, want well beyond PATH_MAX", depth)
	}
}

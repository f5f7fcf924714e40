package restore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/restore"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// backedUp is a source tree backed up into a vault in memory whose
// requests are counted.
type backedUp struct {
	src    string
	vault  *repo.Area
	point  *repo.Point
	counts *storage.Counts
}

// makeTree fills dir with what restore must bring back: content across
// several chunks, a sparse file, hard links, a symlink, a FIFO, a socket,
// xattrs, odd modes and times, a name that is not UTF-8, a device as root.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	testfiles.WriteFile(t, filepath.Join(dir, "empty"), nil)
	testfiles.WriteFile(t, filepath.Join(dir, "small"), []byte("hello, world\n"))
	testfiles.WriteFile(t, filepath.Join(dir, "big"), testfiles.RandomBytes(9<<20+12345, 1))
	testfiles.WriteFile(t, filepath.Join(dir, "sub", "hard1"), testfiles.RandomBytes(300<<10, 2))
	testfiles.WriteFile(t, filepath.Join(dir, "bad\xffname"), []byte("not UTF-8"))
	testfiles.WriteFile(t, filepath.Join(dir, "sub", "deep", "x.md"), []byte("# deep\n"))
	testfiles.Must(t, os.Link(filepath.Join(dir, "sub", "hard1"), filepath.Join(dir, "hard2")))
	f, err := os.Create(filepath.Join(dir, "sparse"))
	testfiles.Must(t, err)
	testfiles.Must(t, f.Truncate(64<<20))
	_, err = f.WriteAt(testfiles.RandomBytes(1<<20, 3), 32<<20)
	testfiles.Must(t, err)
	testfiles.Must(t, f.Close())
	testfiles.Must(t, os.Symlink("small", filepath.Join(dir, "link")))
	testfiles.Must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	testfiles.Must(t, err)
	testfiles.Must(t, unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")}))
	unix.Close(sock)
	if os.Geteuid() == 0 {
		testfiles.Must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o620, int(unix.Mkdev(1, 3))))
		testfiles.Must(t, os.Lchown(filepath.Join(dir, "small"), 1234, 5678))
	}
	testfiles.Must(t, os.Chmod(filepath.Join(dir, "small"), 0o4750))
	if err := unix.Setxattr(filepath.Join(dir, "small"), "user.azfs", []byte("value\x00\xff"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	ts := []unix.Timespec{{Sec: 1_000_000_000, Nsec: 123_456_789}, {Sec: -86_400, Nsec: 1}}
	testfiles.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, "sub"), ts, 0))
	testfiles.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, "link"), ts, unix.AT_SYMLINK_NOFOLLOW))
}

func backUp(t *testing.T, makeSrc func(t *testing.T, dir string)) *backedUp {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	testfiles.Must(t, os.Mkdir(src, 0o755))
	makeSrc(t, src)
	counts := new(storage.Counts)
	st := storage.Count(mem.New(), counts)
	v, err := repo.Create(ctx, st, "correct horse battery staple", cheapKDF)
	testfiles.Must(t, err)
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m", Hostname: "h", Workers: 2})
	testfiles.Must(t, err)
	v, err = repo.Open(ctx, st, v.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, v.LoadIndex(ctx))
	return &backedUp{src: src, vault: v, point: p, counts: counts}
}

// describe lists every entry below root with its type and mode, owner,
// mtime, size, content hash, data regions, link group, symlink target,
// device number and xattrs: the fields a restore must bring back exactly.
func describe(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		testfiles.Must(t, unix.Lstat(p, &st))
		d := fmt.Sprintf("%q mode %o owner %d:%d mtime %d.%09d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			testfiles.Must(t, err)
			d += fmt.Sprintf(" size %d sha %x %s", st.Size, sha256.Sum256(data), dataRegions(t, p))
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					d += " same inode as " + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			testfiles.Must(t, err)
			d += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			d += fmt.Sprintf(" rdev %d", st.Rdev)
		}
		if rel != "." {
			d += " xattrs " + xattrs(p)
		}
		out = append(out, d)
		return nil
	})
	testfiles.Must(t, err)
	return out
}

// dataRegions lists the data regions of the file at p (SEEK_DATA,
// SEEK_HOLE).
func dataRegions(t *testing.T, p string) string {
	f, err := os.Open(p)
	testfiles.Must(t, err)
	defer f.Close()
	var regions []string
	var off int64
	for {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		testfiles.Must(t, err)
		regions = append(regions, fmt.Sprintf("%d-%d", data, hole))
		off = hole
	}
	return "data[" + strings.Join(regions, ",") + "]"
}

func xattrs(p string) string {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		return "{}"
	}
	buf := make([]byte, size)
	size, _ = unix.Llistxattr(p, buf)
	names := strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00")
	sort.Strings(names)
	var out []string
	for _, n := range names {
		val := make([]byte, 256)
		k, _ := unix.Lgetxattr(p, n, val)
		out = append(out, fmt.Sprintf("%s=%q", n, val[:max(k, 0)]))
	}
	return "{" + strings.Join(out, ",") + "}"
}

// restoreAll restores the whole point of b into target and returns the
// result and how many storage loads it made.
func restoreAll(t *testing.T, b *backedUp, target string, opts restore.Options) (restore.Result, uint64) {
	t.Helper()
	return restorePath(t, b, "", target, opts)
}

// restorePath restores path p of b's point into target.
func restorePath(t *testing.T, b *backedUp, p, target string, opts restore.Options) (restore.Result, uint64) {
	t.Helper()
	before := b.counts.Tally().Loads
	res, err := restore.Run(context.Background(), b.vault, b.point.Root, p, target, opts)
	if err != nil {
		t.Fatalf("restore: %v (%+v)", err, res)
	}
	return res, b.counts.Tally().Loads - before
}

func TestRestoreRoundTrip(t *testing.T) {
	b := backUp(t, makeTree)
	target := filepath.Join(t.TempDir(), "target")
	res, _ := restoreAll(t, b, target, restore.Options{Verify: true, Workers: 3})
	want := describe(t, b.src)
	got := describe(t, filepath.Join(target, b.src))
	if d := diffLines(want[1:], got[1:]); d != "" {
		t.Errorf("restored tree differs from the source:\n%s", d)
	}
	if res.Errors != 0 || res.FilesVerified != res.Files-0 || res.Files == 0 {
		t.Errorf("result %+v: want no errors and every file verified", res)
	}
}

// diffLines shows the lines of want and got that the other lacks.
func diffLines(want, got []string) string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, "- "+w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			out = append(out, "+ "+g)
		}
	}
	return strings.Join(out, "\n")
}

// TestRestoreResumes damages a restored tree as an interrupted run leaves
// it (a file missing, one cut short, one with a wrong chunk, data in a
// hole, wrong metadata) and checks that a second run fixes all of it and
// fetches exactly the chunks that were not right: its loads beyond a run
// with nothing to do (which loads the tree parts only) are those chunks.
func TestRestoreResumes(t *testing.T) {
	b := backUp(t, makeTree)
	got := filepath.Join(t.TempDir(), "target") // the source's contents, right in it
	restorePath(t, b, b.src, got, restore.Options{})
	testfiles.Must(t, os.Remove(filepath.Join(got, "small")))
	testfiles.Must(t, os.Truncate(filepath.Join(got, "sub", "hard1"), 100<<10))
	f, err := os.OpenFile(filepath.Join(got, "big"), os.O_WRONLY, 0)
	testfiles.Must(t, err)
	_, err = f.WriteAt([]byte("changed"), 5<<20)
	testfiles.Must(t, err)
	testfiles.Must(t, f.Close())
	f, err = os.OpenFile(filepath.Join(got, "sparse"), os.O_WRONLY, 0)
	testfiles.Must(t, err)
	_, err = f.WriteAt([]byte("data in a hole"), 1<<20)
	testfiles.Must(t, err)
	testfiles.Must(t, f.Close())
	testfiles.Must(t, os.Chmod(filepath.Join(got, "sub", "deep", "x.md"), 0o600))
	testfiles.Must(t, os.Remove(filepath.Join(got, "link")))

	res, loads := restorePath(t, b, b.src, got, restore.Options{Verify: true})
	if d := diffLines(describe(t, b.src), describe(t, got)); d != "" {
		t.Errorf("resumed tree differs from the source:\n%s", d)
	}
	_, idle := restorePath(t, b, b.src, got, restore.Options{})
	// small, hard1 (hard2 is the same inode), the chunk of big.
	if res.ChunksFetched != 3 || loads-idle != 3 {
		t.Errorf("second run fetched %d chunks in %d loads beyond an idle run's %d, want 3 (%+v)", res.ChunksFetched, loads-idle, idle, res)
	}
}

// TestRestoreOverwrite: IfChanged trusts size and mtime, Never leaves
// every existing entry alone but restores what is missing, Always
// compares content.
func TestRestoreOverwrite(t *testing.T) {
	b := backUp(t, makeTree)
	target := filepath.Join(t.TempDir(), "target")
	restoreAll(t, b, target, restore.Options{})
	got := filepath.Join(target, b.src)
	same := filepath.Join(got, "sub", "deep", "x.md") // same size, same mtime, other bytes
	var st unix.Stat_t
	testfiles.Must(t, unix.Stat(same, &st))
	testfiles.Must(t, os.WriteFile(same, []byte("# DEEP\n"), 0o644))
	testfiles.Must(t, unix.UtimesNano(same, []unix.Timespec{st.Atim, st.Mtim}))
	testfiles.Must(t, os.Remove(filepath.Join(got, "empty")))

	res, _ := restoreAll(t, b, target, restore.Options{Overwrite: restore.Never})
	if data, _ := os.ReadFile(same); string(data) != "# DEEP\n" || res.Skipped == 0 {
		t.Errorf("never: %q rewritten (%q) or nothing skipped (%+v)", same, data, res)
	}
	if _, err := os.Stat(filepath.Join(got, "empty")); err != nil {
		t.Errorf("never: a missing file is not restored: %v", err)
	}
	res, _ = restoreAll(t, b, target, restore.Options{Overwrite: restore.IfChanged})
	if data, _ := os.ReadFile(same); string(data) != "# DEEP\n" || res.FilesUnchanged != res.Files {
		t.Errorf("if-changed: a file of the same size and mtime was read (%q, %+v)", data, res)
	}
	restoreAll(t, b, target, restore.Options{Overwrite: restore.Always})
	if d := diffLines(describe(t, b.src)[1:], describe(t, got)[1:]); d != "" {
		t.Errorf("always: restored tree differs from the source:\n%s", d)
	}
}

// TestRestoreSelect restores a sub-path with include and exclude
// patterns: only what Include matches, with the directories above it,
// minus what Exclude matches.
func TestRestoreSelect(t *testing.T) {
	b := backUp(t, makeTree)
	target := filepath.Join(t.TempDir(), "target")
	inc, err := selection.ParsePattern("deep", false)
	testfiles.Must(t, err)
	inc2, err := selection.ParsePattern("/hard1", false)
	testfiles.Must(t, err)
	var exc selection.Patterns
	testfiles.Must(t, exc.Add("*.md", false))
	res, err := restore.Run(context.Background(), b.vault, b.point.Root, b.src+"/sub", target,
		restore.Options{Include: []selection.Pattern{inc, inc2}, Exclude: exc})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	testfiles.Must(t, filepath.Walk(target, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(target, p)
		names = append(names, rel)
		return err
	}))
	want := []string{".", "deep", "hard1"}
	if !slices.Equal(names, want) || res.Files != 1 || res.Dirs != 1 {
		t.Errorf("restored %q (%+v), want %q", names, res, want)
	}
}

// TestOptionsSelect: include and exclude patterns as restore's flags give
// them, case folded for the i variants; an include that re-includes, or a
// pattern that does not parse, is refused.
func TestOptionsSelect(t *testing.T) {
	var o restore.Options
	testfiles.Must(t, o.Select([]string{"deep"}, []string{"/HARD1"}, []string{"*.md"}, []string{"*.TXT"}))
	if len(o.Include) != 2 || !o.Include[1].Match("/hard1") || o.Include[0].Match("/hard1") {
		t.Errorf("includes %v: want deep, and /HARD1 ignoring case", o.Include)
	}
	if !o.Exclude.ExcludedPath("/a/read.md") || !o.Exclude.ExcludedPath("/a/notes.txt") || o.Exclude.ExcludedPath("/a/notes.odt") {
		t.Errorf("excludes %v: want *.md, and *.TXT ignoring case", o.Exclude)
	}
	if err := new(restore.Options).Select([]string{"!deep"}, nil, nil, nil); !errors.Is(err, selection.ErrBadPattern) || !strings.Contains(err.Error(), "--include takes no re-include") {
		t.Errorf("a re-include: %v, want ErrBadPattern", err)
	}
	if err := new(restore.Options).Select(nil, nil, []string{"[x"}, nil); !errors.Is(err, selection.ErrBadPattern) {
		t.Errorf("a bad exclude: %v, want ErrBadPattern", err)
	}
}

// TestRestoreErrors: a path not in the point, and a directory in the way
// of a file, are clear errors; nothing in the way is deleted.
func TestRestoreErrors(t *testing.T) {
	b := backUp(t, makeTree)
	target := t.TempDir()
	_, err := restore.Run(context.Background(), b.vault, b.point.Root, "/no/such", target, restore.Options{})
	if !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing path: %v, want ErrNotExist", err)
	}
	testfiles.Must(t, os.MkdirAll(filepath.Join(target, "small", "keep"), 0o755))
	var reported []string
	_, err = restore.Run(context.Background(), b.vault, b.point.Root, b.src, target, restore.Options{
		OnError: func(path string, err error) { reported = append(reported, path+": "+err.Error()) },
	})
	if !errors.Is(err, restore.ErrIncomplete) || len(reported) != 1 || !strings.HasPrefix(reported[0], "small: ") {
		t.Errorf("directory in the way: %v, reported %q", err, reported)
	}
	if _, err := os.Stat(filepath.Join(target, "small", "keep")); err != nil {
		t.Errorf("the directory in the way was touched: %v", err)
	}
}

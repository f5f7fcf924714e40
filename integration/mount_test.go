package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	sparseSize = 256 << 20
	randomSize = 10 << 20
)

// buildAllKinds creates under src a tree with every kind of entry and
// metadata azfs must preserve. It returns whether a security.* xattr could
// be set.
func buildAllKinds(t *testing.T, src string) (securityXattr bool) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(src, rel) }
	for _, d := range []string{"", "dir0750", "dir0750/dir0700", "sticky", "links", "hard", "other", "special"} {
		mkdir(t, p(d))
	}
	writeFile(t, p("empty"), nil, 0o644)
	writeFile(t, p("small.txt"), []byte("hello, azfs\n"), 0o644)
	writeRandom(t, p("random.bin"), randomSize, 1)
	var text bytes.Buffer
	for i := 0; text.Len() < 4<<20; i++ {
		fmt.Fprintf(&text, "%08d the quick brown fox jumps over the lazy dog; compressible log line\n", i)
	}
	writeFile(t, p("text.log"), text.Bytes(), 0o644)
	writeFile(t, p("dir0750/dir0700/deep.txt"), []byte("deep\n"), 0o644)
	writeFile(t, p("sticky/inside"), []byte("x"), 0o644)
	writeFile(t, p("setuid"), []byte("#!/bin/sh\n"), 0o755)
	writeFile(t, p("setgid"), []byte("#!/bin/sh\n"), 0o755)
	writeFile(t, p("private"), []byte("secret\n"), 0o600)
	writeFile(t, p("owned.txt"), []byte("owned by 1234\n"), 0o644)
	writeFile(t, p("bad\xffname"), []byte("invalid UTF-8 name\n"), 0o644)

	for link, target := range map[string]string{
		"links/rel":      "../small.txt",
		"links/abs":      p("small.txt"),
		"links/dangling": "does/not/exist",
	} {
		if err := os.Symlink(target, p(link)); err != nil {
			t.Fatal(err)
		}
	}

	writeFile(t, p("hard/a"), randomBytes(100<<10, 2), 0o640)
	for _, l := range []string{"hard/b", "other/c"} {
		if err := os.Link(p("hard/a"), p(l)); err != nil {
			t.Fatal(err)
		}
	}

	f, err := os.Create(p("sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sparseSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(1<<20, 3), 100<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(4<<10, 4), sparseSize-4<<10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	if err := unix.Mkfifo(p("special/fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	var null unix.Stat_t
	if err := unix.Stat("/dev/null", &null); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(p("special/null"), unix.S_IFCHR|0o666, int(null.Rdev)); err != nil {
		t.Fatalf("mknod: %v", err)
	}

	// Ownership first: chown clears setuid and setgid bits.
	for _, rel := range []string{"owned.txt", "setgid", "dir0750", "links/abs", "special/fifo"} {
		if err := os.Lchown(p(rel), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	for rel, mode := range map[string]uint32{
		"setuid":          0o4755,
		"setgid":          0o2755,
		"private":         0o600,
		"dir0750":         0o750,
		"dir0750/dir0700": 0o700,
		"sticky":          0o1777,
	} {
		if err := unix.Chmod(p(rel), mode); err != nil {
			t.Fatal(err)
		}
	}

	xattrs := map[string]map[string]string{
		"small.txt": {"user.comment": "a comment", "user.binary": "\x00\x01\xfe\xff", "user.empty": ""},
		"dir0750":   {"user.dir": "on a directory"},
		"hard/a":    {"user.link": "shared by three names"},
	}
	for rel, xs := range xattrs {
		for name, val := range xs {
			if err := unix.Lsetxattr(p(rel), name, []byte(val), 0); err != nil {
				unavailable(t, fmt.Sprintf("the source file system does not take user xattrs: %v", err))
			}
		}
	}
	securityXattr = unix.Lsetxattr(p("private"), "security.azfstest", []byte("sec"), 0) == nil

	// Times last, directories after everything in them.
	base := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC).UnixNano()
	var dirs, others []string
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		} else {
			others = append(others, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	i := int64(0)
	for _, path := range append(others, dirs...) {
		i++
		mtime := base + i*1_000_000_007 // distinct seconds and nanoseconds
		atime := mtime - 86400*1e9 + 17
		ts := []unix.Timespec{unix.NsecToTimespec(atime), unix.NsecToTimespec(mtime)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("utimensat %s: %v", path, err)
		}
	}
	return securityXattr
}

// TestRoundTripAllKinds backs up a tree holding every kind of entry, mounts
// the point, copies it out with cp -a and checks that the mount and the
// copy match the source exactly.
func TestRoundTripAllKinds(t *testing.T) {
	requireFUSE(t)
	requireRoot(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	secXattr := buildAllKinds(t, src)
	want := snapshot(t, src) // before the backup, which updates the source dirs' atimes

	out := e.backup(src)
	if out.Stats.Xattrs < 3 {
		t.Errorf("backup stats: xattrs = %d, want >= 3 (entries carrying xattrs)", out.Stats.Xattrs)
	}
	if out.Stats.Others != 5 {
		t.Errorf("backup stats: others = %d, want 5 (3 symlinks, a FIFO, a device)", out.Stats.Others)
	}

	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	e.mount(mnt, "--point", "latest")
	inMount := filepath.Join(mnt, src)

	// Hard links: one inode, three names, in the mount itself.
	var ino uint64
	for i, rel := range []string{"hard/a", "hard/b", "other/c"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(inMount, rel), &st); err != nil {
			t.Fatalf("lstat in mount: %v", err)
		}
		if st.Nlink != 3 {
			t.Errorf("mount: %s has nlink %d, want 3", rel, st.Nlink)
		}
		if i == 0 {
			ino = st.Ino
		} else if st.Ino != ino {
			t.Errorf("mount: %s has inode %d, hard/a has %d: hard links must share an inode", rel, st.Ino, ino)
		}
	}

	// Holes are not stored and not reported as allocated.
	var sp unix.Stat_t
	if err := unix.Lstat(filepath.Join(inMount, "sparse.img"), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Size != sparseSize {
		t.Errorf("mount: sparse.img size %d, want %d", sp.Size, sparseSize)
	}
	if used := sp.Blocks * 512; used > 4<<20 {
		t.Errorf("mount: sparse.img has st_blocks %d (%d bytes), want about 1 MiB of data (holes must not count)", sp.Blocks, used)
	}

	// The whole mount matches the source, atimes included.
	mountSnap := snapshot(t, inMount)
	compareTrees(t, "the mount", want, mountSnap, compareOpts{atime: true})
	if secXattr {
		if p := mountSnap["private"]; p == nil || p.xattrs["security.azfstest"] != "sec" {
			t.Errorf("mount: security.azfstest missing or wrong on private, want %q", "sec")
		}
	} else {
		t.Log("could not set a security.* xattr on the source; not checked")
	}

	// Copy out with the real cp and compare again.
	dst := filepath.Join(t.TempDir(), "copy")
	cp := exec.Command("cp", "-a", inMount, dst)
	if b, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("cp -a from the mount: %v\n%s", err, b)
	}
	copySnap := snapshot(t, dst)
	compareTrees(t, "the cp -a copy", want, copySnap, compareOpts{atime: true, xattrPrefix: "user."})
	if c := copySnap["sparse.img"]; c != nil && c.blocks*512 > 16<<20 {
		t.Errorf("copy: sparse.img has %d bytes allocated: cp did not see the holes (SEEK_HOLE or st_blocks of the mount wrong)", c.blocks*512)
	}

	// Holes and compressible text cost (almost) nothing in the vault.
	incompressible := int64(randomSize + 1<<20 + 4<<10 + 100<<10)
	stored := sum(vaultFiles(t, e.vault, ""))
	if limit := incompressible + 1<<20; stored > limit {
		t.Errorf("the vault holds %d bytes, want <= %d (the random data plus 1 MiB) for a %d-byte sparse file and 4 MiB of text: holes or text stored?", stored, limit, sparseSize)
	}
	t.Logf("the vault holds %d bytes", stored)
}

// readMountFile reads a whole file of a mount.
func readMountFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// isEIO reports whether err is an I/O error.
func isEIO(err error) bool {
	return errors.Is(err, syscall.EIO)
}

// pointDirName is the directory name of a point in the all-points layout,
// from its time and the times of the machine's other points.
func pointDirName(p pointRow, all []pointRow) string {
	name := p.Time.UTC().Format("2006-01-02T15-04-05Z")
	for _, q := range all {
		if q.ID != p.ID && q.Machine == p.Machine && q.Time.UTC().Format("2006-01-02T15-04-05Z") == name {
			return name + "-" + p.ID[:8]
		}
	}
	return name
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestIncrementalAndDate backs up, edits the tree (modify, add, delete) and
// backs up again: the second run reads and stores only what changed, both
// points are served side by side, and points are selected by date and by ID
// prefix.
func TestIncrementalAndDate(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, filepath.Join(src, "sub"))
	const (
		bigSize  = 16 << 20
		keepSize = 8 << 20
	)
	shas := map[string]string{"big.bin": writeRandom(t, filepath.Join(src, "big.bin"), bigSize, 10)}
	for i := range 4 {
		name := fmt.Sprintf("keep%d.bin", i)
		shas[name] = writeRandom(t, filepath.Join(src, name), keepSize, uint64(20+i))
	}
	small := map[string]string{"a.txt": "alpha\n", "sub/b.txt": "bravo\n", "sub/c.txt": "charlie\n", "doomed.txt": "deleted after the first backup\n"}
	for rel, content := range small {
		writeFile(t, filepath.Join(src, rel), []byte(content), 0o644)
	}
	const files = 1 + 4 + 4

	first := e.backup(src)
	if s := first.Stats; s.Files != files || s.FilesNew != files || s.FilesUnchanged != 0 || s.FilesChanged != 0 {
		t.Errorf("first backup: files %d (new %d, changed %d, unchanged %d), want %d all new", s.Files, s.FilesNew, s.FilesChanged, s.FilesUnchanged, files)
	}

	// Edit: 4 KiB in the middle of big.bin (same size), a new file, a
	// deleted file.
	f, err := os.OpenFile(filepath.Join(src, "big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("EDIT"), 1024), bigSize/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	newBig, err := fileSHA(filepath.Join(src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const addedSize = 100 << 10
	added := randomBytes(addedSize, 30)
	writeFile(t, filepath.Join(src, "sub/new.bin"), added, 0o644)
	if err := os.Remove(filepath.Join(src, "doomed.txt")); err != nil {
		t.Fatal(err)
	}

	second := e.backup(src)
	s := second.Stats
	const untouched = files - 2 // all but big.bin and doomed.txt
	if s.Files != files || s.FilesUnchanged != untouched || s.FilesChanged != 1 || s.FilesNew != 1 {
		t.Errorf("second backup: files %d (new %d, changed %d, unchanged %d), want %d (1 new, 1 changed, %d unchanged)",
			s.Files, s.FilesNew, s.FilesChanged, s.FilesUnchanged, files, untouched)
	}
	if want := uint64(bigSize + addedSize); s.BytesRead != want {
		t.Errorf("second backup read %d bytes, want %d (only the changed and the new file)", s.BytesRead, want)
	}
	// Content-defined chunks: the edit changes a chunk or two (at most 4 MiB
	// each); everything else of big.bin is deduplicated.
	if limit := uint64(8<<20 + addedSize + 512<<10); s.BytesStored > limit || s.BytesStored > s.Bytes/4 {
		t.Errorf("second backup stored %d bytes of %d, want <= %d: unchanged chunks stored again?", s.BytesStored, s.Bytes, limit)
	}
	t.Logf("second backup: read %d, stored %d of %d bytes", s.BytesRead, s.BytesStored, s.Bytes)

	points := e.points()
	if len(points) != 2 || points[0].ID != first.Point || points[1].ID != second.Point {
		t.Fatalf("points --json: got %+v, want the two backups %s then %s", points, first.Point, second.Point)
	}

	// All points side by side: <machine>/<time>/<absolute path>.
	all := mkdir(t, filepath.Join(e.dir, "all"))
	e.mount(all)
	machineDir := filepath.Join(all, first.Machine)
	oldDir := filepath.Join(machineDir, pointDirName(points[0], points), src)
	newDir := filepath.Join(machineDir, pointDirName(points[1], points), src)
	if target, err := os.Readlink(filepath.Join(machineDir, "latest")); err != nil || target != pointDirName(points[1], points) {
		t.Errorf("%s/latest -> %q (%v), want %q", first.Machine, target, err, pointDirName(points[1], points))
	}
	checkContent := func(dir string, want map[string]string, absent ...string) {
		t.Helper()
		for rel, sha := range want {
			got, err := fileSHA(filepath.Join(dir, rel))
			if err != nil || got != sha {
				t.Errorf("%s: sha256 %s (err %v), want %s", filepath.Join(dir, rel), got, err, sha)
			}
		}
		for _, rel := range absent {
			if _, err := os.Lstat(filepath.Join(dir, rel)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: want ENOENT, got %v", filepath.Join(dir, rel), err)
			}
		}
	}
	oldWant, newWant := map[string]string{}, map[string]string{}
	for rel, sha := range shas {
		oldWant[rel], newWant[rel] = sha, sha
	}
	for rel, content := range small {
		oldWant[rel], newWant[rel] = shaOf([]byte(content)), shaOf([]byte(content))
	}
	delete(newWant, "doomed.txt")
	newWant["big.bin"] = newBig
	newWant["sub/new.bin"] = shaOf(added)
	checkContent(oldDir, oldWant, "sub/new.bin")
	checkContent(newDir, newWant, "doomed.txt")
	checkContent(filepath.Join(machineDir, "latest", src), newWant, "doomed.txt")

	// A date picks that day's last point.
	day := points[1].Time.Local().Format("2006-01-02")
	byDate := e.mount(mkdir(t, filepath.Join(e.dir, "bydate")), "--point", day)
	if !strings.Contains(byDate.stderr.String(), second.Point[:8]) {
		t.Errorf("azmount --point %s: stderr does not name the point it picked (%s):\n%s", day, second.Point[:8], byDate.stderr)
	}
	checkContent(filepath.Join(byDate.dir, src), newWant, "doomed.txt")

	// An ID prefix picks that point.
	prefix := first.Point[:6]
	for strings.HasPrefix(second.Point, prefix) {
		prefix = first.Point[:len(prefix)+1]
	}
	byID := e.mount(mkdir(t, filepath.Join(e.dir, "byid")), "--point", prefix)
	checkContent(filepath.Join(byID.dir, src), oldWant, "sub/new.bin")

	// An unknown prefix fails in one line naming the nearest points.
	unknown := ""
	for _, c := range "0123456789abcdef" {
		cand := strings.Repeat(string(c), 7)
		if !strings.HasPrefix(first.Point, cand) && !strings.HasPrefix(second.Point, cand) {
			unknown = cand
			break
		}
	}
	nowhere := mkdir(t, filepath.Join(e.dir, "nowhere"))
	r := e.run(azmountBin, "--point", unknown, nowhere)
	checkOneLineError(t, r, "azmount: ")
	if !strings.Contains(r.stderr, "nearest") {
		t.Errorf("azmount --point %s: error does not mention the nearest points:\n%s", unknown, r)
	}
	if isMounted(t, nowhere) {
		t.Errorf("azmount --point %s failed but left %s mounted", unknown, nowhere)
		_ = exec.Command("fusermount3", "-u", "-z", nowhere).Run()
	}
}

// shaOf returns the hex SHA-256 of b.
func shaOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

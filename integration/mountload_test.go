package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The memory cache of the mount under load, and what azmount may use beyond
// it.
//
// mlCacheFlag is smaller than the large files together (72 MiB), so the LRU
// evicts all the time while the readers run.
//
// mlRSSSlack: azmount sets a soft Go heap limit of --cache-size + 48 MiB
// (fs.MemoryLimit; it was + 128 MiB when this was measured) for the decrypted chunks in the
// LRU, the loads in flight (sealed + payload + plaintext of the chunks of
// every concurrent READ and of read-ahead, docs/architecture.md §3.1, not
// byte-bounded), FUSE buffers, tree parts and the index. Beyond the heap
// come the Go runtime (goroutine stacks, GC metadata, memory the scavenger
// has not returned yet) and the binary. Measured on a 2-core machine with
// this test's 16 readers: VmHWM 200 MiB, i.e. at the soft limit of
// 64 + 128 MiB. The bound, 64 + 256 = 320 MiB, leaves 120 MiB for a GC that
// falls behind under load, and still fails for memory that grows with the
// traffic rather than with the cache (the O_DIRECT preads alone pass some
// 600 MiB through azmount) or loads in flight that pile up without bound.
// It cannot see an LRU that ignores its byte bound: this tree's data
// (about 90 MiB) would fit under it; cache/lru's unit tests cover that.
const (
	mlCacheFlag  = "64MiB"
	mlCacheBytes = 64 << 20
	mlRSSSlack   = 256 << 20
)

// mlLargeSizes are the sizes of the incompressible files of the tree under
// load.
var mlLargeSizes = []int64{16 << 20, 24 << 20, 32 << 20}

// mlGitEnv returns the environment for git commands: no system or global
// configuration, fixed identity, UTC, C locale, no optional locks (a read
// in a read-only mount must not try to write the index).
func mlGitEnv(home string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") || k == "HOME" || k == "TZ" || k == "LC_ALL" || k == "LANG" || k == "XDG_CONFIG_HOME" {
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "TZ=UTC", "LC_ALL=C",
		"GIT_AUTHOR_NAME=Azfs Tester", "GIT_AUTHOR_EMAIL=tester@azfs.invalid",
		"GIT_COMMITTER_NAME=Azfs Tester", "GIT_COMMITTER_EMAIL=tester@azfs.invalid",
		"GIT_OPTIONAL_LOCKS=0", "GIT_PAGER=cat", "PAGER=cat", "GIT_TERMINAL_PROMPT=0")
}

// mlGit runs git with args in dir and returns its stdout; it fails the test
// on a non-zero exit. date, if not zero, is the author and committer date.
func mlGit(t *testing.T, dir string, date int64, args ...string) string {
	t.Helper()
	out, err := mlGitRun(dir, date, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mlGitRun runs git -c safe.directory=* -C dir args and returns its stdout.
func mlGitRun(dir string, date int64, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "safe.directory=*", "-c", "core.pager=cat", "-C", dir}, args...)...)
	cmd.Env = mlGitEnv(filepath.Dir(dir))
	if date != 0 {
		d := fmt.Sprintf("@%d +0000", date)
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("git -C %s %s: %v\nstderr:\n%s", dir, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// mlMakeGitRepo creates a git repository at dir with real git commands:
// about 30 commits on main touching several files each (with adds and
// deletes), a branch with commits of its own merged back, an annotated and a
// lightweight tag, and a repack half way so that the repository holds both
// a pack and loose objects. Dates and contents come from seed, so the
// commit IDs are the same on every run.
func mlMakeGitRepo(t *testing.T, dir string, seed uint64) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		unavailable(t, "git is not installed: "+err.Error())
	}
	mkdir(t, dir)
	rng := rand.New(rand.NewPCG(seed, 0x676974))
	date := int64(1_700_000_000)
	tick := func() int64 { date += 61 + rng.Int64N(3600); return date }
	mlGit(t, dir, 0, "init", "-q", "-b", "main")
	files := []string{"README.md", "src/main.go", "src/util.go", "docs/guide.txt", "data/table.csv"}
	mkdir(t, filepath.Join(dir, "src"))
	mkdir(t, filepath.Join(dir, "docs"))
	mkdir(t, filepath.Join(dir, "data"))
	lines := make(map[string][]string)
	edit := func(name string, commit int) {
		ls := lines[name]
		switch {
		case len(ls) > 4 && rng.IntN(3) == 0: // replace a line
			ls[rng.IntN(len(ls))] = fmt.Sprintf("line replaced in commit %d: %x", commit, rng.Uint64())
		case len(ls) > 8 && rng.IntN(4) == 0: // delete a line
			i := rng.IntN(len(ls))
			ls = append(ls[:i], ls[i+1:]...)
		}
		for range 1 + rng.IntN(6) {
			ls = append(ls, fmt.Sprintf("commit %d of %s: %x %x", commit, name, rng.Uint64(), rng.Uint64()))
		}
		lines[name] = ls
		writeFile(t, filepath.Join(dir, name), []byte(strings.Join(ls, "\n")+"\n"), 0o644)
	}
	commit := func(n int, msg string) {
		mlGit(t, dir, 0, "add", "-A")
		mlGit(t, dir, tick(), "commit", "-q", "-m", fmt.Sprintf("%s (%d)", msg, n))
	}
	for n := range 30 {
		for range 2 + rng.IntN(3) {
			edit(files[rng.IntN(len(files))], n)
		}
		if n%7 == 3 { // a new file
			name := fmt.Sprintf("src/gen%02d.go", n)
			files = append(files, name)
			edit(name, n)
		}
		if n%11 == 10 { // a deleted file
			victim := files[len(files)-1]
			files = files[:len(files)-1]
			delete(lines, victim)
			if err := os.Remove(filepath.Join(dir, victim)); err != nil {
				t.Fatal(err)
			}
		}
		commit(n, "main: update")
		switch n {
		case 9:
			mlGit(t, dir, tick(), "tag", "-a", "v1.0", "-m", "release 1.0")
		case 14:
			// A branch on files main does not touch, merged later.
			mlGit(t, dir, 0, "checkout", "-q", "-b", "feature")
			mkdir(t, filepath.Join(dir, "feature"))
			for k := range 5 {
				edit(fmt.Sprintf("feature/f%d.txt", k%2), 100+k)
				commit(100+k, "feature: work")
			}
			mlGit(t, dir, 0, "checkout", "-q", "main")
			delete(lines, "feature/f0.txt")
			delete(lines, "feature/f1.txt")
		case 19:
			mlGit(t, dir, 0, "repack", "-q", "-a", "-d")
			mlGit(t, dir, 0, "tag", "light-19")
		case 24:
			mlGit(t, dir, tick(), "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
			for _, f := range []string{"feature/f0.txt", "feature/f1.txt"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				lines[f] = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			}
		}
	}
	if out := mlGit(t, dir, 0, "rev-list", "--all", "--count"); strings.TrimSpace(out) == "" {
		t.Fatal("git rev-list printed nothing")
	}
}

// mlBuildTree creates the tree of TestMountUnderLoad under src: nested
// directories of small files (text and random, some empty, a few private or
// executable), relative, absolute and dangling symlinks, a hard link, the
// large incompressible files and a git repository. It returns the paths of
// the large files relative to src.
func mlBuildTree(t *testing.T, src string, smallFiles int) (large []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 0x6c6f6164))
	mkdir(t, src)
	var smalls []string
	for i := range smallFiles {
		rel := filepath.Join(fmt.Sprintf("d%02d", i%20), fmt.Sprintf("s%d", (i/20)%6), fmt.Sprintf("f%04d.dat", i))
		mkdir(t, filepath.Join(src, filepath.Dir(rel)))
		var data []byte
		switch {
		case i%23 == 0: // empty
		case i%3 == 0: // compressible text
			var b strings.Builder
			for j := range 1 + rng.IntN(200) {
				fmt.Fprintf(&b, "file %d line %d: the quick brown fox %d\n", i, j, rng.IntN(1000))
			}
			data = []byte(b.String())
		default:
			data = randomBytes(rng.IntN(24<<10), uint64(1000+i))
		}
		perm := os.FileMode(0o644)
		switch i % 50 {
		case 7:
			perm = 0o600
		case 13:
			perm = 0o755
		}
		writeFile(t, filepath.Join(src, rel), data, perm)
		if err := os.Chmod(filepath.Join(src, rel), perm); err != nil { // past the umask
			t.Fatal(err)
		}
		smalls = append(smalls, rel)
	}
	mkdir(t, filepath.Join(src, "links"))
	for i := range 40 {
		target := filepath.Join("..", smalls[rng.IntN(len(smalls))])
		if err := os.Symlink(target, filepath.Join(src, "links", fmt.Sprintf("l%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"abs": filepath.Join(src, smalls[1]), "dangling": "nowhere/at/all", "dir": "../d03"} {
		if err := os.Symlink(target, filepath.Join(src, "links", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, smalls[2]), filepath.Join(src, "links", "hard")); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(src, "emptydir", "deeper"))
	if err := os.Chmod(filepath.Join(src, "d05"), 0o700); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(src, "large"))
	for i, size := range mlLargeSizes {
		rel := filepath.Join("large", fmt.Sprintf("big%d.bin", i))
		writeRandom(t, filepath.Join(src, rel), size, uint64(500+i))
		large = append(large, rel)
	}
	mlMakeGitRepo(t, filepath.Join(src, "repo"), 42)
	return large
}

// mlReader is one of the parallel readers of TestMountUnderLoad.
type mlReader struct {
	name string
	run  func(ctx context.Context) error
	took time.Duration
	err  error
}

// mlCmd runs a command to completion in dir and returns an error with its
// stderr unless it exits 0.
func mlCmd(ctx context.Context, dir string, stdout io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, mlHead(stderr.String(), 20))
	}
	if stderr.Len() > 0 {
		return fmt.Errorf("%s %s: exit 0 but wrote to stderr:\n%s", name, strings.Join(args, " "), mlHead(stderr.String(), 20))
	}
	return nil
}

// mlTarCheck runs tar over root, reads the archive as it streams and checks
// every member against want: the same set of names, types and modes, the
// content of every regular file (by SHA-256), symlink targets, hard links
// to files of the same content.
func mlTarCheck(ctx context.Context, root string, want map[string]*entry) error {
	cmd := exec.CommandContext(ctx, "tar", "-C", root, "-cf", "-", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	seen := make(map[string]bool)
	tr := tar.NewReader(pipe)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			add("reading the archive: %v", err)
			break
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if rel == "" || rel == "." {
			rel = "."
		}
		seen[rel] = true
		w := want[rel]
		if w == nil {
			add("%q: in the archive, not in the source", rel)
			continue
		}
		if uint32(hdr.Mode)&0o7777 != w.mode {
			add("%q: mode %#o in the archive, want %#o", rel, hdr.Mode&0o7777, w.mode)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if w.typ != unix.S_IFREG {
				add("%q: a regular file in the archive, want type %#o", rel, w.typ)
				continue
			}
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				add("%q: reading its content from the archive: %v", rel, err)
				continue
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != w.sha {
				add("%q: content sha256 %s in the archive, want %s", rel, got, w.sha)
			}
		case tar.TypeLink:
			target := strings.TrimPrefix(hdr.Linkname, "./")
			if w.typ != unix.S_IFREG || want[target] == nil || want[target].sha != w.sha || want[target].ino != w.ino {
				add("%q: a hard link to %q in the archive, which is not the same file in the source", rel, target)
			}
		case tar.TypeSymlink:
			if w.typ != unix.S_IFLNK || hdr.Linkname != w.target {
				add("%q: symlink to %q in the archive, want type %#o target %q", rel, hdr.Linkname, w.typ, w.target)
			}
		case tar.TypeDir:
			if w.typ != unix.S_IFDIR {
				add("%q: a directory in the archive, want type %#o", rel, w.typ)
			}
		default:
			add("%q: unexpected tar type %q", rel, hdr.Typeflag)
		}
	}
	_, _ = io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		add("tar -C %s -cf - .: %v\nstderr:\n%s", root, err, mlHead(stderr.String(), 20))
	} else if stderr.Len() > 0 {
		add("tar wrote to stderr:\n%s", mlHead(stderr.String(), 20))
	}
	for rel := range want {
		if !seen[rel] {
			add("%q: missing from the archive", rel)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// mlFindCheck runs find -type f -exec sha256sum {} + in root and compares
// the listed files and their hashes with want.
func mlFindCheck(ctx context.Context, root string, want map[string]*entry) error {
	var out bytes.Buffer
	if err := mlCmd(ctx, root, &out, "find", ".", "-type", "f", "-exec", "sha256sum", "{}", "+"); err != nil {
		return err
	}
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	seen := make(map[string]bool)
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			add("unexpected sha256sum line %q", sc.Text())
			continue
		}
		rel := strings.TrimPrefix(name, "./")
		seen[rel] = true
		if w := want[rel]; w == nil || w.typ != unix.S_IFREG {
			add("%q: listed by find -type f, not a regular file of the source", rel)
		} else if sum != w.sha {
			add("%q: sha256sum %s, want %s", rel, sum, w.sha)
		}
	}
	for rel, w := range want {
		if w.typ == unix.S_IFREG && !seen[rel] {
			add("%q: not listed by find -type f", rel)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// mlPread reads n random ranges (up to 2 MiB, some across chunk
// boundaries) of random large files with pread(2) from the mount and from
// the source, and compares them. With direct, the mount's files are opened
// O_DIRECT, so that every read reaches azmount rather than the page cache.
func mlPread(ctx context.Context, mnt, src string, large []string, seed uint64, n int, direct bool) error {
	rng := rand.New(rand.NewPCG(seed, 0x7072656164))
	type pair struct {
		m, s *os.File
		size int64
	}
	var files []pair
	defer func() {
		for _, p := range files {
			p.m.Close()
			p.s.Close()
		}
	}()
	flags := os.O_RDONLY
	if direct {
		flags |= unix.O_DIRECT
	}
	for _, rel := range large {
		m, err := os.OpenFile(filepath.Join(mnt, rel), flags, 0)
		if err != nil {
			return err
		}
		s, err := os.Open(filepath.Join(src, rel))
		if err != nil {
			m.Close()
			return err
		}
		fi, err := s.Stat()
		if err != nil {
			m.Close()
			s.Close()
			return err
		}
		files = append(files, pair{m, s, fi.Size()})
	}
	got := make([]byte, 2<<20)
	want := make([]byte, 2<<20)
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p := files[rng.IntN(len(files))]
		off := rng.Int64N(p.size)
		length := 1 + rng.IntN(len(got))
		if i%5 == 0 {
			length = 1 + rng.IntN(4096)
		}
		if int64(length) > p.size-off {
			length = int(p.size - off)
		}
		gn, gerr := p.m.ReadAt(got[:length], off)
		if gerr != nil && !(gerr == io.EOF && gn == length) {
			return fmt.Errorf("pread %s at %d, %d bytes: got %d: %v", p.m.Name(), off, length, gn, gerr)
		}
		if _, err := p.s.ReadAt(want[:length], off); err != nil && err != io.EOF {
			return err
		}
		if !bytes.Equal(got[:length], want[:length]) {
			first := 0
			for first < length && got[first] == want[first] {
				first++
			}
			return fmt.Errorf("pread %s at %d, %d bytes: wrong bytes from offset %d on", p.m.Name(), off, length, off+int64(first))
		}
	}
	return nil
}

// mlProcStatus returns the VmRSS and VmHWM of process pid in bytes.
func mlProcStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

// mlChanging is the second, changing tree backed up while the mount is
// under load. Its methods return errors rather than failing the test: they
// run on a goroutine of their own.
type mlChanging struct {
	root  string
	rng   *rand.Rand
	files []string
	next  int
}

func newMLChanging(t *testing.T, root string) *mlChanging {
	t.Helper()
	c := &mlChanging{root: root, rng: rand.New(rand.NewPCG(99, 0x6368616e6765))}
	mkdir(t, filepath.Join(root, "sub"))
	for range 150 {
		if err := c.add(); err != nil {
			t.Fatal(err)
		}
	}
	writeRandom(t, filepath.Join(root, "blob.bin"), 4<<20, 77)
	return c
}

func (c *mlChanging) add() error {
	c.next++
	rel := fmt.Sprintf("f%04d", c.next)
	if c.next%3 == 0 {
		rel = filepath.Join("sub", rel)
	}
	c.files = append(c.files, rel)
	return os.WriteFile(filepath.Join(c.root, rel), randomBytes(c.rng.IntN(16<<10), c.rng.Uint64()), 0o644)
}

// mutate changes the tree: rewrites some files, adds some, deletes some,
// and overwrites 256 KiB in the middle of blob.bin.
func (c *mlChanging) mutate() error {
	for range 20 {
		rel := c.files[c.rng.IntN(len(c.files))]
		if err := os.WriteFile(filepath.Join(c.root, rel), randomBytes(c.rng.IntN(16<<10), c.rng.Uint64()), 0o644); err != nil {
			return err
		}
	}
	for range 5 {
		if err := c.add(); err != nil {
			return err
		}
	}
	for range 3 {
		i := c.rng.IntN(len(c.files))
		if err := os.Remove(filepath.Join(c.root, c.files[i])); err != nil {
			return err
		}
		c.files = append(c.files[:i], c.files[i+1:]...)
	}
	f, err := os.OpenFile(filepath.Join(c.root, "blob.bin"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(randomBytes(256<<10, c.rng.Uint64()), c.rng.Int64N(3<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mlBackupRun is one backup of the changing tree.
type mlBackupRun struct {
	r    result
	err  error // the command could not be run or timed out
	took time.Duration
}

// TestMountUnderLoad backs up a tree of a few thousand small files, large
// incompressible files and a git repository, mounts the point with a small
// memory cache and reads it with 16 readers at once (4 cp -a, 4 tar, 4 find
// | sha256sum, 4 goroutines doing random preads of the large files) while
// backups of another, changing tree go into the same vault. Every reader
// must see exactly the source, every backup must succeed, azmount's peak
// RSS must stay within the cache size plus a fixed slack, and afterwards
// check --read-data passes and the new points mount with their tree.
func TestMountUnderLoad(t *testing.T) {
	requireFUSE(t)
	for _, tool := range []string{"cp", "tar", "find", "sha256sum", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" is not installed: "+err.Error())
		}
	}
	start := time.Now()
	e := newEnv(t)
	// azmount sets its own soft heap limit only when GOMEMLIMIT is unset:
	// make sure the test's environment does not change what is measured.
	e.extraEnv = append(e.extraEnv, "GOMEMLIMIT=", "GOGC=")
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	large := mlBuildTree(t, src, 2000)
	changing := newMLChanging(t, filepath.Join(t.TempDir(), "changing"))
	want := snapshot(t, src)
	files := 0
	for _, w := range want {
		if w.typ == unix.S_IFREG {
			files++
		}
	}
	built := time.Now()

	first := e.backup(src)
	backedUp := time.Now()
	t.Logf("tree: %d entries, %d regular files, %d bytes; built in %v, backed up in %v (stored %d bytes)",
		len(want), files, first.Stats.Bytes, built.Sub(start).Round(time.Millisecond), backedUp.Sub(built).Round(time.Millisecond), first.Stats.BytesStored)

	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	m := e.mount(mnt, "--point", first.Point, "--cache-size", mlCacheFlag)
	inMount := filepath.Join(m.dir, src)
	pid := m.cmd.Process.Pid
	_, startHWM, err := mlProcStatus(pid)
	if err != nil {
		t.Fatalf("azmount's /proc status: %v", err)
	}

	// O_DIRECT keeps the preads away from the page cache, so that they
	// reach azmount's LRU however often the other readers read the same
	// files; a kernel that refuses it on FUSE gets ordinary reads.
	direct := true
	if f, err := os.OpenFile(filepath.Join(inMount, large[0]), os.O_RDONLY|unix.O_DIRECT, 0); err != nil {
		t.Logf("O_DIRECT open in the mount refused (%v): the preads go through the page cache", err)
		direct = false
	} else {
		f.Close()
	}

	copies := t.TempDir()
	var readers []*mlReader
	for i := range 4 {
		dst := filepath.Join(copies, fmt.Sprintf("copy%d", i))
		readers = append(readers, &mlReader{name: fmt.Sprintf("cp-a-%d", i), run: func(ctx context.Context) error {
			return mlCmd(ctx, "/", io.Discard, "cp", "-a", inMount, dst)
		}})
	}
	for i := range 4 {
		readers = append(readers, &mlReader{name: fmt.Sprintf("tar-%d", i), run: func(ctx context.Context) error {
			return mlTarCheck(ctx, inMount, want)
		}})
	}
	for i := range 4 {
		readers = append(readers, &mlReader{name: fmt.Sprintf("find-sha256sum-%d", i), run: func(ctx context.Context) error {
			return mlFindCheck(ctx, inMount, want)
		}})
	}
	for i := range 4 {
		readers = append(readers, &mlReader{name: fmt.Sprintf("pread-%d", i), run: func(ctx context.Context) error {
			return mlPread(ctx, inMount, src, large, uint64(i), 200, direct)
		}})
	}

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()

	// RSS of azmount, sampled until the readers are done.
	var (
		rssMu      sync.Mutex
		peakRSS    int64
		samples    int
		rssErr     error
		stopSample = make(chan struct{})
		sampled    = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, _, err := mlProcStatus(pid)
			rssMu.Lock()
			if err != nil && rssErr == nil {
				rssErr = err
			}
			peakRSS = max(peakRSS, rss)
			samples++
			rssMu.Unlock()
			select {
			case <-stopSample:
				return
			case <-tick.C:
			}
		}
	}()

	// Backups of the changing tree into the same vault, one after another
	// (the backup lock is the machine's; the mount does not take it), with
	// a short pause between them, until the readers are done and at least
	// two have run.
	readersDone := make(chan struct{})
	var backups []mlBackupRun
	var mutateErr error
	backupsDone := make(chan struct{})
	go func() {
		defer close(backupsDone)
		for n := 0; n < 40; n++ {
			if n >= 2 {
				select {
				case <-readersDone:
					return
				case <-time.After(300 * time.Millisecond):
				}
				select {
				case <-readersDone:
					return
				default:
				}
			}
			if err := changing.mutate(); err != nil {
				mutateErr = err
				return
			}
			began := time.Now()
			cmd := e.command(ctx, azfsBin, "backup", "--json", changing.root)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			run := mlBackupRun{r: result{args: cmd.Args, stdout: stdout.String(), stderr: stderr.String()}, took: time.Since(began)}
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) && exitErr.Exited() {
				run.r.code = exitErr.ExitCode()
			} else if err != nil {
				run.err = err
			}
			backups = append(backups, run)
			if run.err != nil || run.r.code != 0 {
				return
			}
		}
	}()

	loadStart := time.Now()
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			r.err = r.run(ctx)
			r.took = time.Since(began)
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(cmdTimeout + 30*time.Second):
		// The commands were killed at cmdTimeout: a reader blocked in the
		// mount this long is a hang. Failing runs the cleanups, which stop
		// azmount and so end the blocked reads.
		t.Fatalf("readers still blocked %v after they started; azmount stderr:\n%s", time.Since(loadStart), mlHead(m.stderr.String(), 40))
	}
	readTime := time.Since(loadStart)
	close(readersDone)
	<-backupsDone
	loadTime := time.Since(loadStart)
	close(stopSample)
	<-sampled
	_, hwm, err := mlProcStatus(pid)
	if err != nil {
		t.Fatalf("azmount's /proc status after the load: %v", err)
	}
	if rssErr != nil {
		t.Errorf("sampling azmount's RSS: %v", rssErr)
	}
	if m.exited() {
		t.Fatalf("azmount exited during the load with %d; stderr:\n%s", m.code, m.stderr)
	}

	var timings []string
	for _, r := range readers {
		timings = append(timings, fmt.Sprintf("%s %v", r.name, r.took.Round(time.Millisecond)))
		if r.err != nil {
			t.Errorf("reader %s failed after %v: %v", r.name, r.took.Round(time.Millisecond), r.err)
		}
	}
	t.Logf("16 readers done in %v (%s)", readTime.Round(time.Millisecond), strings.Join(timings, ", "))
	limit := int64(mlCacheBytes + mlRSSSlack)
	t.Logf("azmount --cache-size %s: VmHWM %.1f MiB (%.1f MiB before the load), peak sampled VmRSS %.1f MiB over %d samples; limit %.0f MiB",
		mlCacheFlag, float64(hwm)/(1<<20), float64(startHWM)/(1<<20), float64(peakRSS)/(1<<20), samples, float64(limit)/(1<<20))
	if hwm > limit {
		t.Errorf("azmount's peak RSS (VmHWM) is %d bytes (%.1f MiB), want <= %d (--cache-size %s + %d MiB slack): memory not bounded by the cache?",
			hwm, float64(hwm)/(1<<20), limit, mlCacheFlag, mlRSSSlack>>20)
	}
	if s := m.stderr.String(); strings.Contains(s, "level=ERROR") || strings.Contains(s, "panic") {
		t.Errorf("azmount logged errors under load:\n%s", mlHead(s, 40))
	}

	// Every backup of the changing tree succeeded, while the readers ran.
	if mutateErr != nil {
		t.Errorf("changing the second tree: %v", mutateErr)
	}
	var newPoints []string
	var btimes []string
	for i, b := range backups {
		if b.err != nil {
			t.Fatalf("backup %d of the changing tree: %v\n%s", i, b.err, b.r)
		}
		if b.r.code != 0 {
			t.Fatalf("backup %d of the changing tree: exit %d\n%s", i, b.r.code, b.r)
		}
		out := parseBackup(t, b.r) // fails for a partial point
		newPoints = append(newPoints, out.Point)
		btimes = append(btimes, b.took.Round(time.Millisecond).String())
	}
	if len(backups) < 2 {
		t.Fatalf("only %d backups of the changing tree ran, want at least 2", len(backups))
	}
	t.Logf("%d backups of the changing tree during the load (%s); load phase %v", len(backups), strings.Join(btimes, ", "), loadTime.Round(time.Millisecond))

	// The copies match the source: content, modes, owners, times, links.
	for i := range 4 {
		compareTrees(t, fmt.Sprintf("cp -a copy %d", i), want, snapshot(t, filepath.Join(copies, fmt.Sprintf("copy%d", i))), compareOpts{})
	}

	// The vault is intact and holds the new points; the last one mounts
	// with the changing tree as it is now (it has not changed since).
	checkStart := time.Now()
	e.mustAzfs("check", "--read-data")
	t.Logf("check --read-data: %v", time.Since(checkStart).Round(time.Millisecond))
	listed := make(map[string]bool)
	for _, p := range e.points() {
		listed[p.ID] = true
	}
	for _, id := range append([]string{first.Point}, newPoints...) {
		if !listed[id] {
			t.Errorf("point %s is not listed by azfs points", id)
		}
	}
	last := e.mount(mkdir(t, filepath.Join(e.dir, "last")), "--point", newPoints[len(newPoints)-1])
	compareTrees(t, "the last point of the changing tree", snapshot(t, changing.root), snapshot(t, filepath.Join(last.dir, changing.root)), compareOpts{})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestGitInsideMount backs up a git repository made by real git commands,
// mounts the point and runs git in it: fsck --full finds nothing wrong, and
// log -p --all (and a few other read-only commands) print exactly what they
// print on the source repository, without git writing anything.
func TestGitInsideMount(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	repoDir := filepath.Join(src, "repo")
	mlMakeGitRepo(t, repoDir, 42)
	want := snapshot(t, src)
	e.backup(src)
	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt")), "--point", "latest")
	inMount := filepath.Join(m.dir, repoDir)

	if _, err := mlGitRun(inMount, 0, "fsck", "--full", "--strict", "--no-progress"); err != nil {
		t.Errorf("git fsck in the mount: %v", err)
	}
	for _, args := range [][]string{
		{"log", "-p", "--all", "--stat", "--decorate=full", "--date=iso-strict"},
		{"for-each-ref", "--format=%(refname) %(objectname) %(objecttype)"},
		{"cat-file", "--batch-all-objects", "--batch-check"},
		{"status", "--porcelain=v1", "--untracked-files=all"},
	} {
		wantOut, err := mlGitRun(repoDir, 0, args...)
		if err != nil {
			t.Fatalf("on the source: %v", err)
		}
		got, err := mlGitRun(inMount, 0, args...)
		if err != nil {
			t.Errorf("in the mount: %v", err)
			continue
		}
		if got != wantOut {
			t.Errorf("git %s: the mount's output (%d bytes) differs from the source's (%d bytes); first lines:\nmount:\n%s\nsource:\n%s",
				strings.Join(args, " "), len(got), len(wantOut), mlHead(got, 10), mlHead(wantOut, 10))
		}
		if args[0] == "log" {
			commits := mlCommits(got)
			if commits < 30 || !strings.Contains(got, "tag: refs/tags/v1.0") || !strings.Contains(got, "refs/heads/feature") {
				t.Errorf("git log -p --all in the mount: %d commits; want >= 30 commits, tag v1.0 and branch feature", commits)
			}
			t.Logf("git log -p --all: %d bytes, %d commits", len(got), commits)
		}
		if args[0] == "status" && got != "" {
			t.Errorf("git status in the mount is not clean:\n%s", mlHead(got, 10))
		}
	}
	// The mount as a whole still matches the source. (count-objects -v is
	// not compared: its sizes are st_blocks, which the mount reports from
	// the file sizes, not from 4 KiB blocks of a local file system.)
	compareTrees(t, "the mount", want, snapshot(t, filepath.Join(m.dir, src)), compareOpts{})
}

// mlCommits returns the number of commits in git log output.
func mlCommits(log string) int {
	c := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "commit ") {
			c++
		}
	}
	return c
}

// TestExt4ImageInsideMount backs up a directory holding an ext4 image made
// by mkfs.ext4 -d from a source tree, mounts the point, attaches the image
// in the mount to a read-only loop device, mounts the ext4 file system read
// only and compares it with the source tree: the kernel's block layer and
// ext4 read the image through azmount.
func TestExt4ImageInsideMount(t *testing.T) {
	requireFUSE(t)
	requireRoot(t)
	for _, tool := range []string{"mkfs.ext4", "losetup", "mount", "umount", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" is not installed: "+err.Error())
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		unavailable(t, "no loop devices: "+err.Error())
	}
	e := newEnv(t)
	e.createVault()

	// The tree for the image: sizes around the block size, random and text
	// content, nested directories, symlinks, a hard link, modes, owners.
	// Times are whole seconds: mkfs.ext4 -d copies only the seconds.
	src := filepath.Join(t.TempDir(), "imgsrc")
	rng := rand.New(rand.NewPCG(5, 0x65787434))
	for _, d := range []string{"a/b/c", "empty", "private", "wide"} {
		mkdir(t, filepath.Join(src, d))
	}
	sizes := map[string]int{"zero": 0, "one": 1, "a/block-1": 4095, "a/block": 4096, "a/block+1": 4097,
		"a/b/odd": 12345, "a/b/c/mib": 1 << 20, "a/b/c/five": 5<<20 + 3, "private/key": 300}
	for i := range 40 {
		sizes[fmt.Sprintf("wide/w%02d", i)] = rng.IntN(20 << 10)
	}
	for rel, size := range sizes {
		writeFile(t, filepath.Join(src, rel), randomBytes(size, rng.Uint64()), 0o644)
	}
	writeFile(t, filepath.Join(src, "a/text.txt"), bytes.Repeat([]byte("ext4 inside azfs\n"), 5000), 0o644)
	for link, target := range map[string]string{"rel": "a/b/odd", "abs": "/etc/hostname", "dangling": "x/y/z", "todir": "a/b"} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, "a/block"), filepath.Join(src, "wide/hardlink")); err != nil {
		t.Fatal(err)
	}
	for rel, mode := range map[string]os.FileMode{"private": 0o700, "private/key": 0o600, "a/b/odd": 0o755, "one": 0o640, "a": 0o750} {
		if err := os.Chmod(filepath.Join(src, rel), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(filepath.Join(src, "one"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	var all []string
	if err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		all = append(all, path)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2022, 6, 7, 8, 9, 10, 0, time.UTC).Unix()
	for i := len(all) - 1; i >= 0; i-- { // children before their directory
		ts := []unix.Timespec{{Sec: base + int64(i)*3600}, {Sec: base + int64(i)*86400}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, all[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	want := snapshot(t, src)

	imgDir := filepath.Join(t.TempDir(), "images")
	mkdir(t, imgDir)
	img := filepath.Join(imgDir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, "-b", "4096", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 -d: %v\n%s", err, out)
	}
	imgSHA, err := fileSHA(img)
	if err != nil {
		t.Fatal(err)
	}
	e.backup(imgDir)
	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt")), "--point", "latest")
	inMount := filepath.Join(m.dir, img)
	// e2fsck reads the metadata; the files' data blocks reach the kernel
	// first through the loop device below.
	if out, err := exec.Command("e2fsck", "-f", "-n", inMount).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -f -n on the image in the mount: %v\n%s", err, out)
	}

	// Attach read-only. Cleanups run last-registered first: unmount ext4,
	// then detach the loop device (by its name), then azmount stops.
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", inMount).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup --find --show --read-only %s: %v\n%s", inMount, err, out)
	}
	loopDev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(loopDev, "/dev/loop") {
		t.Fatalf("losetup printed %q, not a loop device", loopDev)
	}
	t.Cleanup(func() { mlDetachLoop(t, loopDev) })
	extDir := mkdir(t, filepath.Join(t.TempDir(), "ext4"))
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "ro,noload", loopDev, extDir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t ext4 -o ro,noload %s %s: %v\n%s", loopDev, extDir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", extDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", extDir, err, out)
			if out, err := exec.Command("umount", "-l", extDir).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v\n%s", extDir, err, out)
			}
		}
	})

	got := snapshot(t, extDir)
	// What ext4 adds: lost+found, and with it one more link to the root
	// and a root directory modified when mkfs made it.
	if lf := got["lost+found"]; lf == nil || lf.typ != unix.S_IFDIR {
		t.Errorf("the ext4 file system has no lost+found directory")
	}
	for rel := range got {
		if rel == "lost+found" || strings.HasPrefix(rel, "lost+found/") {
			delete(got, rel)
		}
	}
	if r := got["."]; r != nil {
		r.nlink--
		r.mtime = want["."].mtime
	}
	compareTrees(t, "the ext4 file system in the image in the mount", want, got, compareOpts{})
	if got, err := fileSHA(inMount); err != nil || got != imgSHA {
		t.Errorf("the image in the mount: sha256 %s (%v), want %s", got, err, imgSHA)
	}
	t.Logf("ext4 image of %d entries read through %s from the mount; equal to the source", len(want), loopDev)
}

// mlDetachLoop detaches loop device dev and waits until the kernel has
// released it (its backing file is gone from sysfs), so that the FUSE mount
// under it can unmount.
func mlDetachLoop(t *testing.T, dev string) {
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		return
	}
	backing := filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(backing); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s still has a backing file 10 s after losetup -d", dev)
}

// mlHead returns the first n lines of s.
func mlHead(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

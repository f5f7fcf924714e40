// Package integration runs the azfs and azmount binaries end to end: vaults
// on local disk, backups of real trees, and recovery points mounted through
// FUSE and read with ordinary tools.
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/mountinfo"
)

// Binaries built once by TestMain.
var (
	azfsBin    string
	azmountBin string
)

// cmdTimeout bounds every command a test runs to completion.
const cmdTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "integration: cannot find the module root (go env GOMOD = %q): %v\n", gomod, err)
		return 1
	}
	bin, err := os.MkdirTemp("", "azfs-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/azfs", "./cmd/azmount")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/azfs ./cmd/azmount: %v\n%s", err, out)
		return 1
	}
	azfsBin = filepath.Join(bin, "azfs")
	azmountBin = filepath.Join(bin, "azmount")
	return m.Run()
}

// unavailable fails the test on CI and skips it elsewhere.
func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireFUSE stops the test when this machine cannot mount FUSE file
// systems.
func requireFUSE(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = append(missing, "/dev/fuse: "+err.Error())
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		missing = append(missing, "fusermount3: "+err.Error())
	}
	if len(missing) > 0 {
		unavailable(t, "FUSE is not available: "+strings.Join(missing, "; "))
	}
}

// requireRoot stops the test unless it runs as root (mknod, chown).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "this test needs root (mknod, chown to other users)")
	}
}

// env is one isolated azfs installation: its own config (keyring), cache
// and home directories, and usually one vault.
type env struct {
	t        *testing.T
	dir      string
	cfgDir   string
	cacheDir string
	home     string
	vault    string // vault path (after createVault)
	// vaultDir is where the vault's files are on this machine's disk when
	// that is not vault itself: the share's directory on the test smbd's
	// disk for a share vault.
	vaultDir string
	passFile string   // generated passphrase file (after createVault)
	extraEnv []string // KEY=VALUE, over the test process's environment
}

// newEnv returns an env with fresh, empty state directories.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		t:        t,
		dir:      dir,
		cfgDir:   filepath.Join(dir, "config"),
		cacheDir: filepath.Join(dir, "cache"),
		home:     filepath.Join(dir, "home"),
	}
	for _, d := range []string{e.cfgDir, e.cacheDir, e.home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// environ returns the process environment with azfs's state redirected to
// the env's directories.
func (e *env) environ() []string {
	drop := map[string]bool{"AZFS_CONFIG_DIR": true, "AZFS_CACHE_DIR": true, "HOME": true, "XDG_CONFIG_HOME": true, "XDG_CACHE_HOME": true,
		"AZFS_VAULT": true, "AZFS_PASSPHRASE_FILE": true, "AZFS_PASSPHRASE_COMMAND": true}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	out = append(out, "AZFS_CONFIG_DIR="+e.cfgDir, "AZFS_CACHE_DIR="+e.cacheDir, "HOME="+e.home)
	return append(out, e.extraEnv...) // exec keeps the last value of a key
}

// command returns bin with args in the env, in a session of its own (so it
// has no terminal to prompt on).
func (e *env) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, bin, args...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = e.environ()
	cmd.Dir = e.dir
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// result is what a finished command produced.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// stderrLines returns the non-empty lines of stderr.
func (r result) stderrLines() []string {
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// run runs bin to completion (bounded by cmdTimeout).
func (e *env) run(bin string, args ...string) result {
	e.t.Helper()
	return e.runInput(nil, bin, args...)
}

// runInput is run with stdin (nil: none) as the command's standard input.
func (e *env) runInput(stdin io.Reader, bin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, bin, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{filepath.Base(bin)}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.code = exitErr.ExitCode()
	case ctx.Err() != nil:
		e.t.Fatalf("%s did not finish within %v\n%s", strings.Join(r.args, " "), cmdTimeout, r)
	default:
		e.t.Fatalf("run %s: %v\n%s", strings.Join(r.args, " "), err, r)
	}
	return r
}

// azfs runs the azfs command.
func (e *env) azfs(args ...string) result {
	e.t.Helper()
	return e.run(azfsBin, args...)
}

// mustAzfs runs the azfs command and fails the test unless it exits 0.
func (e *env) mustAzfs(args ...string) result {
	e.t.Helper()
	r := e.azfs(args...)
	if r.code != 0 {
		e.t.Fatalf("want exit 0, got:\n%s", r)
	}
	return r
}

// createVault creates the env's vault with a generated passphrase; it
// becomes the default vault of the env's keyring.
func (e *env) createVault() {
	e.t.Helper()
	e.vault = filepath.Join(e.dir, "vault")
	e.passFile = filepath.Join(e.dir, "passphrase")
	e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine)
	fi, err := os.Stat(filepath.Join(e.cfgDir, "keyring.json"))
	if err != nil {
		e.t.Fatalf("vault create left no keyring in AZFS_CONFIG_DIR: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		e.t.Errorf("keyring mode = %#o, want 0600", perm)
	}
}

// disk returns the directory of the vault's files on this machine's disk.
func (e *env) disk() string {
	if e.vaultDir != "" {
		return e.vaultDir
	}
	return e.vault
}

// testMachine is the name the env's machine registers under.
const testMachine = "testbox"

// area returns the directory of the env machine's area in the vault, where
// its packs, index files and points are.
func (e *env) area() string {
	return filepath.Join(e.disk(), "machines", testMachine)
}

// backupStats is the "stats" object of `azfs backup --json`.
type backupStats struct {
	Files          uint64 `json:"files"`
	Dirs           uint64 `json:"dirs"`
	Others         uint64 `json:"others"`
	FilesNew       uint64 `json:"files_new"`
	FilesChanged   uint64 `json:"files_changed"`
	FilesUnchanged uint64 `json:"files_unchanged"`
	Errors         uint64 `json:"errors"`
	Bytes          uint64 `json:"bytes"`
	BytesRead      uint64 `json:"bytes_read"`
	BytesStored    uint64 `json:"bytes_stored"`
	Xattrs         uint64 `json:"xattrs"`
	DurationNS     int64  `json:"duration_ns"`

	ChangedWhileRead uint64 `json:"changed_while_read"`
	Images           uint64 `json:"images"`
	Devices          uint64 `json:"devices"`
}

// backupOut is the output of `azfs backup --json`.
type backupOut struct {
	Point   string      `json:"point"`
	Machine string      `json:"machine"`
	Time    time.Time   `json:"time"`
	Partial bool        `json:"partial"`
	Stats   backupStats `json:"stats"`
	Seconds float64     `json:"seconds"`
	Storage struct {
		Saves   uint64 `json:"saves"`
		BytesUp uint64 `json:"bytes_up"`
	} `json:"storage"`
	PeakRSS uint64 `json:"peak_rss_bytes"` // VmHWM
}

// pointRow is one element of `azfs points --json`.
type pointRow struct {
	ID      string    `json:"id"`
	Machine string    `json:"machine"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
	Files   uint64    `json:"files"`
	Bytes   uint64    `json:"bytes"`
	Partial bool      `json:"partial"`
}

// backup backs up paths into the default vault, expecting a complete point.
func (e *env) backup(paths ...string) backupOut {
	e.t.Helper()
	r := e.azfs(append([]string{"backup", "--json"}, paths...)...)
	if r.code != 0 {
		e.t.Fatalf("backup: want exit 0, got:\n%s", r)
	}
	return parseBackup(e.t, r)
}

// backupVersions backs src up n times, rewriting src/name before each run
// (its content the run's number), a second apart so that the points have
// distinct times (and directories in a mount); it returns their IDs.
func (e *env) backupVersions(src, name string, n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		writeFile(e.t, filepath.Join(src, name), []byte{byte(i)}, 0o644)
		ids = append(ids, e.backup(src).Point)
		time.Sleep(1100 * time.Millisecond)
	}
	return ids
}

func parseBackup(t *testing.T, r result) backupOut {
	t.Helper()
	var out backupOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("backup --json printed invalid JSON: %v\n%s", err, r)
	}
	if len(out.Point) != 64 || strings.Trim(out.Point, "0123456789abcdef") != "" {
		t.Fatalf("backup --json: point %q is not 64 hex digits\n%s", out.Point, r)
	}
	if out.Partial || out.Stats.Errors != 0 {
		t.Fatalf("backup is partial (%d errors)\n%s", out.Stats.Errors, r)
	}
	return out
}

// points lists the vault's points.
func (e *env) points() []pointRow {
	e.t.Helper()
	r := e.mustAzfs("points", "--json")
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	return rows
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mount is a running azmount process.
type mount struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	code   int           // exit code, valid after done (-1: killed by a signal)
}

// mountTimeout bounds waiting for a mount to become ready and for azmount to
// exit after a signal.
const mountTimeout = 30 * time.Second

// mount starts azmount with args on dir and waits until it is mounted. The
// mount is unmounted when the test ends.
func (e *env) mount(dir string, args ...string) *mount {
	e.t.Helper()
	m := e.startMount(dir, args...)
	if err := m.waitReady(); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// startMount starts azmount with args on dir without waiting, and registers
// its unmount for the end of the test.
func (e *env) startMount(dir string, args ...string) *mount {
	e.t.Helper()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	m := &mount{t: e.t, dir: dir, stderr: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = e.command(nil, azmountBin, append(args, dir)...)
	m.cmd.Stderr = m.stderr
	// Should the test binary die without its cleanups (a test timeout),
	// azmount still gets a signal and unmounts.
	m.cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := m.cmd.Start(); err != nil {
		e.t.Fatalf("start azmount: %v", err)
	}
	go func() {
		err := m.cmd.Wait()
		m.code = 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			m.code = exitErr.ExitCode()
		} else if err != nil {
			m.code = -1
		}
		close(m.done)
	}()
	e.t.Cleanup(m.cleanup)
	return m
}

// exited reports whether the process has exited.
func (m *mount) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// waitReady waits until azmount reports the mount ready and the kernel lists
// it, or fails if azmount exits first.
func (m *mount) waitReady() error {
	deadline := time.Now().Add(mountTimeout)
	for time.Now().Before(deadline) {
		if m.exited() {
			return fmt.Errorf("azmount %s exited with %d before mounting; stderr:\n%s", strings.Join(m.cmd.Args[1:], " "), m.code, m.stderr)
		}
		if strings.Contains(m.stderr.String(), "mounted read-only at") && isMounted(m.t, m.dir) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("azmount %s not ready after %v; stderr:\n%s", strings.Join(m.cmd.Args[1:], " "), mountTimeout, m.stderr)
}

// stop sends sig and waits for azmount to exit; it returns the exit code,
// or an error if it does not exit in time.
func (m *mount) stop(sig os.Signal) (int, error) {
	if m.exited() {
		return m.code, nil
	}
	if err := m.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("signal azmount: %w", err)
	}
	select {
	case <-m.done:
		return m.code, nil
	case <-time.After(mountTimeout):
		return 0, fmt.Errorf("azmount did not exit within %v of %v; stderr:\n%s", mountTimeout, sig, m.stderr)
	}
}

// cleanup unmounts: SIGINT to azmount, which must exit 0 and leave nothing
// mounted; otherwise it is killed and the mount lazily unmounted.
func (m *mount) cleanup() {
	code, err := m.stop(os.Interrupt)
	switch {
	case err != nil:
		m.t.Error(err)
		_ = m.cmd.Process.Kill() // our own child, by its PID
		<-m.done
	case code != 0 && m.wasReady():
		m.t.Errorf("azmount exited with %d after SIGINT (want 0); stderr:\n%s", code, m.stderr)
	}
	if isMounted(m.t, m.dir) {
		if m.wasReady() && err == nil {
			m.t.Errorf("%s is still mounted after azmount exited", m.dir)
		}
		if out, err := exec.Command("fusermount3", "-u", "-z", m.dir).CombinedOutput(); err != nil {
			m.t.Errorf("fusermount3 -u -z %s: %v\n%s", m.dir, err, out)
		}
	}
}

// wasReady reports whether azmount announced a mount.
func (m *mount) wasReady() bool {
	return strings.Contains(m.stderr.String(), "mounted read-only at")
}

// waitStderr waits until azmount's stderr contains s.
func (m *mount) waitStderr(s string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(m.stderr.String(), s) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// isMounted reports whether dir is a mount point in this process's mount
// namespace, from /proc/self/mountinfo.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	mounts, err := mountinfo.Self()
	if err != nil {
		t.Fatalf("read mountinfo: %v", err)
	}
	_, ok := mountinfo.Top(mounts, filepath.Clean(dir))
	return ok
}

// mkdir makes a directory for a mountpoint or a copy.
func mkdir(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRandom writes size pseudo-random bytes from seed to path and returns
// their SHA-256.
func writeRandom(t *testing.T, path string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	r := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = r.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	key[31] = 0xa5
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// writeFile writes data to path with mode perm.
func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

// fileSHA returns the SHA-256 of the file at path, reading it without
// updating its atime.
func fileSHA(path string) (string, error) {
	fd, err := openRetrying(path, unix.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if errors.Is(err, unix.EPERM) {
		fd, err = openRetrying(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	}
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openRetrying opens path as open(2) with flags, again when a signal
// interrupts it (as os.Open does): an open through a FUSE mount waits for
// the file system, and the Go runtime's preemption signals interrupt it.
func openRetrying(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// vaultFiles returns the size of every object under the vault's dir prefix
// ("data", "index", ...), keyed by path relative to the vault; temporary
// files of interrupted writes are left out.
func vaultFiles(t *testing.T, vault, prefix string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	root := filepath.Join(vault, prefix)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // not created yet, or a temporary file gone meanwhile
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(vault, path)
		out[rel] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// sum adds up the sizes in m.
func sum(m map[string]int64) int64 {
	var n int64
	for _, s := range m {
		n += s
	}
	return n
}

// isHex64 reports whether s is 64 lowercase hex digits (an object name).
func isHex64(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// entry is what a tree walk records about one file system entry.
type entry struct {
	typ    uint32 // S_IFMT bits
	mode   uint32 // permission, setuid, setgid and sticky bits
	uid    uint32
	gid    uint32
	size   int64
	nlink  uint64
	ino    uint64
	blocks int64
	mtime  int64 // ns since the epoch
	atime  int64
	rdev   uint64
	target string            // symlinks
	sha    string            // regular files
	xattrs map[string]string // name -> value
	err    error             // reading the content or listing failed
}

// snapshot walks root and records every entry by its path relative to root
// ("." for root). It never updates atimes (O_NOATIME) and lstats an entry
// before reading it. Read errors are recorded in entry.err, not fatal.
func snapshot(t *testing.T, root string) map[string]*entry {
	t.Helper()
	out := make(map[string]*entry)
	var walk func(rel string)
	walk = func(rel string) {
		path := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			t.Fatalf("lstat %s: %v", path, err)
		}
		e := &entry{
			typ:    st.Mode & unix.S_IFMT,
			mode:   st.Mode & 0o7777,
			uid:    st.Uid,
			gid:    st.Gid,
			size:   st.Size,
			nlink:  st.Nlink,
			ino:    st.Ino,
			blocks: st.Blocks,
			mtime:  st.Mtim.Nano(),
			atime:  st.Atim.Nano(),
			rdev:   st.Rdev,
			xattrs: listXattrs(t, path),
		}
		out[rel] = e
		switch e.typ {
		case unix.S_IFREG:
			e.sha, e.err = fileSHA(path)
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				t.Fatalf("readlink %s: %v", path, err)
			}
			e.target = target
			restoreAtime(path, &st)
		case unix.S_IFDIR:
			names, err := readDirNames(path)
			if err != nil {
				e.err = err
				return
			}
			for _, n := range names {
				walk(filepath.Join(rel, n))
			}
		}
	}
	walk(".")
	return out
}

// restoreAtime puts back the atime of the symlink at path, which readlink
// may have updated, so that a snapshot leaves the tree as it found it (a
// later backup must see the atime the snapshot recorded). before is the
// symlink's lstat from before readlink. Failures (a read-only mount) are
// ignored: there the atime cannot change either.
func restoreAtime(path string, before *unix.Stat_t) {
	var after unix.Stat_t
	if unix.Lstat(path, &after) != nil || after.Atim == before.Atim {
		return
	}
	ts := []unix.Timespec{before.Atim, {Nsec: unix.UTIME_OMIT}}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// readDirNames lists a directory without updating its atime.
func readDirNames(path string) ([]string, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// listXattrs returns the extended attributes of path (not following
// symlinks).
func listXattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	size, err := unix.Llistxattr(path, nil)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		t.Fatalf("llistxattr %s: %v", path, err)
	}
	if size == 0 {
		return nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", path, err)
	}
	out := make(map[string]string)
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" {
			continue
		}
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", path, name, err)
		}
		val := make([]byte, n)
		if n > 0 {
			if n, err = unix.Lgetxattr(path, name, val); err != nil {
				t.Fatalf("lgetxattr %s %s: %v", path, name, err)
			}
		}
		out[name] = string(val[:n])
	}
	return out
}

// compareOpts select what compareTrees checks beyond type, mode,
// ownership, size, link count, mtime, symlink target, content and device.
type compareOpts struct {
	atime       bool   // compare atimes
	xattrPrefix string // compare only xattrs with this prefix ("" = all)
}

// compareTrees reports every difference between want and got, two
// snapshots, including hard-link identity: entries sharing an inode in want
// must share one in got, and only those.
func compareTrees(t *testing.T, what string, want, got map[string]*entry, opts compareOpts) {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if want[p] == nil {
			add("%q: present in %s only", p, what)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, g := want[p], got[p]
		if g == nil {
			add("%q: missing from %s", p, what)
			continue
		}
		if w.typ != g.typ {
			add("%q: type %#o, want %#o", p, g.typ, w.typ)
			continue
		}
		if g.err != nil {
			add("%q: reading it failed: %v", p, g.err)
		}
		if w.mode != g.mode {
			add("%q: mode %#o, want %#o", p, g.mode, w.mode)
		}
		if w.uid != g.uid || w.gid != g.gid {
			add("%q: owner %d:%d, want %d:%d", p, g.uid, g.gid, w.uid, w.gid)
		}
		if w.typ != unix.S_IFDIR && w.size != g.size {
			add("%q: size %d, want %d", p, g.size, w.size)
		}
		if w.nlink != g.nlink {
			add("%q: nlink %d, want %d", p, g.nlink, w.nlink)
		}
		if w.mtime != g.mtime {
			add("%q: mtime %s, want %s", p, fmtNanos(g.mtime), fmtNanos(w.mtime))
		}
		if opts.atime && w.atime != g.atime {
			hint := ""
			if w.typ == unix.S_IFDIR {
				hint = " (directory listed before its atime was recorded?)"
			}
			add("%q: atime %s, want %s%s", p, fmtNanos(g.atime), fmtNanos(w.atime), hint)
		}
		if w.target != g.target {
			add("%q: symlink target %q, want %q", p, g.target, w.target)
		}
		if w.sha != g.sha && g.err == nil {
			add("%q: content sha256 %s, want %s", p, g.sha, w.sha)
		}
		if (w.typ == unix.S_IFCHR || w.typ == unix.S_IFBLK) && w.rdev != g.rdev {
			add("%q: rdev %d:%d, want %d:%d", p, unix.Major(g.rdev), unix.Minor(g.rdev), unix.Major(w.rdev), unix.Minor(w.rdev))
		}
		wx, gx := filterXattrs(w.xattrs, opts.xattrPrefix), filterXattrs(g.xattrs, opts.xattrPrefix)
		if !equalMaps(wx, gx) {
			add("%q: xattrs %q, want %q", p, gx, wx)
		}
	}
	if w, g := linkGroups(want), linkGroups(got); !equalMaps(w, g) {
		add("hard links: %s has groups %v, want %v", what, sortedValues(g), sortedValues(w))
	}
	if len(problems) > 0 {
		const max = 40
		more := ""
		if len(problems) > max {
			more = fmt.Sprintf("\n... and %d more", len(problems)-max)
			problems = problems[:max]
		}
		t.Errorf("%s differs from the source in %d ways:\n%s%s", what, len(problems), strings.Join(problems, "\n"), more)
	}
}

func fmtNanos(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func filterXattrs(x map[string]string, prefix string) map[string]string {
	out := make(map[string]string)
	for k, v := range x {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// linkGroups maps each non-directory path that shares its inode with
// another entry to the sorted list of all paths sharing that inode.
func linkGroups(snap map[string]*entry) map[string]string {
	byIno := make(map[uint64][]string)
	for p, e := range snap {
		if e.typ != unix.S_IFDIR {
			byIno[e.ino] = append(byIno[e.ino], p)
		}
	}
	out := make(map[string]string)
	for _, ps := range byIno {
		if len(ps) < 2 {
			continue
		}
		sort.Strings(ps)
		g := strings.Join(ps, " = ")
		for _, p := range ps {
			out[p] = g
		}
	}
	return out
}

func sortedValues(m map[string]string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// checkOneLineError checks the shape of a failing command's output: a
// non-zero exit, exactly one line on stderr starting with prefix, and no
// Go panic or stack dump.
func checkOneLineError(t *testing.T, r result, prefix string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("want a non-zero exit, got:\n%s", r)
	}
	lines := r.stderrLines()
	if len(lines) != 1 {
		t.Errorf("want exactly one line on stderr, got %d:\n%s", len(lines), r)
	} else if !strings.HasPrefix(lines[0], prefix) {
		t.Errorf("want the error line to start with %q, got %q", prefix, lines[0])
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(r.stderr+r.stdout, bad) {
			t.Errorf("output mentions %q:\n%s", bad, r)
		}
	}
}

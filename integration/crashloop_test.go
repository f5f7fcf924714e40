package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	azkeys "github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/local"
)

// crashRuns is the number of backup runs TestCrashLoop makes in its short
// form; AZFS_TORTURE=N (make torture) makes N.
const crashRuns = 8

// killPhase is when a run of the crash loop is killed.
type killPhase int

const (
	runToEnd       killPhase = iota // not killed
	killEarly                       // within the first 40 ms: keys, index, walk
	killUploading                   // soon after the run starts writing packs
	killNearCommit                  // around the time a whole run takes
)

func (k killPhase) String() string {
	return [...]string{"complete", "early", "uploading", "near-commit"}[k]
}

// crashRun is one backup run of the crash loop.
type crashRun struct {
	n          int
	phase      killPhase
	start, end time.Time
	snap       map[string]*entry // the tree as it was during the run
	point      string            // the point it printed, if it completed
}

// TestCrashLoop backs up a changing tree again and again, killing most runs
// with SIGKILL at a random moment (early, while packs upload, near the
// commit), then checks the vault: check --read-data passes, every listed
// point is complete and mounts with exactly the tree as it was when its run
// started, every completed run's point is listed, and after a last,
// uninterrupted backup no blob is stored in two packs.
//
// The random choices come from a seed that is logged; AZFS_CRASHLOOP_SEED
// replays one. AZFS_TORTURE=N runs N backups instead of crashRuns.
func TestCrashLoop(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	crashLoop(t, e, trialRounds(t, "AZFS_TORTURE", crashRuns))
}

// TestShareCrashLoop is TestCrashLoop's short form on a vault on an SMB
// share (a real smbd): backups killed early, while packs upload and near
// the commit leave the share's vault whole and reusable.
func TestShareCrashLoop(t *testing.T) {
	requireFUSE(t)
	e := newShareEnv(t, "vault")
	e.create()
	e.vaultDir = e.dir
	crashLoop(t, e.env, trialRounds(t, "AZFS_SHARE_TORTURE", crashRuns/2))
}

// crashLoop runs the crash loop's runs backups of a changing tree into e's
// vault, then checks it (see TestCrashLoop).
func crashLoop(t *testing.T, e *env, runs int) {
	seed := trialSeed(t, "AZFS_CRASHLOOP_SEED")
	t.Logf("crash loop: %d runs, seed %d (replay with AZFS_CRASHLOOP_SEED=%d)", runs, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6372617368))

	src := filepath.Join(t.TempDir(), "src")
	tree := newCrashTree(t, src, rng)

	var history []*crashRun
	var full time.Duration // how long the last complete run took
	counts := make(map[killPhase]int)
	var phases []int // each phase once per four runs, in random order
	for i := range runs {
		if i > 0 {
			tree.mutate()
		}
		if len(phases) == 0 {
			phases = rng.Perm(4)
		}
		phase := killPhase(phases[0])
		phases = phases[1:]
		if phase == killNearCommit && full == 0 {
			phase = killUploading
		}
		run := crashBackup(t, e, src, i, phase, full, rng)
		history = append(history, run)
		if run.point != "" {
			full = run.end.Sub(run.start)
			if run.phase != runToEnd {
				t.Logf("run %d: completed before the %s kill", i, run.phase)
				run.phase = runToEnd
			}
		}
		counts[run.phase]++
	}
	tree.mutate()
	last := crashBackup(t, e, src, runs, runToEnd, 0, rng)
	history = append(history, last)
	counts[runToEnd]++
	t.Logf("runs: %d complete (with the last), %d killed early, %d while uploading, %d near the commit",
		counts[runToEnd], counts[killEarly], counts[killUploading], counts[killNearCommit])

	if r := e.azfs("check", "--read-data"); r.code != 0 || len(r.stderrLines()) != 1 {
		t.Errorf("check --read-data after the crash loop: want exit 0 and one summary line, got:\n%s", r)
	} else {
		t.Logf("%s", strings.TrimSpace(r.stderr))
	}
	verifyCrashPoints(t, e, src, history)
	checkNoBlobTwice(t, e)
}

// trialRounds returns the number of rounds a seeded trial makes: the
// positive number in the environment variable name, else def.
func trialRounds(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of rounds", name, s)
	}
	return n
}

// trialSeed returns the seed of a seeded trial: the one the environment
// variable name replays, else a new one.
func trialSeed(t *testing.T, name string) uint64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// crashBackup starts a backup of src and, unless phase is runToEnd, kills
// it with SIGKILL at a random moment of that phase. full is how long a
// complete run last took (0: none yet). It returns the run with the tree's
// snapshot from before it started.
func crashBackup(t *testing.T, e *env, src string, n int, phase killPhase, full time.Duration, rng *rand.Rand) *crashRun {
	t.Helper()
	run := &crashRun{n: n, phase: phase, snap: snapshot(t, src)}
	dataDir := filepath.Join(e.area(), "data")
	filesBefore := countFiles(t, dataDir)
	var delay time.Duration
	switch phase {
	case killEarly:
		delay = time.Duration(rng.IntN(40)) * time.Millisecond
	case killUploading:
		delay = time.Duration(rng.IntN(60)) * time.Millisecond
	case killNearCommit:
		delay = time.Duration(float64(full) * (0.75 + 0.35*rng.Float64()))
	}

	cmd := e.command(nil, azfsBin, "backup", "--json", src)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	run.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	exited := false
	if phase == killUploading {
		// Wait for this run's first pack upload (a temporary file or a
		// pack), then a little more.
	poll:
		for {
			if countFiles(t, dataDir) > filesBefore {
				break
			}
			select {
			case err = <-done:
				exited = true
				break poll
			case <-time.After(time.Millisecond):
			}
		}
	}
	if !exited {
		timeout := cmdTimeout
		if phase != runToEnd {
			timeout = delay
		}
		select {
		case err = <-done:
		case <-time.After(timeout):
			if phase == runToEnd {
				_ = cmd.Process.Kill() // our own child, by its PID
				<-done
				t.Fatalf("run %d: backup did not finish within %v; stderr:\n%s", n, cmdTimeout, stderr)
			}
			_ = cmd.Process.Kill() // our own child, by its PID
			err = <-done
		}
	}
	run.end = time.Now()
	r := result{args: cmd.Args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		run.point = parseBackup(t, r).Point
		t.Logf("run %d (%s): point %s in %v", n, phase, run.point[:8], run.end.Sub(run.start).Round(time.Millisecond))
	case errors.As(err, &exitErr) && !exitErr.Exited():
		t.Logf("run %d (%s): killed after %v", n, phase, run.end.Sub(run.start).Round(time.Millisecond))
	default:
		t.Fatalf("run %d (%s): backup failed: %v\n%s", n, phase, err, r)
	}
	return run
}

// verifyCrashPoints checks that the vault lists exactly the points of the
// runs that completed, plus possibly points of runs killed after their
// commit, each complete, and that each mounts with its run's tree.
func verifyCrashPoints(t *testing.T, e *env, src string, history []*crashRun) {
	t.Helper()
	r := e.mustAzfs("points", "--json")
	if r.stderr != "" {
		t.Errorf("points --json warned (a damaged or unreadable point?):\n%s", r.stderr)
	}
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	listed := make(map[string]bool)
	for _, p := range rows {
		listed[p.ID] = true
	}
	for _, run := range history {
		if run.point != "" && !listed[run.point] {
			t.Errorf("run %d printed point %s, which points does not list", run.n, run.point)
		}
	}
	killedCommits := 0
	for i, p := range rows {
		if p.Partial {
			t.Errorf("point %s is partial", p.ID)
		}
		run := runAt(history, p.Time)
		if run == nil {
			t.Errorf("point %s (time %s) was taken by no run of the loop", p.ID, p.Time.Format(time.RFC3339Nano))
			continue
		}
		if run.point == "" {
			killedCommits++
			t.Logf("point %s was committed by run %d, killed (%s) after its commit", p.ID[:8], run.n, run.phase)
		} else if run.point != p.ID {
			t.Errorf("point %s has the time of run %d, which committed %s", p.ID, run.n, run.point)
			continue
		}
		m := e.mount(mkdir(t, filepath.Join(e.dir, fmt.Sprintf("mnt%d", i))), "--point", p.ID)
		got := snapshot(t, filepath.Join(m.dir, src))
		compareTrees(t, fmt.Sprintf("point %s of run %d", p.ID[:8], run.n), run.snap, got, compareOpts{})
		m.cleanup()
	}
	t.Logf("verified %d points (%d committed by runs killed after the commit)", len(rows), killedCommits)
}

// countFiles returns how many files there are under dir, temporary files
// included.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil // not created yet, or a temporary file gone meanwhile
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return n
}

// runAt returns the run that was going at time at, or nil.
func runAt(history []*crashRun, at time.Time) *crashRun {
	for _, run := range history {
		if !at.Before(run.start) && !at.After(run.end) {
			return run
		}
	}
	return nil
}

// checkNoBlobTwice reads the trailer of every pack of e's machine and
// fails if a blob is stored in more than one place.
func checkNoBlobTwice(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	v := ownerOpener(t, e)()
	packs, err := v.ListPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	where := make(map[azkeys.ID][]string)
	blobs := 0
	for _, id := range packs {
		entries, _, err := v.PackTrailer(ctx, id)
		if err != nil {
			t.Errorf("pack %s: %v", id.Short(), err)
			continue
		}
		for _, en := range entries {
			where[en.ID] = append(where[en.ID], id.Short())
		}
		blobs += len(entries)
	}
	var twice []string
	for id, ps := range where {
		if len(ps) > 1 {
			twice = append(twice, fmt.Sprintf("%s in %v", id.Short(), ps))
		}
	}
	sort.Strings(twice)
	t.Logf("%d packs hold %d blobs, %d distinct", len(packs), blobs, len(where))
	if len(twice) > 0 {
		t.Errorf("%d blobs are stored more than once:\n%s", len(twice), strings.Join(twice, "\n"))
	}
}

// ownerOpener returns a function that opens e's machine area in process
// with the owner's keys (unlocked once, from e's passphrase), each time
// anew, its index not loaded.
func ownerOpener(t *testing.T, e *env) func() *repo.Area {
	t.Helper()
	ctx := context.Background()
	st, err := local.Open(e.disk())
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := os.ReadFile(e.passFile)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := root.UnlockOwner(ctx, azkeys.Passphrase(strings.TrimRight(string(pass), "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return func() *repo.Area {
		t.Helper()
		v, err := root.OpenMachineAsOwner(ctx, testMachine, owner)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// crashTree is the changing source tree of the crash loop: many small files
// in a few directories, some large incompressible ones, a few symlinks.
type crashTree struct {
	t     *testing.T
	root  string
	rng   *rand.Rand
	small []string // relative paths of the small files
	large []string // relative paths of the large files
	next  int      // for fresh names and content seeds
	// A large file has largeMin bytes plus up to largeSpread more.
	largeMin, largeSpread int
}

// newCrashTree creates the first version of the tree under root, its large
// files of 4 to 16 MiB.
func newCrashTree(t *testing.T, root string, rng *rand.Rand) *crashTree {
	t.Helper()
	return newSizedTree(t, root, rng, 4<<20, 12<<20)
}

// newSizedTree creates the first version of the tree under root, its large
// files of largeMin bytes plus up to largeSpread more.
func newSizedTree(t *testing.T, root string, rng *rand.Rand, largeMin, largeSpread int) *crashTree {
	t.Helper()
	c := &crashTree{t: t, root: root, rng: rng, largeMin: largeMin, largeSpread: largeSpread}
	for _, d := range []string{"a", "a/deep", "b", "c", "big"} {
		mkdir(t, filepath.Join(root, d))
	}
	for range 150 {
		c.addSmall()
	}
	for range 3 {
		c.addLarge()
	}
	for i := range 3 {
		if err := os.Symlink(c.small[i], filepath.Join(root, fmt.Sprintf("link%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// fresh returns a number not used before.
func (c *crashTree) fresh() int {
	c.next++
	return c.next
}

// smallContent returns new content for a small file: random or text, up to
// 24 KiB, sometimes empty.
func (c *crashTree) smallContent() []byte {
	n := c.rng.IntN(24 << 10)
	if c.rng.IntN(10) == 0 {
		n = 0
	}
	if c.rng.IntN(2) == 0 {
		return randomBytes(n, uint64(c.fresh())<<20)
	}
	var b strings.Builder
	for i := c.fresh(); b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of a compressible text file\n", i)
	}
	return []byte(b.String()[:n])
}

func (c *crashTree) addSmall() {
	dirs := []string{"a", "a/deep", "b", "c"}
	rel := filepath.Join(dirs[c.rng.IntN(len(dirs))], fmt.Sprintf("s%05d", c.fresh()))
	writeFile(c.t, filepath.Join(c.root, rel), c.smallContent(), 0o644)
	c.small = append(c.small, rel)
}

func (c *crashTree) addLarge() {
	rel := filepath.Join("big", fmt.Sprintf("L%05d.bin", c.fresh()))
	size := int64(c.largeMin + c.rng.IntN(c.largeSpread))
	writeRandom(c.t, filepath.Join(c.root, rel), size, uint64(c.fresh())<<32)
	c.large = append(c.large, rel)
}

// pick removes and returns a random element of *list.
func (c *crashTree) pick(list *[]string) string {
	i := c.rng.IntN(len(*list))
	rel := (*list)[i]
	*list = append((*list)[:i], (*list)[i+1:]...)
	return rel
}

// mutate changes the tree between runs: small files added, rewritten,
// deleted, renamed and chmodded; most times a large file added (another
// deleted beyond six), replaced, partly overwritten or renamed.
func (c *crashTree) mutate() {
	t := c.t
	p := func(rel string) string { return filepath.Join(c.root, rel) }
	for range c.rng.IntN(15) {
		c.addSmall()
	}
	for range c.rng.IntN(10) {
		rel := c.small[c.rng.IntN(len(c.small))]
		writeFile(t, p(rel), c.smallContent(), 0o644)
	}
	for range c.rng.IntN(8) {
		if len(c.small) > 20 {
			rel := c.pick(&c.small)
			if err := os.Remove(p(rel)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range c.rng.IntN(6) {
		rel := c.pick(&c.small)
		to := filepath.Join(filepath.Dir(rel), fmt.Sprintf("r%05d", c.fresh()))
		if err := os.Rename(p(rel), p(to)); err != nil {
			t.Fatal(err)
		}
		c.small = append(c.small, to)
	}
	if c.rng.IntN(3) == 0 {
		rel := c.small[c.rng.IntN(len(c.small))]
		if err := os.Chmod(p(rel), os.FileMode(0o600+c.rng.IntN(0o200))); err != nil {
			t.Fatal(err)
		}
	}
	switch c.rng.IntN(5) {
	case 0:
		if len(c.large) >= 6 {
			if err := os.Remove(p(c.pick(&c.large))); err != nil {
				t.Fatal(err)
			}
		}
		c.addLarge()
	case 1:
		// Overwrite 1 MiB in the middle: the rest deduplicates.
		rel := c.large[c.rng.IntN(len(c.large))]
		f, err := os.OpenFile(p(rel), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(randomBytes(1<<20, uint64(c.fresh())<<24), fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	case 2:
		if len(c.large) > 2 {
			if err := os.Remove(p(c.pick(&c.large))); err != nil {
				t.Fatal(err)
			}
		}
		c.addLarge()
	case 3:
		// Rename a large file: its chunks deduplicate under the new name.
		rel := c.pick(&c.large)
		to := filepath.Join("big", fmt.Sprintf("M%05d.bin", c.fresh()))
		if err := os.Rename(p(rel), p(to)); err != nil {
			t.Fatal(err)
		}
		c.large = append(c.large, to)
	}
}

package integration

// The azfs agent (issue 5): the real binary runs scheduled backups on a
// test interval (its hidden --test-interval flag: the policy's schedule
// cannot be shorter than an hour), applies retention after each, keeps
// backups of the machine apart, honours 'azfs schedule disable', and stops
// cleanly on SIGTERM in the middle of a backup.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/internal/hoststate"
)

// testInterval is the agent's schedule in these tests.
const testInterval = "2s"

// agentProc is a running 'azfs agent'.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int // valid after done; -1: killed by a signal
}

// startAgent starts 'azfs agent' on the test interval with args.
func startAgent(t *testing.T, e *env, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, stderr: &syncBuffer{}, done: make(chan struct{})}
	a.cmd = e.command(nil, azfsBin, append([]string{"agent", "--test-interval", testInterval}, args...)...)
	a.cmd.Stderr = a.stderr
	// Should the test binary die without its cleanups, the agent stops too.
	a.cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start azfs agent: %v", err)
	}
	go func() {
		err := a.cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			a.code = exitErr.ExitCode()
		} else if err != nil {
			a.code = -1
		}
		close(a.done)
	}()
	t.Cleanup(func() {
		if code := a.stop(); code != 0 {
			t.Errorf("azfs agent exited with %d after SIGTERM, want 0; log:\n%s", code, a.stderr)
		}
		if t.Failed() {
			t.Logf("agent pid %d log:\n%s", a.cmd.Process.Pid, a.stderr)
		}
	})
	return a
}

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and returns the exit code; an agent that does not
// exit in time is killed and the test fails.
func (a *agentProc) stop() int {
	a.t.Helper()
	if a.exited() {
		return a.code
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		a.t.Errorf("signal azfs agent: %v", err)
	}
	select {
	case <-a.done:
		return a.code
	case <-time.After(30 * time.Second):
		a.t.Errorf("azfs agent did not exit within 30s of SIGTERM; log:\n%s", a.stderr)
		_ = a.cmd.Process.Kill() // our own child, by its PID
		<-a.done
		return a.code
	}
}

// count returns how many times the log holds s.
func (a *agentProc) count(s string) int { return strings.Count(a.stderr.String(), s) }

// waitLog waits until the log holds s at least n times.
func (a *agentProc) waitLog(s string, n int) {
	a.t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for a.count(s) < n {
		if a.exited() {
			a.t.Fatalf("azfs agent exited (%d) before logging %q %d times; log:\n%s", a.code, s, n, a.stderr)
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("azfs agent did not log %q %d times within %v; log:\n%s", s, n, cmdTimeout, a.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log messages of the agent.
const (
	logCommitted = `msg="backup committed"`
	logRetention = `msg="retention applied"`
	logSkipped   = `msg="scheduled backup skipped`
	logWaiting   = `msg="waiting for the backup that is running to end"`
	logCancelled = "backup cancelled"
)

// statusOut is `azfs status --json`.
type statusOut struct {
	VaultID   string `json:"vault_id"`
	Machine   string `json:"machine"`
	ThisHost  bool   `json:"this_host"`
	LastPoint *struct {
		ID string `json:"id"`
	} `json:"last_point"`
	LivePoints *int `json:"live_points"`
	Policy     struct {
		Number int `json:"number"`
	} `json:"policy"`
	NextRun          *time.Time `json:"next_run"`
	AutomaticBackups *bool      `json:"automatic_backups"`
	Agent, Backup    *struct {
		Running bool   `json:"running"`
		PID     int    `json:"pid"`
		What    string `json:"what"`
	}
}

func (e *env) status() statusOut {
	e.t.Helper()
	r := e.mustAzfs("status", "--json")
	var s statusOut
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("status --json printed invalid JSON: %v\n%s", err, r)
	}
	if s.Agent == nil || s.Backup == nil || s.AutomaticBackups == nil || !s.ThisHost {
		e.t.Fatalf("status --json of this host's machine lacks its local state:\n%s", r)
	}
	return s
}

// allPoints counts the machine's points, live and forgotten.
func allPoints(e *env) int {
	return len(e.points()) + len(e.deleted())
}

var storedRe = regexp.MustCompile(logCommitted + `.* stored=(\d+)`)

func TestAgent(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	if err := os.WriteFile(filepath.Join(src, "small.txt"), []byte("scheduled\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Keep the last 2 points: shorter than the default, so it needs a PIN.
	e.mustAzfs(append(keepOnlyLast(2), "--pin", e.pin())...)

	a := startAgent(t, e, src)

	// Scheduled backups commit points; retention after each forgets all
	// but the last two.
	a.waitLog(logCommitted, 3)
	a.waitLog("forgot=1", 1)
	if n := a.count(logRetention); n < 2 {
		t.Errorf("retention applied %d times after %d backups", n, a.count(logCommitted))
	}
	del := e.deleted()
	if len(del) == 0 || del[0].By != "policy 1" {
		t.Errorf("forgotten points %+v, want some forgotten by policy 1", del)
	}
	st := e.status()
	if !st.Agent.Running || st.Agent.PID != a.cmd.Process.Pid || !*st.AutomaticBackups || st.Policy.Number != 1 || st.LastPoint == nil || st.NextRun == nil {
		t.Errorf("status with the agent running: %+v (agent %+v), want the agent's pid %d, enabled, policy 1, a last point, a next run", st, st.Agent, a.cmd.Process.Pid)
	}

	// One agent per machine.
	if r := e.azfs("agent", "--test-interval", testInterval, src); r.code != 1 || !strings.Contains(r.stderr, "is running already") {
		t.Errorf("a second agent: want exit 1, 'is running already'; got:\n%s", r)
	}

	// While another backup of the machine runs (this test holds its lock),
	// an on-demand backup is refused and the agent's scheduled one waits.
	dir := hoststate.StateDir(e.cfgDir, st.VaultID, testMachine)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	lock, err := agent.WaitLock(ctx, dir.BackupLock(), agent.Holder{PID: os.Getpid(), What: "integration test"}, 10*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.azfs("backup", src)
	if want := fmt.Sprintf("a backup of machine %s is running: pid %d (integration test", testMachine, os.Getpid()); r.code != 1 || !strings.Contains(r.stderr, want) || len(r.stderrLines()) != 1 {
		t.Errorf("backup while another runs: want exit 1 and one line with %q; got:\n%s", want, r)
	}
	if st := e.status(); !st.Backup.Running || st.Backup.PID != os.Getpid() {
		t.Errorf("status while a backup runs: backup %+v, want running, pid %d", st.Backup, os.Getpid())
	}
	a.waitLog(logWaiting, 1)
	committed := a.count(logCommitted)
	time.Sleep(500 * time.Millisecond)
	if n := a.count(logCommitted); n != committed {
		t.Errorf("the agent committed a point while another backup held the lock")
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	a.waitLog(logCommitted, committed+1)

	// Disabled: the scheduled backups are skipped; enabled: they resume.
	e.mustAzfs("schedule", "disable")
	a.waitLog(logSkipped, 1)
	committed = a.count(logCommitted)
	points := allPoints(e)
	a.waitLog(logSkipped, 3)
	if n, p := a.count(logCommitted), allPoints(e); n != committed || p != points {
		t.Errorf("while disabled: %d backups committed (want %d), %d points (want %d)", n, committed, p, points)
	}
	if st := e.status(); *st.AutomaticBackups || st.NextRun != nil {
		t.Errorf("status while disabled: automatic_backups %v, next_run %v; want false, null", *st.AutomaticBackups, st.NextRun)
	}
	e.mustAzfs("schedule", "enable")
	a.waitLog(logCommitted, committed+1)

	// SIGTERM in the middle of a backup: exit 0, no point from it.
	var total int64
	for i := range 6 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("big%d.bin", i)), 50<<20, uint64(300+i))
		total += 50 << 20
	}
	before := vaultFiles(t, e.area(), "data")
	landed := waitForNewPack(t, a, e, before)
	committed = a.count(logCommitted)
	if code := a.stop(); code != 0 {
		t.Fatalf("azfs agent exited with %d after SIGTERM during a backup, want 0; log:\n%s", code, a.stderr)
	}
	log := a.stderr.String()
	if !strings.Contains(log, logCancelled) || !strings.Contains(log, `msg="agent stopped"`) {
		t.Errorf("the log does not say the backup was cancelled and the agent stopped:\n%s", log)
	}
	if n := a.count(logCommitted); n != committed {
		t.Fatalf("the backup committed before SIGTERM reached it (make the source bigger); log:\n%s", log)
	}
	if p := allPoints(e); p != committed {
		t.Errorf("%d points after SIGTERM, want %d (one per backup the agent committed)", p, committed)
	}
	if r := e.azfs("check"); r.code != 0 {
		t.Errorf("check after SIGTERM: exit %d\n%s", r.code, r)
	}
	newPacks := sum(vaultFiles(t, e.area(), "data")) - sum(before)
	t.Logf("SIGTERM with %d new pack(s), %d bytes landed", len(landed), newPacks)

	// Restarted, the agent backs up at once (a run was missed meanwhile),
	// reusing the packs that landed, and the vault checks out.
	a2 := startAgent(t, e, src)
	a2.waitLog(logCommitted, 1)
	m := storedRe.FindStringSubmatch(a2.stderr.String())
	if m == nil {
		t.Fatalf("no stored= in the agent's commit line:\n%s", a2.stderr)
	}
	stored, _ := strconv.ParseInt(m[1], 10, 64)
	const slack = 1 << 20
	if stored+newPacks > total+slack {
		t.Errorf("the run after SIGTERM stored %d bytes with %d already landed of %d: the landed packs were not reused", stored, newPacks, total)
	}
	if code := a2.stop(); code != 0 {
		t.Errorf("azfs agent exited with %d after SIGTERM, want 0", code)
	}
	pts := e.points()
	if len(pts) == 0 || pts[len(pts)-1].Bytes < uint64(total) || pts[len(pts)-1].Partial {
		t.Errorf("the last point %+v does not hold the big files (%d bytes)", pts, total)
	}
	if r := e.azfs("check", "--read-data"); r.code != 0 {
		t.Errorf("check --read-data: exit %d\n%s", r.code, r)
	}
}

// waitForNewPack waits until a pack that is not in before has landed while
// the agent runs, and returns the new packs.
func waitForNewPack(t *testing.T, a *agentProc, e *env, before map[string]int64) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for time.Now().Before(deadline) {
		found := make(map[string]int64)
		for name, size := range vaultFiles(t, e.area(), "data") {
			if _, old := before[name]; !old && isHex64(filepath.Base(name)) {
				found[name] = size
			}
		}
		if len(found) > 0 {
			return found
		}
		if a.exited() {
			t.Fatalf("azfs agent exited (%d); log:\n%s", a.code, a.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no pack landed within %v; log:\n%s", cmdTimeout, a.stderr)
	return nil
}

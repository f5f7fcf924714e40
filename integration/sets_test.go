package integration

// Backup sets (issue 13, item 2): retention applies per set, never across
// sets, so a machine's manual points of other paths are never forgotten
// by another set's rules.

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// setRow is the part of `azfs points --json` about sets (and tags, and
// the size of a stream's point).
type setRow struct {
	ID    string   `json:"id"`
	Paths []string `json:"paths"`
	Set   string   `json:"set"`
	Tags  []string `json:"tags"`
	Files uint64   `json:"files"`
	Bytes uint64   `json:"bytes"`
}

func (e *env) setRows(args ...string) []setRow {
	e.t.Helper()
	r := e.mustAzfs(append([]string{"points", "--json"}, args...)...)
	var rows []setRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	return rows
}

// TestRetentionPerSet: the finding. A machine has a small set
// (/etc/ssh, backed up once by hand) and a large one (/etc and a source
// tree, backed up three times after it, the same day): the default policy
// keeps the newest point of the day of each set, so 'policy apply
// --dry-run' forgets the large set's two older points and never the small
// set's only one. A point of a named set (backup --set) is a set of its
// own whatever its paths, shown and selected by 'points'.
func TestRetentionPerSet(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	root := t.TempDir()
	etc, ssh, src := mkdir(t, filepath.Join(root, "etc")), mkdir(t, filepath.Join(root, "etc", "ssh")), mkdir(t, filepath.Join(root, "src"))
	writeFile(t, filepath.Join(ssh, "sshd_config"), []byte("PermitRootLogin no\n"), 0o644)
	small := e.backup(ssh).Point
	var large []string
	for i := range 3 {
		time.Sleep(1100 * time.Millisecond)
		writeFile(t, filepath.Join(src, "main.go"), []byte{byte(i)}, 0o644)
		large = append(large, e.backup(src, etc).Point)
	}
	r := e.mustAzfs("policy", "apply", "--dry-run")
	if got, want := forgetLines(r, "forget"), shortIDs(large[:2]); !slices.Equal(got, want) {
		t.Errorf("policy apply --dry-run would forget %v, want the large set's older points %v (small set %s):\n%s", got, want, small[:8], r)
	}

	time.Sleep(1100 * time.Millisecond)
	e.mustAzfs("backup", "--set", "db", ssh)
	rows := e.setRows()
	if len(rows) != 5 {
		t.Fatalf("points: %d rows, want 5: %+v", len(rows), rows)
	}
	db := rows[4].ID
	for i, r := range rows {
		if want := map[bool]string{true: "db", false: ""}[i == 4]; r.Set != want {
			t.Errorf("point %d: set %q, want %q", i, r.Set, want)
		}
	}
	if got := e.setRows("--set", "db"); len(got) != 1 || got[0].ID != db {
		t.Errorf("points --set db: %+v, want the one point of set db", got)
	}
	if out := e.mustAzfs("points").stdout; !strings.Contains(out, "SET") || !strings.Contains(out, " db ") {
		t.Errorf("points does not show the set:\n%s", out)
	}
	mcRefused(t, e.azfs("backup", "--set", "../x", ssh), "set")

	e.mustAzfs("policy", "apply")
	if got, want := liveIDs(e), []string{small, large[2], db}; !slices.Equal(got, want) {
		t.Errorf("after policy apply, live points %v, want %v", got, want)
	}
}

// TestAgentKeepsManualPoints: the agent's first run, under the default
// policy, does not forget a manual backup of other paths made the same
// day: it is the newest point of its own set.
func TestAgentKeepsManualPoints(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	manualSrc := mkdir(t, filepath.Join(e.dir, "manual"))
	writeFile(t, filepath.Join(manualSrc, "notes"), []byte("by hand\n"), 0o644)
	manual := e.backup(manualSrc).Point
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeFile(t, filepath.Join(src, "small.txt"), []byte("scheduled\n"), 0o644)

	a := startAgent(t, e, src)
	a.waitLog(logRetention, 2)
	if code := a.stop(); code != 0 {
		t.Errorf("azfs agent exited with %d after SIGTERM", code)
	}
	if !slices.Contains(liveIDs(e), manual) {
		t.Errorf("the agent's retention forgot the manual point %s of other paths; deleted: %+v", manual[:8], e.deleted())
	}
}

package integration

// Rules per backup set (issue 13, item 2): 'policy set --set NAME' gives a
// set its own paths, selection, schedule and retention; 'policy show'
// shows every set; the agent backs each set up with its own selection.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// setsShown is the part of `azfs policy show --json` about sets.
type setsShown struct {
	Retention struct {
		KeepDaily  int `json:"keep_daily"`
		KeepYearly int `json:"keep_yearly"`
	} `json:"retention"`
	Sets []struct {
		Name      string   `json:"name"`
		Paths     []string `json:"paths"`
		FilesFrom []string `json:"files_from"`
		Selection struct {
			Exclude       []string `json:"exclude"`
			ExcludeCaches bool     `json:"exclude_caches"`
			OneFileSystem bool     `json:"one_file_system"`
		} `json:"selection"`
		Schedule struct {
			EverySeconds int64    `json:"every_seconds"`
			At           []string `json:"at"`
		} `json:"schedule"`
		NextRun   *string `json:"next_run"`
		Retention struct {
			KeepLast   int `json:"keep_last"`
			KeepDaily  int `json:"keep_daily"`
			KeepWeekly int `json:"keep_weekly"`
		} `json:"retention"`
	} `json:"sets"`
}

func (e *env) sets() setsShown {
	e.t.Helper()
	r := e.mustAzfs("policy", "show", "--json")
	var p setsShown
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		e.t.Fatalf("policy show --json printed invalid JSON: %v\n%s", err, r)
	}
	return p
}

// TestPolicySetPerSet: 'policy set --set' gives a set paths, files-from
// patterns, a selection (an exclude file read into its patterns), a
// schedule and a retention, and later changes one rule keeping the rest;
// 'policy show' (text and JSON) shows the default rules and every set's.
// Paths without --set, and relative paths, are refused. Lowering a set's
// rules is refused without the PIN, naming the set's rule and listing the
// set's points it would forget, none of another set's.
func TestPolicySetPerSet(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	excludes := filepath.Join(t.TempDir(), "excludes")
	writeFile(t, excludes, []byte("# editors\n*.swp\n\n/etc/ssl/private\n"), 0o644)
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, []byte("# per user\n/home/*/.config\n"), 0o644)

	e.mustAzfs("policy", "set", "--set", "etc", "--every", "6h", "--keep-last", "3", "--exclude-file", excludes, "--exclude-caches", "-x", "--files-from", list, "/etc", "/usr/local/etc/")
	e.mustAzfs("policy", "set", "--set", "db", "--at", "03:00", "--keep-daily", "30")
	p := e.sets()
	if p.Retention.KeepDaily != 14 || p.Retention.KeepYearly != 3 {
		t.Errorf("the default rules changed: %+v", p.Retention)
	}
	if len(p.Sets) != 2 || p.Sets[0].Name != "etc" || p.Sets[1].Name != "db" {
		t.Fatalf("policy show --json sets: %+v", p.Sets)
	}
	etc, db := p.Sets[0], p.Sets[1]
	if !slices.Equal(etc.Paths, []string{"/etc", "/usr/local/etc"}) || !slices.Equal(etc.FilesFrom, []string{"/home/*/.config"}) ||
		!slices.Equal(etc.Selection.Exclude, []string{"*.swp", "/etc/ssl/private"}) || !etc.Selection.ExcludeCaches || !etc.Selection.OneFileSystem ||
		etc.Schedule.EverySeconds != 6*3600 || etc.Retention.KeepLast != 3 || etc.NextRun == nil {
		t.Errorf("set etc: %+v", etc)
	}
	// A new set starts from the default rules: db keeps the default's
	// weekly 8 and gets daily 30.
	if len(db.Paths) != 0 || !slices.Equal(db.Schedule.At, []string{"03:00"}) || db.Retention.KeepDaily != 30 || db.Retention.KeepWeekly != 8 || db.NextRun != nil {
		t.Errorf("set db: %+v", db)
	}
	text := e.mustAzfs("policy", "show").stdout
	for _, want := range []string{"set etc", `paths        /etc /usr/local/etc`, `--exclude "*.swp"`, "--one-file-system", "set db", "no scheduled backups", "keep daily 30"} {
		if !strings.Contains(text, want) {
			t.Errorf("policy show does not say %q:\n%s", want, text)
		}
	}

	// One rule changed, the others and the paths kept.
	e.mustAzfs("policy", "set", "--set", "etc", "--keep-weekly", "12")
	if etc := e.sets().Sets[0]; etc.Retention.KeepLast != 3 || etc.Retention.KeepWeekly != 12 || len(etc.Paths) != 2 || len(etc.Selection.Exclude) != 2 {
		t.Errorf("after --keep-weekly 4: %+v", etc)
	}
	mcRefused(t, e.azfs("policy", "set", "/etc"), "--set")
	mcRefused(t, e.azfs("policy", "set", "--exclude", "*.tmp"), "--set")
	mcRefused(t, e.azfs("policy", "set", "--set", "etc", "etc/ssh"), "absolute")
	mcRefused(t, e.azfs("policy", "set", "--set", "-bad", "--keep-last", "1"), "set")
	mcRefused(t, e.azfs("policy", "set", "--set", "etc", "--exclude", "["), "pattern")

	// Lowering etc's rules forgets etc's points only, and needs the PIN.
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	var etcPoints []string
	for i := range 3 {
		writeFile(t, filepath.Join(src, "etc"), []byte{byte(i)}, 0o644)
		etcPoints = append(etcPoints, parseBackup(t, e.mustAzfs("backup", "--json", "--set", "etc", src)).Point)
		time.Sleep(1100 * time.Millisecond)
	}
	other := e.backup(src).Point
	r := e.azfs("policy", "set", "--set", "etc", "--keep-last", "1")
	mcRefused(t, r, "PIN", "set etc: last 3 to 1")
	if got, want := forgetLines(r, "forget"), shortIDs(etcPoints[:2]); !slices.Equal(got, want) {
		t.Errorf("the refusal lists %v, want etc's older points %v:\n%s", got, want, r)
	}
	e.mustAzfs("policy", "set", "--set", "etc", "--keep-last", "1", "--pin", e.pin())
	if got, want := liveIDs(e), []string{etcPoints[2], other}; !slices.Equal(got, want) {
		t.Errorf("live points %v, want etc's newest and the other set's %v", got, want)
	}
}

// TestAgentBacksUpPolicySets: an agent without paths of its own backs up
// the set the policy gives paths, with the set's selection, as that set;
// 'azfs status' shows the set's last point.
func TestAgentBacksUpPolicySets(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "etc"))
	writeFile(t, filepath.Join(src, "keep.conf"), []byte("kept\n"), 0o644)
	writeFile(t, filepath.Join(src, ".keep.conf.swp"), []byte("left out\n"), 0o644)
	e.mustAzfs("policy", "set", "--set", "etc", "--keep-last", "2", "--exclude", "*.swp", src)

	a := startAgent(t, e)
	a.waitLog(logRetention, 2)
	if code := a.stop(); code != 0 {
		t.Errorf("azfs agent exited with %d after SIGTERM", code)
	}
	if !strings.Contains(a.stderr.String(), "set=etc") {
		t.Errorf("the agent's log does not name the set:\n%s", a.stderr)
	}
	rows := e.setRows()
	if len(rows) == 0 || len(rows) > 2 {
		t.Fatalf("points after the agent ran: %+v, want 1 or 2 (keep-last 2)", rows)
	}
	for _, row := range rows {
		if row.Set != "etc" || !slices.Equal(row.Paths, []string{src}) {
			t.Errorf("point %+v: want set etc of %s", row, src)
		}
	}
	mnt := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
	e.mount(mnt, "--point", rows[len(rows)-1].ID[:12])
	if b, err := os.ReadFile(filepath.Join(mnt, src, "keep.conf")); err != nil || string(b) != "kept\n" {
		t.Errorf("keep.conf in the point: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(mnt, src, ".keep.conf.swp")); !os.IsNotExist(err) {
		t.Errorf("the set's excluded file is in the point: %v", err)
	}

	var st struct {
		Sets []struct {
			Name      string `json:"name"`
			LastPoint *struct {
				ID string `json:"id"`
			} `json:"last_point"`
		} `json:"sets"`
	}
	r := e.mustAzfs("status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	if len(st.Sets) != 1 || st.Sets[0].Name != "etc" || st.Sets[0].LastPoint == nil || st.Sets[0].LastPoint.ID != rows[len(rows)-1].ID {
		t.Errorf("status --json sets: %+v, want etc with its last point %s", st.Sets, rows[len(rows)-1].ID)
	}
}

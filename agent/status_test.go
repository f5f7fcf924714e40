package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/retention"
)

var statusNow = time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)

// statusPolicy is a policy with backups at 12:00 and a set "db" of its
// own at 18:00, in UTC.
func statusPolicy() policy.Policy {
	p := policy.Default("web01")
	p.Seq, p.TimeZone = 3, "UTC"
	p.Schedule = policy.Schedule{At: []policy.TimeOfDay{12 * 60}}
	p.Retention = retention.Retention{KeepLast: 5}
	return p.WithEntry(policy.SetPolicy{Name: "db", Paths: []string{"/var/db"}, Schedule: policy.Schedule{At: []policy.TimeOfDay{18 * 60}}, Retention: retention.Retention{KeepDaily: 7}})
}

// TestReadStatusFromVault: a machine whose points this host reads, not
// this host's: its last point and its set's come from the vault, and
// nothing of this host's state is told.
func TestReadStatusFromVault(t *testing.T) {
	live := []*repo.Point{
		{ID: keys.ID{1}, Time: statusNow.Add(-3 * time.Hour), SetName: "db"},
		{ID: keys.ID{2}, Time: statusNow.Add(-2 * time.Hour), Partial: true},
	}
	s, err := ReadStatus(StatusSource{Vault: "/v", VaultID: "vid", Machine: "web01", Policy: statusPolicy(), Live: live, Readable: true}, statusNow)
	if err != nil {
		t.Fatal(err)
	}
	if s.ThisHost || s.AutomaticBackups != nil || s.Agent != nil || s.Backup != nil {
		t.Errorf("another host's machine: %+v", s)
	}
	if s.LivePoints == nil || *s.LivePoints != 2 || s.LastPoint == nil || s.LastPoint.ID != live[1].ID.String() || !s.LastPoint.Partial || s.LastPoint.Source != "vault" {
		t.Errorf("points: live %v, last %+v", s.LivePoints, s.LastPoint)
	}
	if s.Policy.Number != 3 || s.NextRun == nil || !s.NextRun.Equal(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("policy %+v, next run %v", s.Policy, s.NextRun)
	}
	if len(s.Sets) != 1 || s.Sets[0].Name != "db" || s.Sets[0].LastPoint == nil || s.Sets[0].LastPoint.ID != live[0].ID.String() ||
		s.Sets[0].NextRun == nil || s.Sets[0].NextRun.Hour() != 18 {
		t.Errorf("sets: %+v", s.Sets)
	}
}

// TestReadStatusThisHost: on the machine's own host, write-only: the last
// points come from this host's record, the schedule is disabled (no next
// runs), and the running backup is named.
func TestReadStatusThisHost(t *testing.T) {
	dir := hoststate.Dir(filepath.Join(t.TempDir(), "state"))
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	id := keys.ID{9}.String()
	if err := dir.SaveLast(hoststate.Last{Point: id, Time: statusNow.Add(-time.Hour), Set: "db"}); err != nil {
		t.Fatal(err)
	}
	d, err := DisableSchedule(dir, statusNow)
	if err != nil || d.Already || d.Running != nil {
		t.Fatalf("DisableSchedule: %+v, %v", d, err)
	}
	lock, err := TryLock(dir.BackupLock(), Holder{PID: 42, What: "azfs backup", Paths: []string{"/etc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	if d, err := DisableSchedule(dir, statusNow.Add(time.Minute)); err != nil || !d.Already || !d.Since.Equal(statusNow) {
		t.Errorf("DisableSchedule again: %+v, %v; want already, since the first", d, err)
	}

	var warned []error
	s, err := ReadStatus(StatusSource{Machine: "web01", Policy: statusPolicy(), Host: &dir, Warn: func(err error) { warned = append(warned, err) }}, statusNow)
	if err != nil {
		t.Fatal(err)
	}
	if !s.ThisHost || s.LivePoints != nil || s.AutomaticBackups == nil || *s.AutomaticBackups || !s.DisabledSince.Equal(statusNow) || s.NextRun != nil || s.Sets[0].NextRun != nil {
		t.Errorf("disabled, write-only: %+v", s)
	}
	if s.LastPoint == nil || s.LastPoint.ID != id || s.LastPoint.Source != "this host" || s.Sets[0].LastPoint == nil || s.Sets[0].LastPoint.ID != id {
		t.Errorf("last points recorded here: %+v, set %+v", s.LastPoint, s.Sets[0].LastPoint)
	}
	if s.Agent == nil || s.Agent.Running || s.Backup == nil || !s.Backup.Running || s.Backup.PID != 42 || s.Backup.Holder().String() == "" {
		t.Errorf("locks: agent %+v, backup %+v", s.Agent, s.Backup)
	}
	if len(warned) != 0 {
		t.Errorf("warnings: %v", warned)
	}

	next, agentRuns, err := EnableSchedule(dir, statusPolicy(), statusNow)
	if err != nil || agentRuns || !next.Equal(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("EnableSchedule: next %v, agent runs %v, %v", next, agentRuns, err)
	}
	if _, disabled, err := dir.Disabled(); err != nil || disabled {
		t.Errorf("after EnableSchedule: disabled %v, %v", disabled, err)
	}
	// A record that cannot be read is a warning, not a failure.
	if err := os.WriteFile(filepath.Join(string(dir), "last.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(StatusSource{Machine: "web01", Policy: statusPolicy(), Host: &dir, Warn: func(err error) { warned = append(warned, err) }}, statusNow); err != nil || len(warned) == 0 {
		t.Errorf("a damaged record of the last point: %v, warnings %v", err, warned)
	}
	bad := statusPolicy()
	bad.TimeZone = "Nowhere/Nothing"
	if _, err := ReadStatus(StatusSource{Policy: bad}, statusNow); err == nil {
		t.Error("a policy in an unknown time zone: no error")
	}
}

// TestLastOfSet: the newest point of the set, forgotten ones too, or the
// one this host recorded when later.
func TestLastOfSet(t *testing.T) {
	points := []*repo.Point{
		{Time: statusNow.Add(-3 * time.Hour), SetName: "db"},
		{Time: statusNow.Add(-2 * time.Hour)},
		{Time: statusNow.Add(-time.Hour), SetName: "db"},
	}
	for _, tc := range []struct {
		set      string
		recorded time.Time
		want     time.Time
	}{
		{"db", time.Time{}, statusNow.Add(-time.Hour)},
		{"", time.Time{}, statusNow.Add(-2 * time.Hour)},
		{"db", statusNow.Add(-time.Minute), statusNow.Add(-time.Minute)},
		{"etc", time.Time{}, time.Time{}},
	} {
		if got := LastOfSet(points, tc.set, tc.recorded); !got.Equal(tc.want) {
			t.Errorf("LastOfSet(%q, recorded %v) = %v, want %v", tc.set, tc.recorded, got, tc.want)
		}
	}
}

package policy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/signed"
)

// twoSets is a policy with default rules and two sets of their own: etc,
// backed up every 6 hours keeping its last 2 points, and db, which has no
// paths (manual backups only) and keeps 5 days.
func twoSets() Policy {
	p := Default("web01")
	p.Retention = retention.Retention{KeepLast: 4}
	p = p.WithEntry(SetPolicy{
		Name: "etc", Paths: []string{"/etc", "/usr/local/etc"}, FilesFrom: []string{"/home/*/.config"},
		Selection: selection.Spec{Exclude: []string{"*.swp", "/etc/ssl/private"}, ExcludeCaches: true, OneFileSystem: true},
		Schedule:  Schedule{Every: 6 * time.Hour}, Retention: retention.Retention{KeepLast: 2},
	})
	return p.WithEntry(SetPolicy{Name: "db", Schedule: Schedule{At: []TimeOfDay{3 * 60}}, Retention: retention.Retention{KeepDaily: 5}})
}

// TestPolicyV2RoundTrip: a policy with set entries is stored as a version
// 2 record, its rules in "sets", and read back as it was set.
func TestPolicyV2RoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, err := Set(ctx, f.root, f.owner, twoSets(), t0)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := Current(ctx, f.root, "web01")
	if err != nil {
		t.Fatal(err)
	}
	cur.Set, p.Set = cur.Set.UTC(), p.Set.UTC()
	if !reflect.DeepEqual(cur, p) {
		t.Errorf("Current = %+v\nwant %+v", cur, p)
	}
	var body map[string]json.RawMessage
	if err := signed.Load(ctx, f.root.MachineStorage("web01"), seqName(policyPrefix, p.Seq), *f.root.Owner, policyContext, &body); err != nil {
		t.Fatal(err)
	}
	if string(body["version"]) != "2" || body["schedule"] != nil || body["retention"] != nil || body["sets"] == nil {
		t.Errorf("record has version %s, schedule %s, retention %s: want version 2 with its rules in sets only", body["version"], body["schedule"], body["retention"])
	}
	if got, want := cur.DescribeRetention(), "keep last 4; set etc: keep last 2; set db: keep daily 5"; got != want {
		t.Errorf("DescribeRetention = %q, want %q", got, want)
	}
	if sp, ok := cur.Entry("etc"); !ok || sp.Selection.Flags()[0] != `--exclude "*.swp"` {
		t.Errorf("etc's entry: %+v", sp)
	}
}

// TestPolicyV1Record: a record as azfs wrote it before sets had rules of
// their own (no version, the rules at the top) reads as version 1: the
// default rules and no set entries. A policy without set entries is still
// written so, for older agents.
func TestPolicyV1Record(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := map[string]any{
		"vault": f.root.ID, "machine": "web01", "seq": 1, "time": t0, "timezone": "Europe/Berlin",
		"schedule":  map[string]any{"at": []string{"02:00"}},
		"retention": map[string]any{"last": 0, "hourly": 0, "daily": 7, "weekly": 4, "monthly": 0, "yearly": 3, "within": 0},
	}
	area := f.root.MachineStorage("web01")
	if err := signed.Save(ctx, area, seqName(policyPrefix, 1), f.owner, policyContext, old); err != nil {
		t.Fatal(err)
	}
	cur, err := Current(ctx, f.root, "web01")
	if err != nil {
		t.Fatal(err)
	}
	want := retention.Retention{KeepDaily: 7, KeepWeekly: 4, KeepYearly: 3}
	if cur.Seq != 1 || cur.Schedule.String() != "at 02:00" || cur.Retention != want || cur.Sets != nil || cur.TimeZone != "Europe/Berlin" {
		t.Errorf("version 1 record read as %+v", cur)
	}
	if cur.RetentionOf("etc") != want {
		t.Errorf("a set without an entry has retention %s, want the default's", cur.RetentionOf("etc"))
	}
	p, err := Set(ctx, f.root, f.owner, cur, t0)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]json.RawMessage
	if err := signed.Load(ctx, area, seqName(policyPrefix, p.Seq), *f.root.Owner, policyContext, &body); err != nil {
		t.Fatal(err)
	}
	if body["version"] != nil || body["sets"] != nil || body["schedule"] == nil {
		t.Errorf("a policy without set entries written as %v, want version 1", body)
	}
}

// TestPolicyRecordVersions: what a reader refuses, with ErrPolicy.
func TestPolicyRecordVersions(t *testing.T) {
	base := `"vault":"v","machine":"web01","seq":1,"time":"2026-11-22T12:00:00Z","timezone":"UTC"`
	rules := `"schedule":{"every":43200},"retention":{"last":1}`
	for name, body := range map[string]string{
		"later version":                   `{"version":3,` + base + `,` + rules + `}`,
		"v1 with sets":                    `{` + base + `,` + rules + `,"sets":[]}`,
		"v1 without retention":            `{` + base + `,"schedule":{"every":43200}}`,
		"v2 with top-level rules":         `{"version":2,` + base + `,` + rules + `,"sets":[{"name":"",` + rules + `}]}`,
		"v2 without default":              `{"version":2,` + base + `,"sets":[{"name":"etc",` + rules + `}]}`,
		"v2 default with paths":           `{"version":2,` + base + `,"sets":[{"name":"","paths":["/etc"],` + rules + `}]}`,
		"v2 set named twice":              `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a",` + rules + `},{"name":"a",` + rules + `}]}`,
		"v2 relative path":                `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a","paths":["etc"],` + rules + `}]}`,
		"v2 bad set name":                 `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a/b",` + rules + `}]}`,
		"v2 bad pattern":                  `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a","selection":{"exclude":["/"]},` + rules + `}]}`,
		"v2 set without schedule":         `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a","schedule":{},"retention":{}}]}`,
		"v2 negative exclude-larger-than": `{"version":2,` + base + `,"sets":[{"name":"",` + rules + `},{"name":"a","selection":{"exclude_larger_than":-1},` + rules + `}]}`,
	} {
		if _, err := DecodePolicy([]byte(body), "v", "web01", 1); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v, want ErrPolicy", name, err)
		}
	}
}

// TestRetentionPerSetRules: each set keeps what its own rules say, the
// sets without an entry what the default rules say; a tombstone is checked
// against the rules of each point's set.
func TestRetentionPerSetRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bySet := make(map[string][]*repo.Point)
	for i := range 10 {
		for _, set := range []string{"etc", "db", ""} {
			p := &repo.Point{Machine: "web01", Time: t0.Add(-time.Duration(10-i) * retention.Day), Root: keys.ID{1}, Paths: []string{"/" + set}, SetName: set}
			if err := f.v.SavePoint(ctx, p); err != nil {
				t.Fatal(err)
			}
			bySet[set] = append(bySet[set], p)
		}
	}
	// A tombstone written under a policy that kept 1 of every set: only
	// what the rules of each set forget holds.
	var all []keys.ID
	for _, points := range bySet {
		all = append(all, ids(points[:9])...)
	}
	plain, err := EncodeTombstone(Tombstone{Points: all, Time: t0, Policy: 1, Host: "web01"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.SaveTombstone(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if _, err := Set(ctx, f.root, f.owner, twoSets(), t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	liveOf := func(set string) []*repo.Point {
		var out []*repo.Point
		for _, p := range s.Live() {
			if p.SetName == set {
				out = append(out, p)
			}
		}
		return out
	}
	sameIDs(t, "etc (last 2)", liveOf("etc"), bySet["etc"][8:])
	sameIDs(t, "db (daily 5)", liveOf("db"), bySet["db"][5:])
	sameIDs(t, "paths set (default: last 4)", liveOf(""), bySet[""][6:])
	if exp := s.Expired(t0); len(exp) != 0 {
		t.Errorf("expired after the tombstone: %v", short(exp))
	}
}

// TestShortensPerSet: lowering one set's rules names that set, and
// Compare lists the points of that set it forgets, none of the others'.
func TestShortensPerSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var db []*repo.Point
	for i := range 6 {
		for _, set := range []string{"etc", "db"} {
			p := &repo.Point{Machine: "web01", Time: t0.Add(-time.Duration(6-i) * retention.Day), Root: keys.ID{1}, Paths: []string{"/x"}, SetName: set}
			if err := f.v.SavePoint(ctx, p); err != nil {
				t.Fatal(err)
			}
			if set == "db" {
				db = append(db, p)
			}
		}
	}
	cur := twoSets()
	cur.Sets[0].Retention = retention.Retention{KeepLast: 6}
	cur.Sets[1].Retention = retention.Retention{KeepLast: 6}
	cur, err := Set(ctx, f.root, f.owner, cur, t0)
	if err != nil {
		t.Fatal(err)
	}
	sp := cur.EntryOrDefault("db")
	sp.Retention.KeepLast = 2
	next := cur.WithEntry(sp)
	if got := cur.Shortens(next); !slices.Equal(got, []string{"set db: last 6 to 2"}) {
		t.Errorf("Shortens = %q", got)
	}
	// A new entry starts from the default rules: lowering nothing.
	added := cur.WithEntry(cur.EntryOrDefault("logs"))
	if got := cur.Shortens(added); len(got) != 0 {
		t.Errorf("a new entry with the default rules: Shortens = %q", got)
	}
	newly, already, err := f.load(t).Compare(next, t0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "newly forgotten", newly, db[:4])
	sameIDs(t, "already forgotten", already, nil)
	// Lowering the default rules names no set with an entry.
	lower := next
	lower.Retention = retention.Retention{KeepLast: 1}
	if got := next.Shortens(lower); len(got) != 1 || strings.HasPrefix(got[0], "set ") {
		t.Errorf("lowering the default: Shortens = %q", got)
	}
}

// TestSetPolicyValidate: entries that Set refuses.
func TestSetPolicyValidate(t *testing.T) {
	f := newFixture(t)
	for name, sp := range map[string]SetPolicy{
		"bad name":      {Name: "-x", Schedule: Schedule{Every: time.Hour}},
		"relative path": {Name: "a", Paths: []string{"etc"}, Schedule: Schedule{Every: time.Hour}},
		"unclean path":  {Name: "a", Paths: []string{"/etc/../var"}, Schedule: Schedule{Every: time.Hour}},
		"bad pattern":   {Name: "a", Selection: selection.Spec{Exclude: []string{"[a"}}, Schedule: Schedule{Every: time.Hour}},
		"bad tag":       {Name: "a", Selection: selection.Spec{ExcludeIfPresent: []string{"a/b"}}, Schedule: Schedule{Every: time.Hour}},
		"bad files":     {Name: "a", FilesFrom: []string{"/home/[x"}, Schedule: Schedule{Every: time.Hour}},
		"no schedule":   {Name: "a"},
	} {
		if _, err := Set(context.Background(), f.root, f.owner, Default("web01").WithEntry(sp), t0); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v, want ErrPolicy", name, err)
		}
	}
}

// TestBackupPaths: a set's paths, then what its files-from patterns match
// where the backup runs.
func TestBackupPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.conf", "b.conf", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sp := SetPolicy{Name: "etc", Paths: []string{"/etc"}, FilesFrom: []string{filepath.Join(dir, "*.conf"), filepath.Join(dir, "none*")}}
	var warned []string
	got, err := sp.BackupPaths(func(msg string) { warned = append(warned, msg) })
	want := []string{"/etc", filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("BackupPaths = %q, %v; want %q", got, err, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "none*") {
		t.Errorf("warned %q, want the pattern that matched nothing", warned)
	}
}

package policy

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
)

// jsonKeys returns the keys of v marshalled as a JSON object, sorted.
func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSummarize: a point as 'points --json' lists it; tags [] for none.
func TestSummarize(t *testing.T) {
	p := &repo.Point{ID: keys.ID{7}, Machine: "web01", Time: t0, Paths: []string{"/etc"}, SetName: "etc", Partial: true,
		Stats: repo.PointStats{Files: 3, Bytes: 40, ChangedWhileRead: 1}}
	s := Summarize(p)
	if s.ID != p.ID.String() || s.Set != "etc" || s.Tags == nil || len(s.Tags) != 0 || s.Files != 3 || s.Bytes != 40 || !s.Partial || s.ChangedWhileRead != 1 {
		t.Errorf("summary %+v", s)
	}
	want := []string{"bytes", "changed_while_read", "files", "id", "machine", "partial", "paths", "set", "tags", "time"}
	if got := jsonKeys(t, s); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if got := Summaries(nil); got == nil || len(got) != 0 {
		t.Errorf("Summaries(nil) = %#v, want []", got)
	}
}

// TestDeletedMatching: 'points --deleted' rows: who forgot each point,
// when it becomes purgeable, the tag filter applied.
func TestDeletedMatching(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 4)
	tagged := &repo.Point{Machine: "web01", Time: t0.Add(-30 * time.Minute), Root: keys.ID{1}, Paths: []string{"/"}, Tags: []string{"db"}}
	if err := f.v.SavePoint(ctx, tagged); err != nil {
		t.Fatal(err)
	}
	f.setPolicy(t, retention.Retention{KeepLast: 3})
	if _, err := ApplyRetention(ctx, f.machine(), t0); err != nil { // forgets points 0 and 1
		t.Fatal(err)
	}
	if err := Forget(ctx, f.machine(), f.owner, []keys.ID{tagged.ID}, t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	now := t0.Add(DefaultWindow)
	all := s.DeletedMatching(repo.TagFilter{}, now.Add(-time.Second))
	if len(all) != 3 {
		t.Fatalf("%d deleted, want 3: %+v", len(all), all)
	}
	for i, want := range []struct {
		p  *repo.Point
		by string
	}{{points[0], "policy 1"}, {points[1], "policy 1"}, {tagged, "owner"}} {
		d := all[i]
		if d.Point.ID != want.p.ID || d.ID != want.p.ID.String() || d.By != want.by || !d.Forgotten.Equal(t0) || !d.Purgeable.Equal(now) || d.PurgeableNow {
			t.Errorf("row %d: %+v, want point %s by %s", i, d, want.p.ID.Short(), want.by)
		}
	}
	if rows := s.DeletedMatching(repo.TagFilter{}, now); !rows[0].PurgeableNow {
		t.Errorf("at the end of the window: %+v, want purgeable now", rows[0])
	}
	filter, err := repo.ParseTagFilter([]string{"db"})
	if err != nil {
		t.Fatal(err)
	}
	if rows := s.DeletedMatching(filter, now); len(rows) != 1 || rows[0].Point.ID != tagged.ID {
		t.Errorf("with --tag db: %+v", rows)
	}
	want := []string{"by", "bytes", "changed_while_read", "files", "forgotten", "id", "machine", "partial", "paths", "purgeable", "purgeable_now", "set", "tags", "time"}
	if got := jsonKeys(t, all[0]); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if rows := f.load(t).DeletedMatching(filter, now); rows == nil {
		t.Error("no rows: nil, want []")
	}
}

// TestRunRetention: 'policy apply' with and without --dry-run.
func TestRunRetention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 5)
	f.setPolicy(t, retention.Retention{KeepLast: 2})

	dry, err := f.load(t).RunRetention(ctx, t0, true)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "dry run", dry.Points, points[:3])
	if !dry.DryRun || dry.LivePoints != 5 || dry.Policy != 1 || dry.Retention != "keep last 2" || len(dry.Forgotten) != 3 || !dry.RecoverableUntil.IsZero() {
		t.Errorf("dry run: %+v", dry)
	}
	sameIDs(t, "live after the dry run", f.load(t).Live(), points)

	run, err := f.load(t).RunRetention(ctx, t0, false)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten", run.Points, points[:3])
	if run.DryRun || run.Forgotten[0].ID != points[0].ID.String() || !run.RecoverableUntil.Equal(t0.Add(DefaultWindow)) {
		t.Errorf("run: %+v", run)
	}
	sameIDs(t, "live after the run", f.load(t).Live(), points[3:])
	want := []string{"dry_run", "forgotten", "live_points", "machine", "policy", "recoverable_until", "retention"}
	if got := jsonKeys(t, run); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}

	again, err := f.load(t).RunRetention(ctx, t0, false)
	if err != nil || len(again.Points) != 0 || again.Forgotten == nil || !again.RecoverableUntil.IsZero() || again.LivePoints != 2 {
		t.Errorf("nothing to forget: %+v, %v", again, err)
	}
	if got := jsonKeys(t, again); slices.Contains(got, "recoverable_until") {
		t.Errorf("recoverable_until given when nothing was forgotten: %v", got)
	}
}

// TestRequestReport: 'policy set --json' before the commit, with and
// without the points, and for a window change alone.
func TestRequestReport(t *testing.T) {
	f := newFixture(t)
	points := f.addPoints(t, 6)
	cur := f.setPolicy(t, retention.Retention{KeepLast: 4})
	next := cur
	next.Retention = retention.Retention{KeepLast: 3}
	c, err := PlanChange(f.load(t), cur, next, t0)
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Change: &c, Window: &WindowChange{Current: DefaultWindow, Next: time.Hour}}
	out, err := r.Report("", DefaultWindow, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if out.Machine != "web01" || out.Current == nil || out.Current.Policy != 1 || out.New == nil || out.New.Retention.KeepLast != 3 ||
		out.LivePoints == nil || *out.LivePoints != 6 || len(out.Forgets) != 1 || out.Forgets[0].ID != points[2].ID.String() || out.ForgetsAlso != 2 ||
		!out.NeedsPIN || !out.DryRun || out.Saved != 0 || len(out.Lowered) != 1 ||
		out.SoftDelete == nil || out.SoftDelete.CurrentSeconds != int64(DefaultWindow/time.Second) || out.SoftDelete.NewSeconds != 3600 {
		t.Errorf("report: %+v", out)
	}
	want := []string{"current", "dry_run", "forgets", "forgets_also", "forgotten", "live_points", "lowered", "machine", "needs_pin", "new", "saved", "soft_delete"}
	if got := jsonKeys(t, out); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}

	// Points that cannot be read: live_points null, forgets [].
	unread, _ := PlanChange(nil, cur, next, t0)
	out, err = Request{Change: &unread}.Report("db", DefaultWindow, false, t0)
	if err != nil || out.LivePoints != nil || out.Forgets == nil || len(out.Forgets) != 0 || out.Set != "db" || out.SoftDelete != nil {
		t.Errorf("unread: %+v, %v", out, err)
	}
	// The window alone: no machine, current and new null.
	out, err = Request{Window: &WindowChange{Current: time.Hour, Next: 2 * time.Hour}}.Report("", DefaultWindow, false, t0)
	if err != nil || out.Current != nil || out.New != nil || out.Machine != "" || out.NeedsPIN || out.Lowered == nil {
		t.Errorf("window alone: %+v, %v", out, err)
	}
}

// TestLiveMatching: 'azfs points' with --tag and --set: the live points
// of the set ("" is the set of the paths) that the filter matches.
func TestLiveMatching(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 2)
	db := &repo.Point{Machine: "web01", Time: t0.Add(-time.Minute), Root: keys.ID{1}, Paths: []string{"/db"}, SetName: "db", Tags: []string{"pg"}}
	if err := f.v.SavePoint(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := Forget(ctx, f.machine(), f.owner, []keys.ID{points[0].ID}, t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	paths, dbSet, none := "", "db", "etc"
	pg, _ := repo.ParseTagFilter([]string{"pg"})
	for _, c := range []struct {
		what   string
		filter repo.TagFilter
		set    *string
		want   []*repo.Point
	}{
		{"every live point", repo.TagFilter{}, nil, []*repo.Point{points[1], db}},
		{"the set of the paths", repo.TagFilter{}, &paths, points[1:]},
		{"set db", repo.TagFilter{}, &dbSet, []*repo.Point{db}},
		{"a set without points", repo.TagFilter{}, &none, nil},
		{"tag pg", pg, nil, []*repo.Point{db}},
		{"tag pg in the set of the paths", pg, &paths, nil},
	} {
		sameIDs(t, c.what, s.LiveMatching(c.filter, c.set), c.want)
	}
}

package policy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
)

func ptr[T any](v T) *T { return &v }

// TestEdited: what 'azfs policy set' changes of a policy: the rules given
// replace those rules (of the default or of a set), the others stay; a
// first policy takes the machine's zone; a set's paths are replaced as a
// whole, and must be absolute.
func TestEdited(t *testing.T) {
	first, err := Default("web01").Edited("web01", Edit{FirstZone: "Europe/Berlin", Schedule: &Schedule{Every: 6 * time.Hour}, Keep: RetentionEdit{Daily: ptr(14)}})
	if err != nil {
		t.Fatal(err)
	}
	if first.TimeZone != "Europe/Berlin" || first.Schedule.Every != 6*time.Hour || first.Retention.KeepDaily != 14 || first.Retention.KeepLast != Default("web01").Retention.KeepLast {
		t.Errorf("a first policy: %+v", first)
	}
	first.Seq = 1 // as Set saves it
	zoned, err := first.Edited("web01", Edit{FirstZone: "UTC", TimeZone: "Asia/Tokyo", Keep: RetentionEdit{Daily: ptr(0), Weekly: ptr(4)}})
	if err != nil {
		t.Fatal(err)
	}
	if zoned.TimeZone != "Asia/Tokyo" || zoned.Retention.KeepDaily != 0 || zoned.Retention.KeepWeekly != 4 || zoned.Schedule.Every != first.Schedule.Every {
		t.Errorf("a second edit: %+v", zoned)
	}
	if kept, _ := first.Edited("web01", Edit{FirstZone: "UTC"}); kept.TimeZone != "Europe/Berlin" {
		t.Errorf("a policy's zone changed without being given: %s", kept.TimeZone)
	}
	if all, err := first.Edited("web01", Edit{Keep: RetentionEdit{KeepAll: true}}); err != nil || !all.Retention.Empty() {
		t.Errorf("keep all: %+v, %v", all.Retention, err)
	}
	if _, err := first.Edited("web01", Edit{Keep: RetentionEdit{Last: ptr(0), Daily: ptr(0), Weekly: ptr(0), Monthly: ptr(0), Yearly: ptr(0), Hourly: ptr(0), Within: ptr(time.Duration(0))}}); !errors.Is(err, ErrNoRuleLeft) {
		t.Errorf("dropping every rule: %v, want ErrNoRuleLeft", err)
	}

	// A set: starts from the default rules, gets paths and a selection.
	spec := selection.Spec{Exclude: []string{"*.swp"}}
	withSet, err := first.Edited("web01", Edit{Set: "etc", Paths: []string{"/etc/", "/usr/local/etc"}, Selection: &spec, Keep: RetentionEdit{Last: ptr(8)}})
	if err != nil {
		t.Fatal(err)
	}
	sp, ok := withSet.Entry("etc")
	if !ok || !slices.Equal(sp.Paths, []string{"/etc", "/usr/local/etc"}) || sp.Schedule.Every != first.Schedule.Every || sp.Retention.KeepLast != 8 || sp.Retention.KeepDaily != 14 || len(sp.Selection.Exclude) != 1 {
		t.Errorf("set etc: %+v", sp)
	}
	if withSet.Retention != first.Retention {
		t.Errorf("a set's edit changed the default rules: %+v", withSet.Retention)
	}
	// Files-from patterns replace the paths too; --no-paths drops both.
	patterned, err := withSet.Edited("web01", Edit{Set: "etc", FilesFrom: []string{"/srv/*/conf"}})
	if sp, _ := patterned.Entry("etc"); err != nil || sp.Paths != nil || !slices.Equal(sp.FilesFrom, []string{"/srv/*/conf"}) || len(sp.Selection.Exclude) != 1 {
		t.Errorf("files-from: %+v, %v", sp, err)
	}
	unpathed, err := patterned.Edited("web01", Edit{Set: "etc", NoPaths: true})
	if sp, _ := unpathed.Entry("etc"); err != nil || sp.Scheduled() || sp.Retention.KeepLast != 8 {
		t.Errorf("no paths: %+v, %v", sp, err)
	}
	if _, err := first.Edited("web01", Edit{Set: "etc", Paths: []string{"etc"}}); err == nil {
		t.Error("a relative path: no error")
	}
	if _, err := first.Edited("web01", Edit{TimeZone: "Nowhere/Nothing"}); err == nil {
		t.Error("an unknown time zone: no error")
	}
}

// TestCommit: a request that needs the PIN spends it before anything is
// saved, and a refused PIN saves nothing; one that does not never asks
// for it; the policy and the window are both saved.
func TestCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addPoints(t, 4)
	cur := f.setPolicy(t, retention.Retention{KeepLast: 4})
	s := f.load(t)
	lower, err := cur.Edited("web01", Edit{Keep: RetentionEdit{Last: ptr(2)}})
	if err != nil {
		t.Fatal(err)
	}
	change, err := PlanChange(s, cur, lower, t0)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Change: &change, Window: &WindowChange{Current: DefaultWindow, Next: DefaultWindow / 2}}
	if !req.NeedsPIN() {
		t.Fatal("lowering keep-last and shortening the window needs no PIN")
	}
	if r := req.PINReasons(); len(r.Lowered) != 1 || r.Forgets != 2 || !r.WindowShortens {
		t.Errorf("reasons for the PIN: %+v, want keep-last lowered, 2 points forgotten, the window shortened", r)
	}
	if r := (Request{Window: &WindowChange{Current: DefaultWindow, Next: 2 * DefaultWindow}}).PINReasons(); r.Any() {
		t.Errorf("a longer window: reasons %+v, want none", r)
	}
	refused := errors.New("wrong PIN")
	if saved, err := Commit(ctx, f.root, f.owner, req, func() error { return refused }, t0); !errors.Is(err, refused) || saved.Seq != 0 {
		t.Errorf("a refused PIN: saved %d, %v", saved.Seq, err)
	}
	if p, _ := Current(ctx, f.root, "web01"); p.Seq != cur.Seq {
		t.Errorf("after a refused PIN the policy is %d, want %d", p.Seq, cur.Seq)
	}
	spent := 0
	saved, err := Commit(ctx, f.root, f.owner, req, func() error { spent++; return nil }, t0)
	if err != nil || spent != 1 || saved.Seq != cur.Seq+1 || saved.Retention.KeepLast != 2 {
		t.Errorf("Commit: saved %+v, PIN spent %d times, %v", saved, spent, err)
	}
	if w, err := Window(ctx, f.root); err != nil || w != DefaultWindow/2 {
		t.Errorf("window after Commit: %v, %v", w, err)
	}
	longer := Request{Window: &WindowChange{Current: DefaultWindow / 2, Next: DefaultWindow}}
	if saved, err := Commit(ctx, f.root, f.owner, longer, func() error { t.Error("PIN asked for a longer window"); return nil }, t0.Add(time.Minute)); err != nil || saved.Seq != 0 {
		t.Errorf("a longer window alone: saved %d, %v", saved.Seq, err)
	}
}

package policy

import (
	"errors"
	"slices"
	"testing"
	"time"

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

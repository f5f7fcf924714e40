package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
)

// TestNewView: 'azfs policy show' of a policy: next runs in its zone (none
// for a set without paths), the rules, the window, and the JSON names
// docs/cli.md documents.
func TestNewView(t *testing.T) {
	p := Default("web01")
	p.Seq, p.TimeZone = 2, "Europe/Berlin"
	p.Schedule = Schedule{At: []TimeOfDay{1 * 60, 13 * 60}}
	p.Retention = retention.Retention{KeepDaily: 14, KeepWithin: 48 * time.Hour}
	p = p.WithEntry(SetPolicy{Name: "etc", Paths: []string{"/etc"}, Schedule: Schedule{Every: 6 * time.Hour}, Retention: retention.Retention{KeepLast: 8}})
	p = p.WithEntry(SetPolicy{Name: "db", Retention: retention.Retention{KeepLast: 3}})
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) // 11:00 in Berlin
	v, err := NewView(p, 14*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC); !v.NextRun.Equal(want) || v.Schedule.At[1] != "13:00" || v.Retention.KeepWithinSeconds != 48*3600 || v.SoftDeleteSeconds != 14*24*3600 {
		t.Errorf("default rules: next run %v, want %v; %+v", v.NextRun, want, v)
	}
	if len(v.Sets) != 2 || v.Sets[0].NextRun == nil || v.Sets[0].Schedule.EverySeconds != 6*3600 || v.Sets[1].NextRun != nil || v.Sets[1].Retention.KeepLast != 3 {
		t.Errorf("sets: %+v", v.Sets)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"machine":"web01"`, `"policy":2`, `"timezone":"Europe/Berlin"`, `"keep_daily":14`, `"next_run":null`, `"soft_delete_seconds":1209600`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("the JSON lacks %s:\n%s", name, b)
		}
	}
	p.TimeZone = "Nowhere/Nothing"
	if _, err := NewView(p, 0, now); err == nil {
		t.Error("a policy in an unknown zone: no error")
	}
}

// TestShow: 'azfs policy show' of a machine: its current policy under the
// vault's window; a machine the vault does not hold is ErrNoMachine.
func TestShow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, v, err := Show(ctx, f.root, "web01", t0)
	if err != nil || !p.IsDefault() || !v.Default || v.SoftDeleteSeconds != int64(DefaultWindow/time.Second) {
		t.Errorf("default policy: %+v, %+v, %v", p, v, err)
	}
	f.setPolicy(t, retention.Retention{KeepLast: 3})
	if err := SetWindow(ctx, f.root, f.owner, time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	if p, v, err := Show(ctx, f.root, "web01", t0); err != nil || p.Seq != 1 || v.Retention.KeepLast != 3 || v.SoftDeleteSeconds != 3600 {
		t.Errorf("after set: %+v, %+v, %v", p, v, err)
	}
	if _, _, err := Show(ctx, f.root, "db01", t0); !errors.Is(err, repo.ErrNoMachine) || !strings.Contains(err.Error(), "web01") {
		t.Errorf("unknown machine: %v, want ErrNoMachine naming web01", err)
	}
}

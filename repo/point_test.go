package repo_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/mem"
)

func TestSavePointPoints(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(machine string, at time.Time) *repo.Point {
		return &repo.Point{
			Machine: machine, Hostname: "host-" + machine, Time: at,
			Paths: []string{"/home", "/etc"}, Root: keys.ID{1, byte(len(machine))},
			Stats: repo.PointStats{Files: 10, Dirs: 2, Bytes: 12345, Duration: 1500 * time.Millisecond},
		}
	}
	// Saved out of order; two share a time.
	saved := []*repo.Point{
		mk("c", base.Add(2*time.Hour)),
		mk("a", base),
		mk("b", base.Add(time.Hour)),
		mk("bb", base.Add(time.Hour)),
	}
	saved[1].Partial = true
	saved[1].Stats.Errors = 3
	saved[2].Tags = []string{"daily", "web"}
	for _, p := range saved {
		if err := v.SavePoint(ctx, p); err != nil {
			t.Fatalf("SavePoint: %v", err)
		}
		if p.ID.IsZero() || p.Version != 1 {
			t.Fatalf("SavePoint left ID %s, version %d", p.ID.Short(), p.Version)
		}
	}
	// Saving the same point again is harmless and gives the same ID.
	again := *saved[0]
	if err := v.SavePoint(ctx, &again); err != nil || again.ID != saved[0].ID {
		t.Errorf("SavePoint of an identical point = %s, %v; want %s", again.ID.Short(), err, saved[0].ID.Short())
	}
	if got := len(names(t, st, "points/")); got != len(saved) {
		t.Errorf("%d point objects, want %d", got, len(saved))
	}

	points, err := reopen(t, v).Points(ctx)
	if err != nil {
		t.Fatalf("Points: %v", err)
	}
	if len(points) != len(saved) {
		t.Fatalf("Points returned %d, want %d", len(points), len(saved))
	}
	for i := 1; i < len(points); i++ {
		a, b := points[i-1], points[i]
		if a.Time.After(b.Time) || (a.Time.Equal(b.Time) && a.ID.String() > b.ID.String()) {
			t.Errorf("points %d and %d out of order: %s %s, %s %s", i-1, i, a.Time, a.ID.Short(), b.Time, b.ID.Short())
		}
	}
	byID := make(map[keys.ID]*repo.Point)
	for _, p := range saved {
		byID[p.ID] = p
	}
	for _, got := range points {
		want := byID[got.ID]
		if want == nil {
			t.Fatalf("Points returned unknown ID %s", got.ID.Short())
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("point %s: time %s, want %s", got.ID.Short(), got.Time, want.Time)
		}
		g, w := *got, *want
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("point %s changed in the round trip:\n got %+v\nwant %+v", got.ID.Short(), g, w)
		}
	}
	if points[0].Machine != "a" || points[len(points)-1].Machine != "c" {
		t.Errorf("first/last points are %s/%s, want a/c", points[0].Machine, points[len(points)-1].Machine)
	}
}

func TestPointsSkipsDamaged(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	good := &repo.Point{Machine: "m", Time: time.Now().UTC(), Root: keys.ID{1}}
	if err := v.SavePoint(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := keys.ID{0xde, 0xad}
	if err := st.Save(ctx, "points/"+bad.String(), testfiles.RandomBytes(300, 1)); err != nil {
		t.Fatal(err)
	}
	points, err := v.Points(ctx)
	if !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), bad.Short()) {
		t.Errorf("Points with a damaged point: err = %v, want ErrDamaged naming %s", err, bad.Short())
	}
	if len(points) != 1 || points[0].ID != good.ID {
		t.Errorf("Points returned %d points, want the good one", len(points))
	}
}

func TestDecodePoint(t *testing.T) {
	for name, in := range map[string]string{
		"not json":        "{",
		"no root":         `{"version":1,"time":"2024-05-01T00:00:00Z"}`,
		"zero root":       `{"version":1,"time":"2024-05-01T00:00:00Z","root":"0000000000000000000000000000000000000000000000000000000000000000"}`,
		"no time":         `{"version":1,"root":"0100000000000000000000000000000000000000000000000000000000000000"}`,
		"version 2":       `{"version":2,"time":"2024-05-01T00:00:00Z","root":"0100000000000000000000000000000000000000000000000000000000000000"}`,
		"root not an ID":  `{"version":1,"time":"2024-05-01T00:00:00Z","root":"01"}`,
		"time not a time": `{"version":1,"time":"yesterday","root":"0100000000000000000000000000000000000000000000000000000000000000"}`,
	} {
		if p, err := repo.DecodePoint([]byte(in)); !errors.Is(err, repo.ErrDamaged) {
			t.Errorf("%s: DecodePoint = %+v, %v; want ErrDamaged", name, p, err)
		}
	}
	// A point written before tags existed has none.
	p, err := repo.DecodePoint([]byte(`{"version":1,"time":"2024-05-01T00:00:00+02:00","root":"0100000000000000000000000000000000000000000000000000000000000000","partial":true}`))
	if err != nil || !p.Partial || p.Root != (keys.ID{1}) || !p.Time.Equal(time.Date(2024, 4, 30, 22, 0, 0, 0, time.UTC)) || p.Tags != nil {
		t.Errorf("DecodePoint(valid) = %+v, %v", p, err)
	}
}

// pointID makes an ID whose hex form starts with prefix.
func pointID(t *testing.T, prefix string) keys.ID {
	t.Helper()
	id, err := keys.ParseID(prefix + strings.Repeat("0", 64-len(prefix)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSelectPoint(t *testing.T) {
	loc := time.FixedZone("X", 5*3600)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC() // points are stored in UTC
	}
	p1 := &repo.Point{ID: pointID(t, "ab12"), Machine: "m", Time: at("2024-05-01 09:00:00")}
	p2 := &repo.Point{ID: pointID(t, "ab34"), Machine: "m", Time: at("2024-05-01 18:00:00")}
	p3 := &repo.Point{ID: pointID(t, "cd56"), Machine: "m", Time: at("2024-05-02 01:00:00")}
	// 20:30 UTC on May 2 is 01:30 on May 3 in loc.
	p4 := &repo.Point{ID: pointID(t, "ef78"), Machine: "m", Time: time.Date(2024, 5, 2, 20, 30, 0, 0, time.UTC)}
	points := []*repo.Point{p1, p2, p3, p4}

	for _, tc := range []struct {
		sel  string
		loc  *time.Location
		want *repo.Point
	}{
		{"latest", loc, p4},
		// A date picks the last point of that day in loc.
		{"2024-05-01", loc, p2},
		{"2024-05-02", loc, p3},
		{"2024-05-03", loc, p4},
		// In UTC the days split differently.
		{"2024-05-02", time.UTC, p4},
		{"2024-05-01", time.UTC, p3}, // 01:00 in loc is 20:00 UTC on May 1
		// A time picks the last point at or before it, within that day.
		{"2024-05-01T10:30", loc, p1},
		{"2024-05-01T17:59", loc, p1},
		{"2024-05-01T18:00", loc, p2}, // the whole minute counts
		{"2024-05-01T23:59", loc, p2},
		{"2024-05-01T18:00:00", loc, p2},
		{"2024-05-01T17:59:59", loc, p1},
		{"2024-05-02T01:00", loc, p3},
		{"2024-05-03T12:00", loc, p4},
		// As azfs prints a time (with its offset, issue 14), wherever it
		// is read; to the minute; with a space for the T; in RFC 3339;
		// and as a mount of every point names the point (UTC).
		{p2.Time.In(loc).Format(repo.PointTimeLayout), time.UTC, p2},
		{p2.Time.In(loc).Format(repo.PointTimeLayout), loc, p2},
		{"2024-05-01 18:00 +0500", time.UTC, p2},
		{"2024-05-01 17:59:59 +0500", time.UTC, p1},
		{"2024-05-01 18:00", loc, p2},
		{"2024-05-01 18:00:00", loc, p2},
		{"2024-05-01T13:00:00Z", loc, p2},
		{"2024-05-01T18:00+05:00", time.UTC, p2},
		{p3.Time.UTC().Format(repo.PointNameLayout), loc, p3},
		{"2024-05-02T20-30-00Z", loc, p4},
		// ID prefixes.
		{"ab1", loc, p1},
		{"AB34", loc, p2},
		{"c", loc, p3},
		{p4.ID.String(), loc, p4},
	} {
		got, err := repo.SelectPoint(points, tc.sel, tc.loc)
		if err != nil {
			t.Errorf("SelectPoint(%q, %s): %v", tc.sel, tc.loc, err)
			continue
		}
		if got != tc.want {
			t.Errorf("SelectPoint(%q, %s) = %s at %s, want %s at %s", tc.sel, tc.loc, got.ID.Short(), got.Time, tc.want.ID.Short(), tc.want.Time)
		}
	}

	for _, tc := range []struct {
		sel      string
		mentions []*repo.Point // the error must name these
		contains string
	}{
		{"2024-04-30", []*repo.Point{p1}, "nearest"},
		{"2024-05-10", []*repo.Point{p4}, "nearest"},
		{"2024-05-01T08:59", []*repo.Point{p1}, "nearest"},     // p1 is later that day
		{"2024-05-02T00:30", []*repo.Point{p3, p2}, "nearest"}, // p2 was the day before
		{"ab", []*repo.Point{p1, p2}, "ambiguous"},
		{"ab5", []*repo.Point{p1}, "nearest"},
		// The nearest IDs come from the end of the list: the caller's
		// slice must not be reordered to find them.
		{"ef70", []*repo.Point{p4}, "nearest"},
		{"cd57", []*repo.Point{p3}, "nearest"},
		{"ffff", nil, "nearest"},
		{"not-a-selector", nil, "nearest"},
		{"2024-13-01", nil, "nearest"},
	} {
		before := slices.Clone(points)
		got, err := repo.SelectPoint(points, tc.sel, loc)
		if !errors.Is(err, repo.ErrUnknownPoint) {
			t.Errorf("SelectPoint(%q) = %v, %v; want ErrUnknownPoint", tc.sel, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("SelectPoint(%q): error %q does not say %q", tc.sel, err, tc.contains)
		}
		for _, p := range tc.mentions {
			if !strings.Contains(err.Error(), p.ID.Short()) {
				t.Errorf("SelectPoint(%q): error %q does not name %s", tc.sel, err, p.ID.Short())
			}
		}
		if !slices.Equal(points, before) {
			t.Errorf("SelectPoint(%q) reordered the caller's points", tc.sel)
		}
	}

	if _, err := repo.SelectPoint(nil, "latest", loc); !errors.Is(err, repo.ErrUnknownPoint) {
		t.Errorf("SelectPoint on no points: err = %v, want ErrUnknownPoint", err)
	}
}

func TestPointSet(t *testing.T) {
	a := &repo.Point{Paths: []string{"/usr/local/go/src", "/etc"}}
	b := &repo.Point{Paths: []string{"/etc", "/usr/local/go/src"}}
	c := &repo.Point{Paths: []string{"/etc/ssh"}}
	named := &repo.Point{Paths: []string{"/etc"}, SetName: "etc"}
	if a.Set() != b.Set() {
		t.Errorf("the same paths in another order are another set: %q, %q", a.Set(), b.Set())
	}
	if a.Set() == c.Set() || a.Set() == named.Set() || named.Set() != "etc" {
		t.Errorf("sets %q, %q, %q: want three", a.Set(), c.Set(), named.Set())
	}
	for _, name := range []string{"etc", "db-dump_2.daily", "A", strings.Repeat("x", 64)} {
		if err := repo.CheckSetName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for _, name := range []string{"", "/etc", ".hidden", "-x", "a b", "a/b", "a\x00", strings.Repeat("x", 65)} {
		if err := repo.CheckSetName(name); !errors.Is(err, repo.ErrSetName) {
			t.Errorf("%q: %v, want ErrSetName", name, err)
		}
	}
}

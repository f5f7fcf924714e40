package repo_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo"
)

func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"daily", "pg_dump", "env=prod", "db:main", "v1.2-rc", "A", strings.Repeat("t", 64)} {
		if err := repo.CheckTag(tag); err != nil {
			t.Errorf("%q refused: %v", tag, err)
		}
	}
	for _, tag := range []string{"", "a,b", "a b", ".x", "-x", "=x", "a/b", "a\x00", "é", strings.Repeat("t", 65)} {
		if err := repo.CheckTag(tag); !errors.Is(err, repo.ErrTag) {
			t.Errorf("%q: %v, want ErrTag", tag, err)
		}
	}
}

func TestNormalizeTags(t *testing.T) {
	got, err := repo.NormalizeTags([]string{"web", "db", "web", "daily"})
	if err != nil || !slices.Equal(got, []string{"daily", "db", "web"}) {
		t.Errorf("NormalizeTags = %q, %v; want sorted, each once", got, err)
	}
	if got, err := repo.NormalizeTags(nil); err != nil || got != nil {
		t.Errorf("NormalizeTags(nil) = %q, %v", got, err)
	}
	if _, err := repo.NormalizeTags([]string{"ok", "a,b"}); !errors.Is(err, repo.ErrTag) {
		t.Errorf("NormalizeTags with a comma: %v, want ErrTag", err)
	}
}

// TestTagFilter: restic's semantics. Each value is a group of tags joined
// by commas, all of which a point must hold; a point matches when it
// matches any group; an empty value matches the points without tags; no
// values match every point.
func TestTagFilter(t *testing.T) {
	none := &repo.Point{Machine: "none"}
	web := &repo.Point{Machine: "web", Tags: []string{"web"}}
	webDaily := &repo.Point{Machine: "webDaily", Tags: []string{"daily", "web"}}
	db := &repo.Point{Machine: "db", Tags: []string{"db"}}
	points := []*repo.Point{none, web, webDaily, db}
	for _, tc := range []struct {
		values []string
		want   []*repo.Point
	}{
		{nil, points},
		{[]string{"web"}, []*repo.Point{web, webDaily}},
		{[]string{"web,daily"}, []*repo.Point{webDaily}},
		{[]string{"daily,web"}, []*repo.Point{webDaily}},
		{[]string{"web,daily", "db"}, []*repo.Point{webDaily, db}},
		{[]string{"db", "web"}, []*repo.Point{web, webDaily, db}},
		{[]string{"nope"}, nil},
		{[]string{""}, []*repo.Point{none}},
		{[]string{"", "db"}, []*repo.Point{none, db}},
	} {
		f, err := repo.ParseTagFilter(tc.values)
		if err != nil {
			t.Errorf("ParseTagFilter(%q): %v", tc.values, err)
			continue
		}
		if got := f.Select(points); !slices.Equal(got, tc.want) {
			t.Errorf("--tag %q selects %v, want %v", tc.values, machines(got), machines(tc.want))
		}
		if f.Empty() != (len(tc.values) == 0) {
			t.Errorf("ParseTagFilter(%q).Empty() = %v", tc.values, f.Empty())
		}
	}
	for _, bad := range [][]string{{"a,,b"}, {"a b"}, {"ok", ",x"}, {"x,"}} {
		if _, err := repo.ParseTagFilter(bad); !errors.Is(err, repo.ErrTag) {
			t.Errorf("ParseTagFilter(%q): %v, want ErrTag", bad, err)
		}
	}
	f, err := repo.ParseTagFilter([]string{"web,daily", "db"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.String(), `tags "web,daily" or "db"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, err := f.Matching(points); err != nil || !slices.Equal(got, []*repo.Point{webDaily, db}) {
		t.Errorf("Matching = %v, %v; want webDaily and db", machines(got), err)
	}
	nope, _ := repo.ParseTagFilter([]string{"nope"})
	if got, err := nope.Matching(points); got != nil || !errors.Is(err, repo.ErrUnknownPoint) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Matching with no match = %v, %v; want ErrUnknownPoint naming the tag", machines(got), err)
	}
	if got, err := (repo.TagFilter{}).Matching(nil); got != nil || err != nil {
		t.Errorf("an empty filter's Matching(nil) = %v, %v; want no points and no error", got, err)
	}
}

func machines(points []*repo.Point) []string {
	var out []string
	for _, p := range points {
		out = append(out, p.Machine)
	}
	return out
}

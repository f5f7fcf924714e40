package browse_test

import (
	"context"
	"errors"
	iofs "io/fs"
	"slices"
	"testing"
	"time"

	"github.com/azfs/azfs/repo/browse"
)

// TestList: a directory lists what it holds, a file itself; recursive
// lists everything below, depth first by name; a missing path is
// io/fs.ErrNotExist.
func TestList(t *testing.T) {
	ctx := context.Background()
	src, v, p := backedUp(t)
	list := func(path string, recursive bool) []string {
		t.Helper()
		var got []string
		err := browse.List(ctx, v, p.Root, path, recursive, func(e browse.Entry) error {
			got = append(got, e.Path)
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q, %v): %v", path, recursive, err)
		}
		return got
	}
	if got, want := list(src+"/docs/", false), []string{src + "/docs/notes.txt", src + "/docs/report.odt"}; !slices.Equal(got, want) {
		t.Errorf("List docs = %q, want %q", got, want)
	}
	if got, want := list(src+"/docs/report.odt", false), []string{src + "/docs/report.odt"}; !slices.Equal(got, want) {
		t.Errorf("List a file = %q, want %q", got, want)
	}
	if got, want := list(src+"/same", true), []string{src + "/same/a", src + "/same/a/b.txt"}; !slices.Equal(got, want) {
		t.Errorf("List same recursive = %q, want %q", got, want)
	}
	if got := list(src+"/same", false); !slices.Equal(got, []string{src + "/same/a"}) {
		t.Errorf("List same = %q: a directory below is listed, not entered", got)
	}
	if got := list("", false); len(got) != 1 {
		t.Errorf("List top level = %q, want the one top directory", got)
	}
	err := browse.List(ctx, v, p.Root, src+"/none", false, func(browse.Entry) error { return nil })
	if !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("List a missing path: %v", err)
	}
}

// TestParseWhen: dates and times in the given zone, RFC 3339, durations
// back from now; anything else is ErrWhen.
func TestParseWhen(t *testing.T) {
	zone := time.FixedZone("X", 3600)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for s, want := range map[string]time.Time{
		"":                     {},
		"2026-12-01":           time.Date(2026, 12, 1, 0, 0, 0, 0, zone),
		"2026-12-01T10:30":     time.Date(2026, 12, 1, 10, 30, 0, 0, zone),
		"2026-12-01 10:30:05":  time.Date(2026, 12, 1, 10, 30, 5, 0, zone),
		"2026-12-01T10:30:00Z": time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"36h":                  now.Add(-36 * time.Hour),
	} {
		got, err := browse.ParseWhen(s, now, zone)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseWhen(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"yesterday", "2026-13-01", "7x"} {
		if _, err := browse.ParseWhen(s, now, zone); !errors.Is(err, browse.ErrWhen) {
			t.Errorf("ParseWhen(%q): %v, want ErrWhen", s, err)
		}
	}
}

// TestChangeMark: diff's marks.
func TestChangeMark(t *testing.T) {
	for c, want := range map[*browse.Change]string{
		{What: "added"}:                                                "+",
		{What: "removed"}:                                              "-",
		{What: "modified", Content: true}:                              "M",
		{What: "modified", Metadata: []string{"mode"}}:                 "U",
		{What: "modified", Content: true, Metadata: []string{"mtime"}}: "M",
	} {
		if got := c.Mark(); got != want {
			t.Errorf("%+v: Mark %q, want %q", *c, got, want)
		}
	}
}

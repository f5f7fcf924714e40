package browse

import (
	"context"
	"fmt"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/tree"
)

// Query is what Find looks for.
type Query struct {
	// Pattern is matched against each entry's whole path from the point's
	// top level, with restic's pattern syntax (package selection): "*.odt"
	// finds that name at any depth, "/home/*/report.odt" is anchored at
	// the top level, "**" spans directories. NewQuery makes it; a
	// re-include ("!") is refused.
	Pattern selection.Patterns
	// Newer and Older, when not zero, keep entries whose mtime is after
	// Newer or before Older.
	Newer, Older time.Time
}

// NewQuery parses pattern into a Query (fold: case-insensitive).
func NewQuery(pattern string, fold bool) (Query, error) {
	p, err := selection.ParsePattern(pattern, fold)
	if err != nil {
		return Query{}, err
	}
	if p.Negated() {
		return Query{}, fmt.Errorf("%w %q: find takes no re-include (!)", selection.ErrBadPattern, pattern)
	}
	var q Query
	if err := q.Pattern.Add(pattern, fold); err != nil {
		return Query{}, err
	}
	return q, nil
}

// Found is an entry Find found in one of several points, with that
// point: the shape of 'azfs find --json'.
type Found struct {
	Point   string    `json:"point"` // its ID
	Machine string    `json:"machine"`
	Time    time.Time `json:"time"` // UTC
	Entry
}

// FindIn calls fn for every entry q matches in each point of points in
// turn (Find), each with its point.
func FindIn(ctx context.Context, src Source, points []*repo.Point, q Query, fn func(Found) error) error {
	for _, p := range points {
		err := Find(ctx, src, p.Root, q, func(e Entry) error {
			return fn(Found{Point: p.ID.String(), Machine: p.Machine, Time: p.Time.UTC(), Entry: e})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Find calls fn for every entry of the point whose root part is root that q
// matches, in walk order (depth first, by name).
func Find(ctx context.Context, src Source, root keys.ID, q Query, fn func(Entry) error) error {
	top, err := Root(ctx, src, root)
	if err != nil {
		return err
	}
	return Walk(ctx, src, "/", top, func(p string, n *tree.Node) error {
		if p == "/" {
			return nil
		}
		// For one pattern without a re-include, "excluded" is its match
		// of the whole path; the walk asks about every path.
		if !q.Pattern.ExcludedPath(p) {
			return nil
		}
		mtime := n.MTime.Time()
		if !q.Newer.IsZero() && !mtime.After(q.Newer) || !q.Older.IsZero() && !mtime.Before(q.Older) {
			return nil
		}
		return fn(EntryOf(p, n))
	})
}

// ErrWhen reports a --newer or --older value ParseWhen does not read.
var ErrWhen = errkind.New(errkind.Invalid, "give a date (2026-12-01), a time (2026-12-01T10:30) or a duration back from now (7d)")

// ParseWhen reads a time as Query.Newer and Older take it from a user: a
// date or time as points are named, in loc (2026-12-01, 2026-12-01T10:30,
// "2026-12-01 10:30:05"), RFC 3339, or a duration back from now (7d,
// 36h; retention.ParseDuration). "" is the zero time: no bound.
func ParseWhen(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := retention.ParseDuration(s, true); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: %w", s, ErrWhen)
}

package repo

import (
	"fmt"
	"slices"
	"strings"

	"github.com/azfs/azfs/internal/errkind"
)

// ErrTag reports a point tag that is not valid.
var ErrTag = errkind.New(errkind.Invalid, "invalid tag")

// tagPunct is what a tag may hold besides letters and digits: a comma
// joins tags in a filter (ParseTagFilter), so it is not among them.
const tagPunct = "._-:="

// CheckTag accepts a tag of 1 to 64 letters, digits, '.', '_', '-', ':'
// and '=' that starts with a letter or digit ("daily", "env=prod").
func CheckTag(tag string) error {
	return checkLabel(ErrTag, tag, tagPunct)
}

// NormalizeTags checks each of tags (CheckTag) and returns them sorted,
// each once; nil for none. Point.Tags is stored so.
func NormalizeTags(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	for _, t := range tags {
		if err := CheckTag(t); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// TagFilter selects points by their tags, as restic's repeated --tag
// does: each group is a list of tags a point must all hold, and a point
// matches when it matches any group. An empty group matches the points
// without tags; a filter without groups matches every point.
type TagFilter struct {
	groups [][]string
}

// ParseTagFilter makes a filter of the values of a repeated --tag flag:
// each value is a group, its tags joined by commas ("web,daily" holds web
// and daily); the empty value is the group of points without tags.
func ParseTagFilter(values []string) (TagFilter, error) {
	var f TagFilter
	for _, v := range values {
		var group []string
		if v != "" {
			group = strings.Split(v, ",")
		}
		for _, t := range group {
			if err := CheckTag(t); err != nil {
				return TagFilter{}, fmt.Errorf("tag filter %q: %w", v, err)
			}
		}
		f.groups = append(f.groups, group)
	}
	return f, nil
}

// Empty reports whether f matches every point (no groups).
func (f TagFilter) Empty() bool {
	return len(f.groups) == 0
}

// Match reports whether p holds every tag of one of f's groups (or f is
// empty).
func (f TagFilter) Match(p *Point) bool {
	if f.Empty() {
		return true
	}
	for _, group := range f.groups {
		if len(group) == 0 && len(p.Tags) == 0 {
			return true
		}
		if len(group) > 0 && !slices.ContainsFunc(group, func(t string) bool { return !slices.Contains(p.Tags, t) }) {
			return true
		}
	}
	return false
}

// Select returns the points of points f matches, in their order.
func (f TagFilter) Select(points []*Point) []*Point {
	var out []*Point
	for _, p := range points {
		if f.Match(p) {
			out = append(out, p)
		}
	}
	return out
}

// Matching is Select for a command that acts on the points it selects: it
// returns an error wrapping ErrUnknownPoint, naming f, when f is not
// empty and matches none of points.
func (f TagFilter) Matching(points []*Point) ([]*Point, error) {
	if f.Empty() {
		return points, nil
	}
	out := f.Select(points)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of the %d live points has %s", ErrUnknownPoint, len(points), f)
	}
	return out, nil
}

// String describes f for messages: `tags "web,daily" or "db"`.
func (f TagFilter) String() string {
	q := make([]string, len(f.groups))
	for i, g := range f.groups {
		q[i] = fmt.Sprintf("%q", strings.Join(g, ","))
	}
	return "tags " + strings.Join(q, " or ")
}

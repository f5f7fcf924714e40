package retention

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Checker answers, for a history of points, whether a Retention forgot one
// of them at some time: among the points of its set that existed then (no
// later than that time), evaluated then, exactly as Apply decides.
// Checking a claim "the policy forgot these points at this time" needs
// this, and a history of thousands of points checked against thousands of
// such claims would cost Apply's O(n) each time; a query costs O(log n).
type Checker struct {
	sets  []*setChecker
	where []setIndex // where[i]: point i's set and its index there
}

type setIndex struct{ set, i int }

// setChecker is a Checker of the points of one set.
type setChecker struct {
	r     Retention
	times []time.Time // the points in ascending (time, ID) order
	pos   []int       // pos[i]: where points[i] is in that order
	// For each period rule with a count: the period of every point, and
	// changes[j] = how many of the points 1..j start a period their
	// predecessor is not in.
	keys    [][]int64
	changes [][]int32
	rules   []int // the counts of those rules
}

// NewChecker prepares queries about points under r, with periods in loc.
func NewChecker(points []Point, r Retention, loc *time.Location) *Checker {
	return NewCheckerEach(points, func(string) Retention { return r }, loc)
}

// NewCheckerEach is NewChecker with a Retention of each set's own:
// rules(set) for the points of set.
func NewCheckerEach(points []Point, rules func(set string) Retention, loc *time.Location) *Checker {
	c := &Checker{where: make([]setIndex, len(points))}
	for _, set := range bySet(points) {
		members := make([]Point, len(set))
		for j, i := range set {
			members[j] = points[i]
			c.where[i] = setIndex{len(c.sets), j}
		}
		c.sets = append(c.sets, newSetChecker(members, rules(members[0].Set), loc))
	}
	return c
}

// Forgets reports whether the Retention forgets point i (an index into the
// points given to NewChecker) among the points of its set whose time is
// not after at, evaluated at at: what Apply(those points, r, loc, at)
// decides for it. A point later than at did not exist then, and is not
// forgotten.
func (c *Checker) Forgets(i int, at time.Time) bool {
	w := c.where[i]
	return c.sets[w.set].forgets(w.i, at)
}

func newSetChecker(points []Point, r Retention, loc *time.Location) *setChecker {
	n := len(points)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(points[a].Time.Compare(points[b].Time), strings.Compare(points[a].ID, points[b].ID))
	})
	c := &setChecker{r: r, times: make([]time.Time, n), pos: make([]int, n)}
	for k, i := range order {
		c.times[k] = points[i].Time
		c.pos[i] = k
	}
	for j, count := range r.counts() {
		if count == 0 || periodKeys[j] == nil {
			continue
		}
		keys := make([]int64, n)
		changes := make([]int32, n)
		for k, t := range c.times {
			keys[k] = periodKeys[j](t.In(loc))
			if k > 0 {
				changes[k] = changes[k-1]
				if keys[k] != keys[k-1] {
					changes[k]++
				}
			}
		}
		c.keys, c.changes, c.rules = append(c.keys, keys), append(c.changes, changes), append(c.rules, count)
	}
	return c
}

// forgets is Checker.Forgets of point i of the set.
func (c *setChecker) forgets(i int, at time.Time) bool {
	if c.r.Empty() {
		return false
	}
	k := c.pos[i]
	if c.times[k].After(at) {
		return false
	}
	// t: the newest point no later than at.
	t := sort.Search(len(c.times), func(j int) bool { return c.times[j].After(at) }) - 1
	if c.r.KeepWithin > 0 && c.times[k].After(c.times[t].Add(-c.r.KeepWithin)) {
		return false
	}
	if t-k < c.r.KeepLast {
		return false
	}
	for j, count := range c.rules {
		keys, changes := c.keys[j], c.changes[j]
		if k < t && keys[k] == keys[k+1] {
			continue // not the newest of its period
		}
		// Periods newer than the point's: the runs among k+1..t.
		newer := 0
		if k < t {
			newer = 1 + int(changes[t]-changes[k+1])
		}
		if newer < count {
			return false
		}
	}
	return true
}

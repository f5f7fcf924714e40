// Package retention decides which recovery points a retention policy keeps
// and which it forgets. It is pure: no storage, no clock of its own.
//
// The rules are restic's (forget --keep-*): points are taken newest first;
// KeepLast keeps the n newest; each of KeepHourly, KeepDaily, KeepWeekly,
// KeepMonthly and KeepYearly keeps the newest point of each of the n
// newest hours, days, ISO weeks, months or years that have points (as in
// restic, a bucket is a run of points in the same period: in a zone that
// turns its clocks back across midnight, a day can come twice); and
// KeepWithin keeps every point newer than the reference time minus the
// duration. A point is kept when any rule keeps it. Unlike restic, whose
// buckets follow the time zone each snapshot was recorded in, buckets here
// are taken in one time zone given by the caller, so that every reader of a
// policy computes the same buckets, and a change to or from daylight saving
// time moves no point to another day (a day of 23 or 25 hours is one day;
// the repeated hour of an autumn change is one hour bucket).
//
// The reference time of KeepWithin is the newest point's time, as in
// restic (a machine that stops backing up does not lose its last points to
// the passing of time), but never later than now: a point dated in the
// future cannot push the others out.
//
// A Retention applies to the points of each backup set (Point.Set) apart,
// as if the set's points were all there is: a set's points never count
// against another set's, and the reference time of KeepWithin is the
// newest point of the set.
//
// A Retention whose fields are all zero keeps everything: an empty policy
// never forgets a point. There are no caps: counts are plain ints.
//
// Forgetting is monotone: a point that a Retention forgets among some
// points of its set it also forgets among any superset, and at any later now
// (given periods that follow one another in time, which they do except
// where clocks go back across a period's start). Callers rely on it to
// check what others forgot (package repo/policy, with a [Checker]).
package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Retention says which points to keep.
type Retention struct {
	KeepLast    int           // the n newest points
	KeepHourly  int           // the newest point of each of the n newest hours with points
	KeepDaily   int           // ... days
	KeepWeekly  int           // ... ISO 8601 weeks (Monday to Sunday)
	KeepMonthly int           // ... calendar months
	KeepYearly  int           // ... calendar years
	KeepWithin  time.Duration // every point within this of the reference time
}

// Empty reports whether r has no rule, and so keeps everything.
func (r Retention) Empty() bool { return r == Retention{} }

// Validate refuses negative counts and durations.
func (r Retention) Validate() error {
	for i, n := range r.counts() {
		if n < 0 {
			return fmt.Errorf("retention: keep-%s %d is negative", ruleNames[i], n)
		}
	}
	if r.KeepWithin < 0 {
		return fmt.Errorf("retention: keep-within %s is negative", r.KeepWithin)
	}
	return nil
}

// String describes r, as "keep daily 14, weekly 8" or "keep everything".
func (r Retention) String() string {
	if r.Empty() {
		return "keep everything"
	}
	var parts []string
	for i, n := range r.counts() {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", ruleNames[i], n))
		}
	}
	if r.KeepWithin > 0 {
		parts = append(parts, "within "+FormatDuration(r.KeepWithin))
	}
	return "keep " + strings.Join(parts, ", ")
}

// Lowered describes each rule in which next keeps less than r, whatever
// points there are, as "yearly 3 to 0" or "within 14d to 7d": a count or
// keep-within that next lowers (to 0 too, which drops the rule), or
// "everything to keep daily 7" when r keeps everything and next does not.
// It is empty when next keeps at least what r keeps in every rule.
func (r Retention) Lowered(next Retention) []string {
	switch {
	case next.Empty():
		return nil
	case r.Empty():
		return []string{"everything to " + next.String()}
	}
	var out []string
	for i, n := range next.counts() {
		if was := r.counts()[i]; n < was {
			out = append(out, fmt.Sprintf("%s %d to %d", ruleNames[i], was, n))
		}
	}
	if next.KeepWithin < r.KeepWithin {
		out = append(out, fmt.Sprintf("within %s to %s", FormatDuration(r.KeepWithin), FormatDuration(next.KeepWithin)))
	}
	return out
}

// The rules in the order of Retention.counts, and the period of each.
var (
	ruleNames  = []string{"last", "hourly", "daily", "weekly", "monthly", "yearly"}
	periodKeys = []func(time.Time) int64{
		nil,
		func(t time.Time) int64 {
			y, m, d := t.Date()
			return ((int64(y)*100+int64(m))*100+int64(d))*100 + int64(t.Hour())
		},
		func(t time.Time) int64 {
			y, m, d := t.Date()
			return (int64(y)*100+int64(m))*100 + int64(d)
		},
		func(t time.Time) int64 {
			y, w := t.ISOWeek()
			return int64(y)*100 + int64(w)
		},
		func(t time.Time) int64 { return int64(t.Year())*100 + int64(t.Month()) },
		func(t time.Time) int64 { return int64(t.Year()) },
	}
)

func (r Retention) counts() []int {
	return []int{r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly}
}

// Point is what retention needs of a recovery point.
type Point struct {
	ID string // breaks ties between points of the same time
	// Set is the backup set the point belongs to: a Retention applies to
	// the points of each set apart, never across sets.
	Set  string
	Time time.Time
}

// bySet groups the indexes of points by Set, each group in the order of
// points, the groups in the order of their first points.
func bySet(points []Point) [][]int {
	var sets [][]int
	at := make(map[string]int)
	for i, p := range points {
		j, ok := at[p.Set]
		if !ok {
			j = len(sets)
			at[p.Set] = j
			sets = append(sets, nil)
		}
		sets[j] = append(sets[j], i)
	}
	return sets
}

// Decision is what a Retention decided for one point.
type Decision struct {
	Keep bool
	// Reasons name the rules that keep the point ("last", "hourly",
	// "daily", "weekly", "monthly", "yearly", "within 14d", or "everything"
	// for an empty policy); empty for a point that is forgotten.
	Reasons []string
}

// Apply decides, for each of points (in any order), whether r keeps it,
// with buckets taken in loc and now bounding the reference time of
// KeepWithin: r applies to the points of each set apart, as if each set
// were all there is. The result is in the order of points.
func Apply(points []Point, r Retention, loc *time.Location, now time.Time) []Decision {
	return ApplyEach(points, func(string) Retention { return r }, loc, now)
}

// ApplyEach is Apply with a Retention of each set's own: rules(set)
// decides for the points of set.
func ApplyEach(points []Point, rules func(set string) Retention, loc *time.Location, now time.Time) []Decision {
	out := make([]Decision, len(points))
	for _, set := range bySet(points) {
		r := rules(points[set[0]].Set)
		if r.Empty() {
			for _, i := range set {
				out[i] = Decision{Keep: true, Reasons: []string{"everything"}}
			}
			continue
		}
		applySet(points, set, r, loc, now, out)
	}
	return out
}

// applySet is Apply on the points of one set, whose indexes are order,
// deciding into out.
func applySet(points []Point, order []int, r Retention, loc *time.Location, now time.Time, out []Decision) {
	// Newest first; points of the same time in a fixed order.
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(points[b].Time.Compare(points[a].Time), strings.Compare(points[b].ID, points[a].ID))
	})
	type bucket struct {
		reason string
		left   int
		key    func(time.Time) int64 // nil: every point is a bucket of its own
		last   int64
		seen   bool
	}
	var buckets []*bucket
	for i, k := range periodKeys {
		buckets = append(buckets, &bucket{reason: ruleNames[i], left: r.counts()[i], key: k})
	}
	var within time.Time
	withinReason := ""
	if r.KeepWithin > 0 && len(order) > 0 {
		ref := points[order[0]].Time
		if ref.After(now) {
			ref = now
		}
		within = ref.Add(-r.KeepWithin)
		withinReason = "within " + FormatDuration(r.KeepWithin)
	}
	for _, i := range order {
		t := points[i].Time.In(loc)
		var d Decision
		if withinReason != "" && t.After(within) {
			d.Reasons = append(d.Reasons, withinReason)
		}
		for _, b := range buckets {
			if b.left == 0 {
				continue
			}
			if b.key == nil {
				b.left--
				d.Reasons = append(d.Reasons, b.reason)
				continue
			}
			if k := b.key(t); !b.seen || k != b.last {
				b.seen, b.last = true, k
				b.left--
				d.Reasons = append(d.Reasons, b.reason)
			}
		}
		d.Keep = len(d.Reasons) > 0
		out[i] = d
	}
}

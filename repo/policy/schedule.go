package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azfs/azfs/repo/retention"
)

// Schedule says when a machine backs up: every Every, or at the times of
// day At, in the policy's time zone. Exactly one is set.
//
// Runs of an Every of up to a day fall on the wall-clock times that are
// multiples of it from midnight, every day anew (every 12h: 00:00 and
// 12:00; every 5h: 00:00, 05:00, 10:00, 15:00, 20:00); longer ones on
// multiples of it from the Unix epoch. So a schedule is a set of fixed
// times: an on-demand backup does not move it, and every machine with one
// policy agrees on it. A time of day that does not exist on the day of a
// change to daylight saving time is taken an hour later (time.Date's
// rule), one that exists twice at its first occurrence.
type Schedule struct {
	Every time.Duration
	At    []TimeOfDay // ascending
}

// Bounds of a schedule. Azure Backup's agent backs up every 4 to 12 hours
// or up to 3 times a day; azfs accepts any interval from an hour to a year
// and up to 24 times a day, at least an hour apart.
const (
	MinInterval = time.Hour
	MaxInterval = retention.Year
)

// TimeOfDay is a wall-clock time, in minutes after midnight.
type TimeOfDay int

// ParseTimeOfDay parses "HH:MM" (00:00 to 23:59).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil || len(strings.TrimSpace(s)) != 5 {
		return 0, fmt.Errorf("%w: time of day %q: write it as HH:MM, such as 02:00", ErrPolicy, s)
	}
	return TimeOfDay(t.Hour()*60 + t.Minute()), nil
}

// String writes the time as "HH:MM".
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// ParseAt parses a comma-separated list of times of day, "02:00,14:00",
// into an ascending list.
func ParseAt(s string) ([]TimeOfDay, error) {
	var out []TimeOfDay
	for part := range strings.SplitSeq(s, ",") {
		t, err := ParseTimeOfDay(part)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// Validate checks that exactly one of Every and At is set and within the
// bounds: Every from MinInterval to MaxInterval in whole minutes; At up to
// 24 times of day, each at least MinInterval after the one before (the
// last before the first of the next day too).
func (s Schedule) Validate() error {
	switch {
	case s.Every != 0 && len(s.At) > 0:
		return fmt.Errorf("%w: a schedule runs either every so often or at times of day, not both", ErrPolicy)
	case s.Every == 0 && len(s.At) == 0:
		return fmt.Errorf("%w: the schedule has no interval and no times of day", ErrPolicy)
	case s.Every != 0:
		if s.Every < MinInterval || s.Every > MaxInterval || s.Every%time.Minute != 0 {
			return fmt.Errorf("%w: every %s: use whole minutes from 1h to 1y", ErrPolicy, retention.FormatDuration(s.Every))
		}
		return nil
	}
	if len(s.At) > 24 {
		return fmt.Errorf("%w: %d times of day; at most 24", ErrPolicy, len(s.At))
	}
	gap := int(MinInterval / time.Minute)
	for i, t := range s.At {
		if t < 0 || t >= 24*60 {
			return fmt.Errorf("%w: time of day %d minutes", ErrPolicy, int(t))
		}
		prev := s.At[len(s.At)-1] - 24*60
		if i > 0 {
			prev = s.At[i-1]
		}
		if len(s.At) > 1 && int(t-prev) < gap {
			return fmt.Errorf("%w: %s and %s are less than an hour apart (times must be ascending)", ErrPolicy, prev%(24*60), t)
		}
	}
	return nil
}

// String describes the schedule: "every 12h" or "at 02:00, 14:00".
func (s Schedule) String() string {
	if len(s.At) == 0 {
		return "every " + retention.FormatDuration(s.Every)
	}
	parts := make([]string, len(s.At))
	for i, t := range s.At {
		parts[i] = t.String()
	}
	return "at " + strings.Join(parts, ", ")
}

// Next returns the first scheduled time strictly after after, with times
// of day in loc; zero for a schedule that is not valid.
func (s Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if s.Validate() != nil {
		return time.Time{}
	}
	if s.Every > 24*time.Hour {
		n := after.UnixNano()/int64(s.Every) + 1
		return time.Unix(0, n*int64(s.Every)).In(loc)
	}
	var slots []int // minutes after midnight
	if s.Every > 0 {
		for m := 0; m < 24*60; m += int(s.Every / time.Minute) {
			slots = append(slots, m)
		}
	} else {
		for _, t := range s.At {
			slots = append(slots, int(t))
		}
	}
	y, mo, d := after.In(loc).Date()
	// The day before too: a day's last slot can come after the next day's
	// midnight when the clocks go back.
	for day := -1; day <= 2; day++ {
		for _, m := range slots {
			if t := wallClock(y, mo, d+day, m, loc); t.After(after) {
				return t
			}
		}
	}
	return time.Time{}
}

// wallClock returns minute m of the day y-mo-d in loc: time.Date's answer,
// except that a time that exists twice (the clocks went back) is its first
// occurrence, which time.Date does not promise.
func wallClock(y int, mo time.Month, d, m int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, 0, m, 0, 0, loc)
	_, after := t.Zone()
	_, before := t.Add(-3 * time.Hour).Zone()
	if before <= after {
		return t
	}
	if earlier := t.Add(-time.Duration(before-after) * time.Second); earlier.In(loc).Hour() == t.Hour() && earlier.In(loc).Minute() == t.Minute() {
		return earlier
	}
	return t
}

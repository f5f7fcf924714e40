package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
)

// Units of ParseDuration beyond Go's. They are fixed lengths, not calendar
// ones: a year is 365 days and a day 24 hours, whatever daylight saving
// time does.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
	Year = 365 * Day
)

// ErrDuration reports a duration that does not parse.
var ErrDuration = errkind.New(errkind.Invalid, "invalid duration")

// ParseDuration parses a duration such as "14d", "2w", "1y", "36h" or
// "1y2w3d": a sequence of non-negative integers each followed by a unit,
// y (365 days), w (7 days), d (24 hours) or h; with minutes, also m
// (minutes) and s. Without minutes "m" is refused, since restic's --keep-within reads it as
// months: a retention of "6m" is never taken for six minutes.
func ParseDuration(s string, minutes bool) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrDuration)
	}
	if s == "0" {
		return 0, nil
	}
	units := map[byte]time.Duration{'y': Year, 'w': Week, 'd': Day, 'h': time.Hour}
	if minutes {
		units['m'], units['s'] = time.Minute, time.Second
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) {
			return 0, fmt.Errorf("%w %q: use a number and a unit, such as 14d, 2w, 1y or 12h", ErrDuration, in)
		}
		unit, ok := units[s[i]]
		if !ok {
			if s[i] == 'm' {
				return 0, fmt.Errorf("%w %q: m is ambiguous (months or minutes): use d, w or y", ErrDuration, in)
			}
			return 0, fmt.Errorf("%w %q: unknown unit %q (use y, w, d or h)", ErrDuration, in, s[i])
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > int64(1<<63-1)/int64(unit) || total > time.Duration(1<<63-1)-time.Duration(n)*unit {
			return 0, fmt.Errorf("%w %q: too long", ErrDuration, in)
		}
		total += time.Duration(n) * unit
		s = s[i+1:]
	}
	return total, nil
}

// FormatDuration writes d in the units of ParseDuration, largest first and
// without weeks: 336h is "14d", 8760h is "1y", 90m is "1h30m", 0 is "0".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{Year, "y"}, {Day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if d > 0 {
		fmt.Fprintf(&b, "%dns", int64(d))
	}
	return b.String()
}

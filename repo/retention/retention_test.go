package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone %s: %v", name, err)
	}
	return loc
}

// at parses RFC 3339 times (with their offsets) into points named by index.
func at(t testing.TB, times ...string) []Point {
	t.Helper()
	ps := make([]Point, len(times))
	for i, s := range times {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("bad time %q: %v", s, err)
		}
		ps[i] = Point{ID: fmt.Sprintf("p%02d", i), Time: tm}
	}
	return ps
}

// kept returns "time(reasons)" of every kept point, in input order.
func kept(points []Point, ds []Decision) []string {
	var out []string
	for i, d := range ds {
		if d.Keep {
			out = append(out, points[i].Time.UTC().Format("2006-01-02T15:04Z")+"("+strings.Join(d.Reasons, ",")+")")
		}
	}
	return out
}

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestApply(t *testing.T) {
	utc := time.UTC
	berlin := mustLoad(t, "Europe/Berlin")
	newYork := mustLoad(t, "America/New_York")
	for _, tc := range []struct {
		name   string
		points []string
		r      Retention
		loc    *time.Location
		now    time.Time
		want   []string
	}{{
		name:   "empty policy keeps everything",
		points: []string{"2020-01-01T00:00:00Z", "2024-05-01T10:00:00Z", "2025-05-31T23:59:59Z"},
		loc:    utc,
		want:   []string{"2020-01-01T00:00Z(everything)", "2024-05-01T10:00Z(everything)", "2025-05-31T23:59Z(everything)"},
	}, {
		name:   "no points",
		r:      Retention{KeepLast: 3},
		loc:    utc,
		points: nil,
		want:   nil,
	}, {
		name:   "keep last",
		points: []string{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z"},
		r:      Retention{KeepLast: 3},
		loc:    utc,
		want:   []string{"2025-01-03T00:00Z(last)", "2025-01-04T00:00Z(last)", "2025-01-05T00:00Z(last)"},
	}, {
		name:   "keep last more than there are",
		points: []string{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"},
		r:      Retention{KeepLast: 1000000},
		loc:    utc,
		want:   []string{"2025-01-01T00:00Z(last)", "2025-01-02T00:00Z(last)"},
	}, {
		name: "daily keeps the newest point of each day",
		points: []string{"2025-03-01T08:00:00Z", "2025-03-01T20:00:00Z", "2025-03-02T08:00:00Z", "2025-03-02T20:00:00Z",
			"2025-03-04T08:00:00Z", "2025-03-04T09:00:00Z"},
		r:    Retention{KeepDaily: 3},
		loc:  utc,
		want: []string{"2025-03-01T20:00Z(daily)", "2025-03-02T20:00Z(daily)", "2025-03-04T09:00Z(daily)"},
	}, {
		name:   "daily counts days with points, not calendar days",
		points: []string{"2024-01-01T12:00:00Z", "2024-06-01T12:00:00Z", "2025-01-01T12:00:00Z"},
		r:      Retention{KeepDaily: 2},
		loc:    utc,
		want:   []string{"2024-06-01T12:00Z(daily)", "2025-01-01T12:00Z(daily)"},
	}, {
		name:   "daily across a year boundary",
		points: []string{"2024-12-30T10:00:00Z", "2024-12-31T10:00:00Z", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z"},
		r:      Retention{KeepDaily: 2},
		loc:    utc,
		want:   []string{"2024-12-31T23:59Z(daily)", "2025-01-01T00:00Z(daily)"},
	}, {
		// 2020 has an ISO week 53: Monday 2020-12-28 to Sunday 2021-01-03.
		name:   "weekly with ISO week 53",
		points: []string{"2020-12-27T12:00:00Z", "2020-12-28T12:00:00Z", "2021-01-03T12:00:00Z", "2021-01-04T12:00:00Z"},
		r:      Retention{KeepWeekly: 3},
		loc:    utc,
		want:   []string{"2020-12-27T12:00Z(weekly)", "2021-01-03T12:00Z(weekly)", "2021-01-04T12:00Z(weekly)"},
	}, {
		// Monday 2024-12-30 is in ISO week 2025-W01, with 2025-01-05.
		name:   "weekly: the ISO year is not the calendar year",
		points: []string{"2024-12-29T12:00:00Z", "2024-12-30T12:00:00Z", "2025-01-05T12:00:00Z"},
		r:      Retention{KeepWeekly: 2},
		loc:    utc,
		want:   []string{"2024-12-29T12:00Z(weekly)", "2025-01-05T12:00Z(weekly)"},
	}, {
		name:   "weekly: weeks start on Monday",
		points: []string{"2025-05-04T12:00:00Z", "2025-05-05T00:30:00Z", "2025-05-11T23:00:00Z"},
		r:      Retention{KeepWeekly: 5},
		loc:    utc,
		want:   []string{"2025-05-04T12:00Z(weekly)", "2025-05-11T23:00Z(weekly)"},
	}, {
		name:   "monthly",
		points: []string{"2025-01-31T12:00:00Z", "2025-02-01T12:00:00Z", "2025-02-28T12:00:00Z", "2025-03-01T12:00:00Z"},
		r:      Retention{KeepMonthly: 2},
		loc:    utc,
		want:   []string{"2025-02-28T12:00Z(monthly)", "2025-03-01T12:00Z(monthly)"},
	}, {
		name:   "yearly in UTC",
		points: []string{"2022-06-01T00:00:00Z", "2023-01-01T00:00:00Z", "2023-12-31T23:30:00Z", "2024-03-01T00:00:00Z"},
		r:      Retention{KeepYearly: 2},
		loc:    utc,
		want:   []string{"2023-12-31T23:30Z(yearly)", "2024-03-01T00:00Z(yearly)"},
	}, {
		// 2023-12-31T23:30Z is already 2024 in Berlin.
		name:   "yearly in Berlin",
		points: []string{"2022-06-01T00:00:00Z", "2023-01-01T00:00:00Z", "2023-12-31T23:30:00Z", "2024-03-01T00:00:00Z"},
		r:      Retention{KeepYearly: 2},
		loc:    berlin,
		want:   []string{"2023-01-01T00:00Z(yearly)", "2024-03-01T00:00Z(yearly)"},
	}, {
		// Berlin springs forward on 2024-03-31 (02:00 -> 03:00): that day
		// has 23 hours and is still one day.
		name: "daily across the spring change in Berlin",
		points: []string{"2024-03-30T22:30:00Z", // 03-30 23:30 +01
			"2024-03-31T00:30:00Z", // 03-31 01:30 +01
			"2024-03-31T01:30:00Z", // 03-31 03:30 +02
			"2024-03-31T22:30:00Z", // 04-01 00:30 +02
		},
		r:    Retention{KeepDaily: 2},
		loc:  berlin,
		want: []string{"2024-03-31T01:30Z(daily)", "2024-03-31T22:30Z(daily)"},
	}, {
		name:   "the same points, days in UTC",
		points: []string{"2024-03-30T22:30:00Z", "2024-03-31T00:30:00Z", "2024-03-31T01:30:00Z", "2024-03-31T22:30:00Z"},
		r:      Retention{KeepDaily: 2},
		loc:    utc,
		want:   []string{"2024-03-30T22:30Z(daily)", "2024-03-31T22:30Z(daily)"},
	}, {
		// Berlin falls back on 2024-10-27 (03:00 -> 02:00): a day of 25
		// hours, still one day.
		name: "daily across the autumn change in Berlin",
		points: []string{"2024-10-26T21:30:00Z", // 10-26 23:30 +02
			"2024-10-27T00:30:00Z", // 10-27 02:30 +02
			"2024-10-27T01:30:00Z", // 10-27 02:30 +01
			"2024-10-27T22:30:00Z", // 10-27 23:30 +01
			"2024-10-27T23:30:00Z", // 10-28 00:30 +01
		},
		r:    Retention{KeepDaily: 3},
		loc:  berlin,
		want: []string{"2024-10-26T21:30Z(daily)", "2024-10-27T22:30Z(daily)", "2024-10-27T23:30Z(daily)"},
	}, {
		// New York falls back on 2024-11-03: 01:30 EDT (05:30Z) and
		// 01:30 EST (06:30Z) are the same wall-clock hour, one bucket.
		name:   "hourly across the autumn change in New York",
		points: []string{"2024-11-03T04:30:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-03T07:30:00Z"},
		r:      Retention{KeepHourly: 10},
		loc:    newYork,
		want:   []string{"2024-11-03T04:30Z(hourly)", "2024-11-03T06:30Z(hourly)", "2024-11-03T07:30Z(hourly)"},
	}, {
		name:   "the same points, hours in UTC",
		points: []string{"2024-11-03T04:30:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-03T07:30:00Z"},
		r:      Retention{KeepHourly: 10},
		loc:    utc,
		want:   []string{"2024-11-03T04:30Z(hourly)", "2024-11-03T05:30Z(hourly)", "2024-11-03T06:30Z(hourly)", "2024-11-03T07:30Z(hourly)"},
	}, {
		// New York springs forward on 2024-03-10 (02:00 -> 03:00).
		name:   "daily across the spring change in New York",
		points: []string{"2024-03-10T04:59:00Z", "2024-03-10T06:59:00Z", "2024-03-10T07:01:00Z", "2024-03-11T03:59:00Z", "2024-03-11T04:01:00Z"},
		r:      Retention{KeepDaily: 5},
		loc:    newYork,
		want:   []string{"2024-03-10T04:59Z(daily)", "2024-03-11T03:59Z(daily)", "2024-03-11T04:01Z(daily)"},
	}, {
		name:   "keep within, relative to the newest point",
		points: []string{"2025-04-01T12:00:00Z", "2025-04-20T12:00:00Z", "2025-04-25T12:00:00Z", "2025-05-01T12:00:00Z"},
		r:      Retention{KeepWithin: 14 * Day},
		loc:    utc,
		want:   []string{"2025-04-20T12:00Z(within 14d)", "2025-04-25T12:00Z(within 14d)", "2025-05-01T12:00Z(within 14d)"},
	}, {
		name:   "keep within: the boundary itself is out",
		points: []string{"2025-05-18T12:00:00Z", "2025-05-18T12:00:01Z", "2025-06-01T12:00:00Z"},
		r:      Retention{KeepWithin: 14 * Day},
		loc:    utc,
		want:   []string{"2025-05-18T12:00Z(within 14d)", "2025-06-01T12:00Z(within 14d)"},
	}, {
		name:   "keep within: a point in the future does not push the others out",
		points: []string{"2025-05-01T12:00:00Z", "2025-05-25T12:00:00Z", "2030-01-01T00:00:00Z"},
		r:      Retention{KeepWithin: 14 * Day},
		loc:    utc,
		want:   []string{"2025-05-25T12:00Z(within 14d)", "2030-01-01T00:00Z(within 14d)"},
	}, {
		name: "rules combine, with their reasons",
		points: []string{"2024-12-31T12:00:00Z", "2025-05-29T08:00:00Z", "2025-05-30T08:00:00Z", "2025-05-31T08:00:00Z",
			"2025-05-31T20:00:00Z"},
		r:    Retention{KeepLast: 1, KeepDaily: 2, KeepMonthly: 1, KeepYearly: 2},
		loc:  utc,
		want: []string{"2024-12-31T12:00Z(yearly)", "2025-05-30T08:00Z(daily)", "2025-05-31T20:00Z(last,daily,monthly,yearly)"},
	}, {
		name:   "points of the same time: a fixed one is newest",
		points: []string{"2025-05-31T08:00:00Z", "2025-05-31T08:00:00Z"},
		r:      Retention{KeepLast: 1},
		loc:    utc,
		want:   []string{"2025-05-31T08:00Z(last)"},
	}, {
		name: "time zones with offsets that are not whole hours",
		points: []string{"2025-05-31T18:00:00Z", // 23:30 in Kolkata
			"2025-05-31T18:40:00Z", // 00:10 on June 1st
		},
		r:    Retention{KeepDaily: 5},
		loc:  mustLoad(t, "Asia/Kolkata"),
		want: []string{"2025-05-31T18:00Z(daily)", "2025-05-31T18:40Z(daily)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			points := at(t, tc.points...)
			nw := tc.now
			if nw.IsZero() {
				nw = now
			}
			got := kept(points, Apply(points, tc.r, tc.loc, nw))
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestApplyOrder: decisions follow the input order, whatever it is.
func TestApplyOrder(t *testing.T) {
	points := at(t, "2025-01-03T00:00:00Z", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
	ds := Apply(points, Retention{KeepLast: 1}, time.UTC, now)
	if !ds[0].Keep || ds[1].Keep || ds[2].Keep {
		t.Errorf("decisions %+v: want only the first (newest) point kept", ds)
	}
	if len(ds[1].Reasons) != 0 {
		t.Errorf("a forgotten point has reasons %v", ds[1].Reasons)
	}
}

// randomHistory returns n points over about two years, clustered like
// backups at irregular hours.
func randomHistory(r *rand.Rand, n int) []Point {
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := make([]Point, n)
	for i := range ps {
		ps[i] = Point{ID: fmt.Sprintf("%08x", r.Uint32()), Time: start.Add(time.Duration(r.Int64N(int64(2 * Year))))}
	}
	return ps
}

// randomSets puts each of points in one of three backup sets.
func randomSets(r *rand.Rand, points []Point) {
	for i := range points {
		points[i].Set = []string{"", "/etc\x00/usr", "db"}[r.IntN(3)]
	}
}

// TestApplyPerSet: a retention applies to each backup set apart: what it
// decides for a point among the points of every set is what it decides
// among the points of the point's set alone. A set's points never count
// against another's.
func TestApplyPerSet(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	loc := mustLoad(t, "Europe/Berlin")
	for iter := range 100 {
		all := randomHistory(r, 1+r.IntN(100))
		randomSets(r, all)
		ret := randomRetention(r)
		now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		mixed := Apply(all, ret, loc, now)
		for _, set := range []string{"", "/etc\x00/usr", "db"} {
			var alone []Point
			var idx []int
			for i, p := range all {
				if p.Set == set {
					alone, idx = append(alone, p), append(idx, i)
				}
			}
			for j, d := range Apply(alone, ret, loc, now) {
				if m := mixed[idx[j]]; m.Keep != d.Keep || !slices.Equal(m.Reasons, d.Reasons) {
					t.Fatalf("iteration %d, %s, set %q: point %s decided %v %v among all sets, %v %v alone",
						iter, ret, set, alone[j].ID, m.Keep, m.Reasons, d.Keep, d.Reasons)
				}
			}
		}
	}
	// The case: a set backed up daily and one manual point of
	// other paths, older than all of them: keep-last 3 keeps the manual
	// point, the newest of its set.
	day := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	points := []Point{{ID: "manual", Set: "/etc/ssh", Time: day}}
	for i := range 8 {
		points = append(points, Point{ID: fmt.Sprint(i), Set: "/etc\x00/usr/local/go/src", Time: day.Add(time.Duration(i+1) * Day)})
	}
	ds := Apply(points, Retention{KeepLast: 3}, time.UTC, day.Add(10*Day))
	if !ds[0].Keep {
		t.Errorf("the manual point of another set is forgotten: %+v", ds[0])
	}
	kept := 0
	for _, d := range ds[1:] {
		if d.Keep {
			kept++
		}
	}
	if kept != 3 {
		t.Errorf("the daily set keeps %d points, want 3", kept)
	}
}

func randomRetention(r *rand.Rand) Retention {
	n := func() int {
		if r.IntN(2) == 0 {
			return 0
		}
		return r.IntN(20)
	}
	ret := Retention{KeepLast: n(), KeepHourly: n(), KeepDaily: n(), KeepWeekly: n(), KeepMonthly: n(), KeepYearly: n()}
	if r.IntN(3) == 0 {
		ret.KeepWithin = time.Duration(r.Int64N(int64(60 * Day)))
	}
	return ret
}

// TestMonotone: a point forgotten among some points stays forgotten among
// more points and at a later now. The policy package honours what
// others forgot by this.
func TestMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, mustLoad(t, "Europe/Berlin"), mustLoad(t, "America/New_York"), mustLoad(t, "Australia/Lord_Howe")}
	for iter := range 300 {
		all := randomHistory(r, 1+r.IntN(200))
		sub := make([]Point, 0, len(all))
		for _, p := range all {
			if r.IntN(3) != 0 {
				sub = append(sub, p)
			}
		}
		ret := randomRetention(r)
		loc := zones[iter%len(zones)]
		nowSub := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(Year))))
		nowAll := nowSub.Add(time.Duration(r.Int64N(int64(Year))))
		dsSub := Apply(sub, ret, loc, nowSub)
		dsAll := Apply(all, ret, loc, nowAll)
		keptAll := make(map[string]bool)
		for i, d := range dsAll {
			if d.Keep {
				keptAll[all[i].ID] = true
			}
		}
		for i, d := range dsSub {
			if !d.Keep && keptAll[sub[i].ID] {
				t.Fatalf("iteration %d, %+v in %s: point %s at %s is forgotten among %d points at %s but kept among %d at %s",
					iter, ret, loc, sub[i].ID, sub[i].Time, len(sub), nowSub, len(all), nowAll)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Retention{KeepDaily: 1 << 40, KeepWithin: 100 * Year}).Validate(); err != nil {
		t.Errorf("large values refused: %v", err)
	}
	for _, r := range []Retention{{KeepLast: -1}, {KeepYearly: -3}, {KeepWithin: -time.Hour}} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		r    Retention
		want string
	}{
		{Retention{}, "keep everything"},
		{Retention{KeepDaily: 14, KeepWeekly: 8, KeepMonthly: 12, KeepYearly: 3}, "keep daily 14, weekly 8, monthly 12, yearly 3"},
		{Retention{KeepLast: 2, KeepHourly: 24, KeepWithin: 14 * Day}, "keep last 2, hourly 24, within 14d"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestLowered(t *testing.T) {
	def := Retention{KeepDaily: 14, KeepWeekly: 8, KeepMonthly: 12, KeepYearly: 3}
	for _, tc := range []struct {
		from, to Retention
		want     []string
	}{
		{def, Retention{KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 24, KeepYearly: 3}, nil},
		{def, Retention{KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 24}, []string{"yearly 3 to 0"}},
		{def, Retention{KeepLast: 2}, []string{"daily 14 to 0", "weekly 8 to 0", "monthly 12 to 0", "yearly 3 to 0"}},
		{Retention{KeepWithin: 14 * Day}, Retention{KeepWithin: 7 * Day, KeepLast: 1}, []string{"within 14d to 7d"}},
		{Retention{}, Retention{KeepLast: 2}, []string{"everything to keep last 2"}},
		{def, Retention{}, nil},
	} {
		if got := tc.from.Lowered(tc.to); !slices.Equal(got, tc.want) {
			t.Errorf("%s to %s: %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		minutes bool
		want    time.Duration
		bad     bool
	}{
		{in: "14d", want: 14 * Day},
		{in: "2w", want: 14 * Day},
		{in: "1y", want: 365 * Day},
		{in: "36h", want: 36 * time.Hour},
		{in: "1y2w3d4h", want: Year + 2*Week + 3*Day + 4*time.Hour},
		{in: " 0 ", want: 0},
		{in: "0d", want: 0},
		{in: "6m", bad: true},
		{in: "90m", minutes: true, want: 90 * time.Minute},
		{in: "12h30m", minutes: true, want: 12*time.Hour + 30*time.Minute},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "14", bad: true},
		{in: "-1d", bad: true},
		{in: "1.5d", bad: true},
		{in: "1x", bad: true},
		{in: "99999999999y", bad: true},
		{in: "292y292y", bad: true},
	} {
		got, err := ParseDuration(tc.in, tc.minutes)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 14 * Day: "14d", Year: "1y", Year + 35*Day: "1y35d", 90 * time.Minute: "1h30m", 12 * time.Hour: "12h", time.Second + 5: "1s5ns",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(FormatDuration(d), true); err == nil && back != d {
			t.Errorf("ParseDuration(FormatDuration(%s)) = %s", d, back)
		}
	}
}

// benchHistory returns Berlin, 10,000 points four a day, and the default
// policy of package policy.
func benchHistory(b *testing.B) (*time.Location, []Point, Retention) {
	loc := mustLoad(b, "Europe/Berlin")
	start := time.Date(2019, 3, 1, 2, 0, 0, 0, time.UTC)
	points := make([]Point, 10000)
	for i := range points {
		points[i] = Point{ID: fmt.Sprintf("%064x", i), Time: start.Add(time.Duration(i) * 6 * time.Hour)}
	}
	return loc, points, Retention{KeepDaily: 14, KeepWeekly: 8, KeepMonthly: 12, KeepYearly: 3}
}

// BenchmarkApply10000 applies the default policy of package policy to
// 10,000 points, four a day, in Berlin.
func BenchmarkApply10000(b *testing.B) {
	loc, points, r := benchHistory(b)
	end := points[len(points)-1].Time
	for b.Loop() {
		Apply(points, r, loc, end)
	}
}

// TestChecker: the checker decides as Apply does among the points that
// existed at each time, whatever the time.
func TestChecker(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, mustLoad(t, "Europe/Berlin"), mustLoad(t, "America/New_York"), mustLoad(t, "Asia/Kolkata")}
	for iter := range 200 {
		all := randomHistory(r, 1+r.IntN(150))
		if iter%5 == 0 && len(all) > 2 { // points of the same time
			all[1].Time = all[0].Time
		}
		if iter%3 == 0 { // points of several backup sets
			randomSets(r, all)
		}
		ret := randomRetention(r)
		if iter%7 == 0 {
			ret = Retention{}
		}
		loc := zones[iter%len(zones)]
		c := NewChecker(all, ret, loc)
		for range 5 {
			at := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(25 * 30 * Day))))
			var then []Point
			var idx []int
			for i, p := range all {
				if !p.Time.After(at) {
					then = append(then, p)
					idx = append(idx, i)
				}
			}
			for j, d := range Apply(then, ret, loc, at) {
				if got := c.Forgets(idx[j], at); got != !d.Keep {
					t.Fatalf("iteration %d, %+v in %s at %s: point %s at %s: Forgets = %v, Apply keeps: %v %v",
						iter, ret, loc, at, then[j].ID, then[j].Time, got, d.Keep, d.Reasons)
				}
			}
			for i, p := range all {
				if p.Time.After(at) && c.Forgets(i, at) {
					t.Fatalf("a point later than the time asked about is forgotten")
				}
			}
		}
	}
}

// BenchmarkChecker10000: 10,000 queries on a history of 10,000 points.
func BenchmarkChecker10000(b *testing.B) {
	loc, points, r := benchHistory(b)
	for b.Loop() {
		c := NewChecker(points, r, loc)
		for i := range points {
			c.Forgets(i, points[i].Time.Add(time.Duration(i%50)*24*time.Hour))
		}
	}
}

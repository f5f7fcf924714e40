package policy

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func at(t *testing.T, s string) []TimeOfDay {
	t.Helper()
	ts, err := ParseAt(s)
	if err != nil {
		t.Fatalf("ParseAt(%q): %v", s, err)
	}
	return ts
}

func TestParseAt(t *testing.T) {
	if got := at(t, "14:00, 02:00"); !slices.Equal(got, []TimeOfDay{120, 840}) {
		t.Errorf("ParseAt sorted: %v", got)
	}
	for _, bad := range []string{"", "2:00", "24:00", "02:60", "02:00,", "noon", "02:00:00"} {
		if _, err := ParseAt(bad); !errors.Is(err, ErrPolicy) {
			t.Errorf("ParseAt(%q) = %v, want ErrPolicy", bad, err)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	hourly := make([]TimeOfDay, 24)
	for i := range hourly {
		hourly[i] = TimeOfDay(i * 60)
	}
	for _, tc := range []struct {
		s  Schedule
		ok bool
	}{
		{Schedule{Every: time.Hour}, true},
		{Schedule{Every: 90 * time.Minute}, true},
		{Schedule{Every: 12 * time.Hour}, true},
		{Schedule{Every: 7 * 24 * time.Hour}, true},
		{Schedule{Every: MaxInterval}, true},
		{Schedule{Every: MaxInterval + time.Hour}, false},
		{Schedule{Every: 59 * time.Minute}, false},
		{Schedule{Every: time.Hour + time.Second}, false},
		{Schedule{Every: -time.Hour}, false},
		{Schedule{}, false},
		{Schedule{Every: time.Hour, At: []TimeOfDay{60}}, false},
		{Schedule{At: []TimeOfDay{120, 840}}, true},
		{Schedule{At: []TimeOfDay{120}}, true},
		{Schedule{At: []TimeOfDay{120, 150}}, false},
		{Schedule{At: []TimeOfDay{30, 23*60 + 45}}, false}, // 45 minutes apart across midnight
		{Schedule{At: []TimeOfDay{840, 120}}, false},       // not ascending
		{Schedule{At: hourly}, true},
		{Schedule{At: []TimeOfDay{24 * 60}}, false},
	} {
		if err := tc.s.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate = %v, want ok %v", tc.s, err, tc.ok)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := time.UTC
	for _, tc := range []struct {
		s     Schedule
		loc   *time.Location
		after string
		want  string
	}{
		{Schedule{Every: 12 * time.Hour}, utc, "2026-11-22T05:00:00Z", "2026-11-22T12:00:00Z"},
		{Schedule{Every: 12 * time.Hour}, utc, "2026-11-22T12:00:00Z", "2026-11-23T00:00:00Z"},
		{Schedule{Every: 5 * time.Hour}, utc, "2026-11-22T20:00:00Z", "2026-11-23T00:00:00Z"},
		{Schedule{Every: 5 * time.Hour}, utc, "2026-11-22T19:59:59Z", "2026-11-22T20:00:00Z"},
		// Wall-clock times in the policy's zone: 12:00 in Berlin is 11:00Z in winter.
		{Schedule{Every: 12 * time.Hour}, berlin, "2026-11-22T05:00:00Z", "2026-11-22T11:00:00Z"},
		{Schedule{At: []TimeOfDay{120, 840}}, berlin, "2026-11-22T12:30:00Z", "2026-11-22T13:00:00Z"},
		{Schedule{At: []TimeOfDay{120, 840}}, berlin, "2026-11-22T13:00:00Z", "2026-11-23T01:00:00Z"},
		// 02:30 does not exist on 2024-03-31 in Berlin: it is 03:30 CEST.
		{Schedule{At: []TimeOfDay{150}}, berlin, "2024-03-31T00:00:00Z", "2024-03-31T01:30:00Z"},
		// 02:30 exists twice on 2024-10-27: the first (CEST) one.
		{Schedule{At: []TimeOfDay{150}}, berlin, "2024-10-26T12:00:00Z", "2024-10-27T00:30:00Z"},
		{Schedule{Every: 48 * time.Hour}, berlin, "2026-11-22T05:00:00Z", "2026-11-23T00:00:00Z"},
		{Schedule{}, utc, "2026-11-22T05:00:00Z", "0001-01-01T00:00:00Z"},
	} {
		after, _ := time.Parse(time.RFC3339, tc.after)
		want, _ := time.Parse(time.RFC3339, tc.want)
		if got := tc.s.Next(after, tc.loc); !got.Equal(want) {
			t.Errorf("%s in %s, after %s: %s, want %s", tc.s, tc.loc, tc.after, got.UTC().Format(time.RFC3339), tc.want)
		}
	}
}

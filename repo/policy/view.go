package policy

import (
	"context"
	"time"

	"github.com/azfs/azfs/repo"

	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
)

// View is a machine's policy as 'azfs policy show' shows it: the default
// rules at the top, each set's in Sets, with the next scheduled runs and
// the vault's soft-delete window. Its JSON is 'azfs policy show --json'
// (docs/cli.md).
type View struct {
	Machine           string        `json:"machine"`
	Policy            int           `json:"policy"`  // its number; 0 for the default
	Default           bool          `json:"default"` // the owner set none
	Set               time.Time     `json:"set,omitzero"`
	TimeZone          string        `json:"timezone"`
	Schedule          ScheduleView  `json:"schedule"`
	NextRun           time.Time     `json:"next_run"`
	Retention         RetentionView `json:"retention"`
	Sets              []SetView     `json:"sets"`
	SoftDeleteSeconds int64         `json:"soft_delete_seconds"` // vault-wide
}

// ScheduleView is a schedule: every so many seconds, or at times of day
// ("HH:MM").
type ScheduleView struct {
	EverySeconds int64    `json:"every_seconds,omitempty"`
	At           []string `json:"at,omitempty"`
}

// RetentionView is a retention's rules.
type RetentionView struct {
	KeepLast          int   `json:"keep_last"`
	KeepHourly        int   `json:"keep_hourly"`
	KeepDaily         int   `json:"keep_daily"`
	KeepWeekly        int   `json:"keep_weekly"`
	KeepMonthly       int   `json:"keep_monthly"`
	KeepYearly        int   `json:"keep_yearly"`
	KeepWithinSeconds int64 `json:"keep_within_seconds"`
}

// SetView is one set's rules; NextRun is nil for a set without paths,
// which the agent does not back up.
type SetView struct {
	Name      string         `json:"name"`
	Paths     []string       `json:"paths"`
	FilesFrom []string       `json:"files_from"`
	Selection selection.Spec `json:"selection"`
	Schedule  ScheduleView   `json:"schedule"`
	NextRun   *time.Time     `json:"next_run"`
	Retention RetentionView  `json:"retention"`
}

// NewView returns the view of p, under the vault's soft-delete window,
// with its next runs after now.
func NewView(p Policy, window time.Duration, now time.Time) (View, error) {
	loc, err := p.Location()
	if err != nil {
		return View{}, err
	}
	v := View{Machine: p.Machine, Policy: p.Seq, Default: p.IsDefault(), Set: p.Set, TimeZone: p.TimeZone,
		Schedule: scheduleView(p.Schedule), NextRun: p.Schedule.Next(now, loc), Retention: retentionView(p.Retention),
		Sets: []SetView{}, SoftDeleteSeconds: int64(window / time.Second)}
	for _, sp := range p.Sets {
		set := SetView{Name: sp.Name, Paths: sp.Paths, FilesFrom: sp.FilesFrom, Selection: sp.Selection,
			Schedule: scheduleView(sp.Schedule), Retention: retentionView(sp.Retention)}
		if sp.Scheduled() {
			n := sp.Schedule.Next(now, loc)
			set.NextRun = &n
		}
		v.Sets = append(v.Sets, set)
	}
	return v, nil
}

// Show returns machine's current policy and its view at now under the
// vault's soft-delete window: what 'azfs policy show' shows. A machine the
// vault does not hold is an error wrapping repo.ErrNoMachine.
func Show(ctx context.Context, root repo.Root, machine string, now time.Time) (Policy, View, error) {
	if ok, err := root.MachineExists(ctx, machine); err != nil {
		return Policy{}, View{}, err
	} else if !ok {
		return Policy{}, View{}, root.NoMachine(ctx, machine)
	}
	p, err := Current(ctx, root, machine)
	if err != nil {
		return Policy{}, View{}, err
	}
	window, err := Window(ctx, root)
	if err != nil {
		return Policy{}, View{}, err
	}
	v, err := NewView(p, window, now)
	return p, v, err
}

func scheduleView(s Schedule) ScheduleView {
	out := ScheduleView{EverySeconds: int64(s.Every / time.Second)}
	for _, t := range s.At {
		out.At = append(out.At, t.String())
	}
	return out
}

func retentionView(r retention.Retention) RetentionView {
	return RetentionView{r.KeepLast, r.KeepHourly, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, r.KeepYearly, int64(r.KeepWithin / time.Second)}
}

// Package agent runs one machine's scheduled backups: the loop of
// 'azfs agent', and the local state it shares with the other commands on
// this host (the locks that keep two backups of a machine apart, whether
// automatic backups are enabled, the last point committed here; see Dir).
//
// # The loop
//
// [Run] waits for the next time the machine's schedule names
// (policy.Schedule.Next, in the policy's time zone), backs up, applies the
// retention policy, and waits again. The schedule is a set of wall-clock
// times, not an interval from the last run: an on-demand backup in between
// moves nothing, a run that starts late (it waited for an on-demand backup
// to end) does not move the next, and a slot that passes while a backup
// runs is not run afterwards.
//
// The loop keeps one time, after: at start the time of the machine's newest
// point (none, or unknown: a backup is due at once), then the end of each
// run or skipped run. A backup is due when the schedule has a time in
// (after, now]; however many it has, one backup runs. So runs missed while
// the agent was down or the machine slept run once, at start or at
// wake-up, not once each.
//
// While it waits, the loop wakes at least every Options.Recheck (5 minutes)
// and reads the policy again, so that 'azfs policy set' takes effect
// without a restart and a wall clock that jumped (a machine that slept: Go's
// timers do not count suspended time) is noticed. Whether automatic backups
// are enabled is read when a backup is due: a disabled machine skips the
// run, and enabling it again resumes at the next scheduled time.
//
// A failed backup is logged and the loop waits for the next scheduled time:
// it does not retry in a tight loop. Retention is applied after each backup
// that committed a point. When ctx is done the running backup is cancelled
// (a backup's pipeline leaves no point and no half-written object when
// cancelled; the next run reuses the packs that landed) and Run returns.
package agent

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/azfs/azfs/repo/policy"
)

// Machine is what the loop works on: the machine's policy and local
// settings, and its backups.
type Machine interface {
	// Policy returns the machine's current policy, read anew.
	Policy(ctx context.Context) (policy.Policy, error)
	// Enabled reports whether automatic backups are enabled.
	Enabled() (bool, error)
	// LastBackup returns the time of the machine's newest point (zero:
	// none).
	LastBackup(ctx context.Context) (time.Time, error)
	// Backup backs the machine up once, waiting for a backup running
	// elsewhere on this host to end first. It returns nil when it
	// committed a point, a partial one too (reporting the files it skipped
	// itself).
	Backup(ctx context.Context) error
	// ApplyRetention applies the machine's retention policy at now.
	ApplyRetention(ctx context.Context, now time.Time) error
}

// Clock is the loop's time: the system's, or a test's.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the system's clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultRecheck is how often a waiting loop wakes to read the policy
// again and look at the clock.
const DefaultRecheck = 5 * time.Minute

// Options configure Run.
type Options struct {
	// Clock is SystemClock when nil.
	Clock Clock
	// Log receives the loop's messages; slog.Default() when nil.
	Log *slog.Logger
	// Recheck is DefaultRecheck when 0.
	Recheck time.Duration
	// Interval, when not 0, replaces the policy's schedule with runs at
	// the multiples of Interval (since the zero time), retention still the
	// policy's. For tests of the whole agent, which cannot wait an hour,
	// the policy's shortest interval.
	Interval time.Duration
}

// loop is one Run.
type loop struct {
	m       Machine
	clock   Clock
	log     *slog.Logger
	recheck time.Duration
	every   time.Duration // Options.Interval

	pol    policy.Policy
	loc    *time.Location
	known  bool      // pol is set
	after  time.Time // backups are due at scheduled times after this
	now    bool      // a backup is due at once (no point, or unknown)
	logged time.Time // the next time last logged
}

// Run runs m's scheduled backups until ctx is done (see the package
// documentation).
func Run(ctx context.Context, m Machine, opts Options) {
	l := &loop{m: m, clock: opts.Clock, log: opts.Log, recheck: opts.Recheck, every: opts.Interval}
	if l.clock == nil {
		l.clock = SystemClock
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.recheck <= 0 {
		l.recheck = DefaultRecheck
	}
	if l.every > 0 {
		l.log.Warn("the schedule is replaced by a test interval: for tests only", "every", l.every)
	}
	l.start(ctx)
	for ctx.Err() == nil {
		l.step(ctx)
	}
	l.log.Info("agent stopped")
}

// start sets where the schedule starts: after the newest point, so that a
// time that passed since then is due at once.
func (l *loop) start(ctx context.Context) {
	now := l.clock.Now()
	last, err := l.m.LastBackup(ctx)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		l.log.Error("cannot tell when the machine last backed up: backing up now", "err", err)
		l.after, l.now = now, true
	case last.IsZero():
		l.log.Info("the machine has no recovery point yet: backing up now")
		l.after, l.now = now, true
	case last.After(now):
		l.after = now
	default:
		l.after = last
	}
}

// step reads the policy and then waits, or backs up.
func (l *loop) step(ctx context.Context) {
	if !l.refresh(ctx) {
		l.sleep(ctx, l.recheck)
		return
	}
	now := l.clock.Now()
	due := l.next(l.after)
	if !l.now && now.Before(due) {
		if !due.Equal(l.logged) {
			l.log.Info("next backup", "at", due, "schedule", l.schedule())
			l.logged = due
		}
		l.sleep(ctx, min(due.Sub(now), l.recheck))
		return
	}
	if l.now {
		due = now
	} else if now.Sub(due) > l.recheck {
		l.log.Info("a scheduled backup was missed (the agent was not running, or the machine slept): backing up once now", "missed", due)
	}
	l.now = false
	enabled, err := l.m.Enabled()
	if err != nil {
		l.log.Error("cannot tell whether automatic backups are enabled: taking them as enabled", "err", err)
		enabled = true
	}
	if !enabled {
		l.log.Info("scheduled backup skipped: automatic backups are disabled ('azfs schedule enable')", "due", due)
		l.after = now
		return
	}
	l.backup(ctx, due)
	l.after = l.clock.Now()
}

// refresh reads the policy, keeping the one it has when that fails. It
// reports whether a policy is known.
func (l *loop) refresh(ctx context.Context) bool {
	p, err := l.m.Policy(ctx)
	var loc *time.Location
	if err == nil {
		loc, err = p.Location()
	}
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil && l.known:
		l.log.Error("cannot read the policy: keeping the schedule", "err", err, "schedule", l.schedule())
		return true
	case err != nil:
		l.log.Error("cannot read the policy: trying again", "err", err, "in", l.recheck)
		return false
	}
	if !l.known || !sameSchedule(l.pol, p) {
		verb := "policy"
		if l.known {
			verb = "policy changed"
		}
		l.log.Info(verb, "number", p.Seq, "schedule", p.Schedule.String(), "timezone", p.TimeZone, "retention", p.Retention.String())
	}
	l.pol, l.loc, l.known = p, loc, true
	return true
}

func sameSchedule(a, b policy.Policy) bool {
	return a.TimeZone == b.TimeZone && a.Schedule.Every == b.Schedule.Every && slices.Equal(a.Schedule.At, b.Schedule.At)
}

// schedule describes the schedule in force.
func (l *loop) schedule() string {
	if l.every > 0 {
		return "every " + l.every.String() + " (test interval)"
	}
	return l.pol.Schedule.String() + " in " + l.pol.TimeZone
}

// next returns the first scheduled time after t.
func (l *loop) next(t time.Time) time.Time {
	if l.every > 0 {
		return t.Truncate(l.every).Add(l.every)
	}
	return l.pol.Schedule.Next(t, l.loc)
}

// backup runs one backup, then retention.
func (l *loop) backup(ctx context.Context, due time.Time) {
	l.log.Info("backup started", "due", due)
	err := l.m.Backup(ctx)
	if ctx.Err() != nil {
		l.log.Info("stopping: backup cancelled; it left no point, and the next run reuses what it stored")
		return
	}
	if err != nil {
		l.log.Error("backup failed: trying again at the next scheduled time", "err", err)
		return
	}
	if err := l.m.ApplyRetention(ctx, l.clock.Now()); err != nil && ctx.Err() == nil {
		l.log.Error("applying retention failed: trying again after the next backup", "err", err)
	}
}

// sleep waits d, or until ctx is done.
func (l *loop) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-l.clock.After(d):
	}
}

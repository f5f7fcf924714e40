// Package agent runs one machine's scheduled backups: the loop of
// 'azfs agent', the locks that keep two backups of a machine apart on
// this host, and one backup of this host ([Backup], under [LockBackup]),
// which 'azfs backup' runs too. The state it shares with the other commands here (those lock
// files, whether automatic backups are enabled, the last point of each
// backup set committed here) is package hoststate's Dir.
//
// # Jobs
//
// The loop runs one job per backup set: the agent's own paths
// (Options.Paths, with Options.Selection) on the policy's default
// schedule, as the set of those paths; and each set of the machine's
// policy that names paths (policy.SetPolicy.Scheduled), on that set's
// schedule, with its selection, as that set. A set of the policy without
// paths has no job: only its retention applies.
//
// # The loop
//
// [Run] waits for the next time a job's schedule names
// (policy.Schedule.Next, in the policy's time zone), runs that job's
// backup, applies the retention policy, and waits again. A schedule is a
// set of wall-clock times, not an interval from the last run: an on-demand
// backup in between moves nothing, a run that starts late (it waited for
// an on-demand backup to end) does not move the next, and a slot of a job
// that passes while that job's backup runs is not run afterwards. One
// backup runs at a time: a job due while another job's backup runs runs
// after it.
//
// The loop keeps one time per job, after: when it first sees the job,
// the time of the newest point of the job's set (none, or unknown: a
// backup is due at once), then the end of each run or skipped run. A
// backup is due when the job's schedule has a time in (after, now];
// however many it has, one backup runs. So runs missed while the agent was
// down or the machine slept run once, at start or at wake-up, not once
// each. When several jobs are due, the one due first runs first.
//
// While it waits, the loop wakes at least every Options.Recheck (5 minutes)
// and reads the policy again, so that 'azfs policy set' takes effect
// without a restart (a set given paths starts its job, one whose paths are
// removed stops) and a wall clock that jumped (a machine that slept: Go's
// timers do not count suspended time) is noticed. Whether automatic backups
// are enabled is read when a backup is due: a disabled machine skips the
// run, and enabling it again resumes at the next scheduled time.
//
// A failed backup is logged and its job waits for its next scheduled
// time: it does not retry in a tight loop. Retention (every set's, each
// under its own rules) is applied after each backup that committed a
// point. When ctx is done the running backup is cancelled (a backup's
// pipeline leaves no point and no half-written object when cancelled; the
// next run reuses the packs that landed) and Run returns.
package agent

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/selection"
)

// Machine is what the loop works on: the machine's policy and local
// settings, and its backups.
type Machine interface {
	// Policy returns the machine's current policy, read anew.
	Policy(ctx context.Context) (policy.Policy, error)
	// Enabled reports whether automatic backups are enabled.
	Enabled() (bool, error)
	// LastBackup returns the time of the newest point of the backup set
	// named set, "" for the points without a set name (zero: none).
	LastBackup(ctx context.Context, set string) (time.Time, error)
	// Backup backs up job's paths (and what its FilesFrom patterns match)
	// once, with its selection, as its set (Name; "" for the set of its
	// paths), waiting for a backup running elsewhere on this host to end
	// first. It returns nil when it committed a point, a partial one too
	// (reporting the files it skipped itself).
	Backup(ctx context.Context, job policy.SetPolicy) error
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
	// Paths and Selection are the agent's own job: the paths it backs up
	// on the policy's default schedule, as the set of those paths, and
	// what it leaves out of them. No paths: no such job, only the sets of
	// the policy that name paths.
	Paths     []string
	Selection selection.Spec
	// Clock is SystemClock when nil.
	Clock Clock
	// Log receives the loop's messages; slog.Default() when nil.
	Log *slog.Logger
	// Recheck is DefaultRecheck when 0.
	Recheck time.Duration
	// Interval, when not 0, replaces every job's schedule with runs at
	// the multiples of Interval (since the zero time), retention still the
	// policy's. For tests of the whole agent, which cannot wait an hour,
	// the policy's shortest interval.
	Interval time.Duration
}

// loop is one Run.
type loop struct {
	m       Machine
	own     policy.SetPolicy // Options.Paths, Selection: the default job's
	clock   Clock
	log     *slog.Logger
	recheck time.Duration
	every   time.Duration // Options.Interval

	pol   policy.Policy
	loc   *time.Location
	known bool   // pol is set
	jobs  []*job // the default job first, then the policy's order
	idle  bool   // "nothing to back up" was logged
}

// job is one backup set the loop runs, and when.
type job struct {
	policy.SetPolicy
	after  time.Time // backups are due at scheduled times after this
	now    bool      // a backup is due at once (no point, or unknown)
	logged time.Time // the next time last logged
}

// Run runs m's scheduled backups until ctx is done (see the package
// documentation).
func Run(ctx context.Context, m Machine, opts Options) {
	l := &loop{m: m, clock: opts.Clock, log: opts.Log, recheck: opts.Recheck, every: opts.Interval,
		own: policy.SetPolicy{Paths: opts.Paths, Selection: opts.Selection}}
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
	for ctx.Err() == nil {
		l.step(ctx)
	}
	l.log.Info("agent stopped")
}

// start sets where a new job's schedule starts: after the newest point of
// its set, so that a time that passed since then is due at once.
func (l *loop) start(ctx context.Context, j *job) {
	now := l.clock.Now()
	last, err := l.m.LastBackup(ctx, j.Name)
	log := l.log.With(setAttr(j.Name)...)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		log.Error("cannot tell when the set was last backed up: backing up now", "err", err)
		j.after, j.now = now, true
	case last.IsZero():
		log.Info("the set has no recovery point yet: backing up now")
		j.after, j.now = now, true
	case last.After(now):
		j.after = now
	default:
		j.after = last
	}
}

// setAttr is the log attribute naming a set: none for the default job.
func setAttr(name string) []any {
	if name == "" {
		return nil
	}
	return []any{"set", name}
}

// step reads the policy and then waits, or runs the job due first.
func (l *loop) step(ctx context.Context) {
	if !l.refresh(ctx) {
		l.sleep(ctx, l.recheck)
		return
	}
	var first *job
	var firstDue time.Time
	for _, j := range l.jobs {
		due := l.next(j.after, j.Schedule)
		if j.now {
			due = j.after
		}
		if first == nil || due.Before(firstDue) {
			first, firstDue = j, due
		}
	}
	if first == nil {
		if !l.idle {
			l.log.Warn("nothing to back up: give the agent paths, or give a set paths with 'azfs policy set --set NAME PATH...'; waiting for the policy to change")
			l.idle = true
		}
		l.sleep(ctx, l.recheck)
		return
	}
	l.idle = false
	now := l.clock.Now()
	if !first.now && now.Before(firstDue) {
		for _, j := range l.jobs {
			if due := l.next(j.after, j.Schedule); !due.Equal(j.logged) {
				l.log.Info("next backup", append(setAttr(j.Name), "at", due, "schedule", l.schedule(j.Schedule))...)
				j.logged = due
			}
		}
		l.sleep(ctx, min(firstDue.Sub(now), l.recheck))
		return
	}
	j, due := first, firstDue
	log := l.log.With(setAttr(j.Name)...)
	if j.now {
		due = now
	} else if now.Sub(due) > l.recheck {
		log.Info("a scheduled backup was missed (the agent was not running, the machine slept, or another set's backup ran long): backing up once now", "missed", due)
	}
	j.now = false
	enabled, err := l.m.Enabled()
	if err != nil {
		log.Error("cannot tell whether automatic backups are enabled: taking them as enabled", "err", err)
		enabled = true
	}
	if !enabled {
		log.Info("scheduled backup skipped: automatic backups are disabled ('azfs schedule enable')", "due", due)
		j.after = now
		return
	}
	l.backup(ctx, log, j.SetPolicy, due)
	j.after = l.clock.Now()
}

// refresh reads the policy, keeping the one it has when that fails, and
// updates the jobs. It reports whether a policy is known.
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
		l.log.Error("cannot read the policy: keeping the schedules", "err", err)
		return true
	case err != nil:
		l.log.Error("cannot read the policy: trying again", "err", err, "in", l.recheck)
		return false
	}
	changed := l.known && !samePolicy(l.pol, p)
	if !l.known || changed {
		verb := "policy"
		if changed {
			verb = "policy changed"
		}
		l.log.Info(verb, "number", p.Seq, "schedule", p.Schedule.String(), "timezone", p.TimeZone, "retention", p.Retention.String(), "sets", len(p.Sets))
	}
	l.pol, l.loc, l.known = p, loc, true
	l.setJobs(ctx)
	return ctx.Err() == nil
}

// setJobs makes the jobs those of the policy: a job that stays keeps when
// it is due, a new one starts after the newest point of its set.
func (l *loop) setJobs(ctx context.Context) {
	var want []policy.SetPolicy
	if len(l.own.Paths) > 0 {
		own := l.own
		own.Schedule, own.Retention = l.pol.Schedule, l.pol.Retention
		want = append(want, own)
	}
	for _, sp := range l.pol.Sets {
		if sp.Scheduled() {
			want = append(want, sp)
		}
	}
	old := l.jobs
	l.jobs = nil
	for _, sp := range want {
		i := slices.IndexFunc(old, func(j *job) bool { return j.Name == sp.Name })
		if i >= 0 {
			j := old[i]
			if !sameSchedule(j.Schedule, sp.Schedule) {
				l.log.Info("schedule changed", append(setAttr(sp.Name), "schedule", l.schedule(sp.Schedule))...)
			}
			j.SetPolicy = sp
			l.jobs = append(l.jobs, j)
			continue
		}
		j := &job{SetPolicy: sp}
		if sp.Name != "" {
			l.log.Info("set to back up", "set", sp.Name, "paths", sp.Paths, "files_from", sp.FilesFrom, "schedule", l.schedule(sp.Schedule))
		}
		l.start(ctx, j)
		l.jobs = append(l.jobs, j)
	}
	for _, j := range old {
		if !slices.ContainsFunc(l.jobs, func(k *job) bool { return k == j }) {
			l.log.Info("set no longer backed up: the policy gives it no paths", "set", j.Name)
		}
	}
}

func samePolicy(a, b policy.Policy) bool {
	return a.Seq == b.Seq && a.TimeZone == b.TimeZone && sameSchedule(a.Schedule, b.Schedule)
}

func sameSchedule(a, b policy.Schedule) bool {
	return a.Every == b.Every && slices.Equal(a.At, b.At)
}

// schedule describes a schedule in force.
func (l *loop) schedule(s policy.Schedule) string {
	if l.every > 0 {
		return "every " + l.every.String() + " (test interval)"
	}
	return s.String() + " in " + l.pol.TimeZone
}

// next returns the first time of schedule s after t.
func (l *loop) next(t time.Time, s policy.Schedule) time.Time {
	if l.every > 0 {
		return t.Truncate(l.every).Add(l.every)
	}
	return s.Next(t, l.loc)
}

// backup runs one job's backup, then retention.
func (l *loop) backup(ctx context.Context, log *slog.Logger, job policy.SetPolicy, due time.Time) {
	log.Info("backup started", "due", due)
	err := l.m.Backup(ctx, job)
	if ctx.Err() != nil {
		log.Info("stopping: backup cancelled; it left no point, and the next run reuses what it stored")
		return
	}
	if err != nil {
		log.Error("backup failed: trying again at the next scheduled time", "err", err)
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

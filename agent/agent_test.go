package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/azfs/azfs/repo/policy"
)

// fakeClock is a clock the test moves. The loop sleeps on at most one
// timer at a time; each After reports its deadline on asleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timer  chan time.Time
	asleep chan time.Time
	closed chan struct{}
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, asleep: make(chan time.Time), closed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timer = ch
	deadline := c.now.Add(d)
	c.mu.Unlock()
	select {
	case c.asleep <- deadline:
	case <-c.closed:
	}
	return ch
}

// advance moves the clock by d (a backup that takes time).
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fire sets the clock to t and wakes the sleeping loop.
func (c *fakeClock) fire(t time.Time) {
	c.mu.Lock()
	c.now = t
	ch := c.timer
	c.mu.Unlock()
	ch <- t
}

// fakeMachine records what the loop asks of it.
type fakeMachine struct {
	clock *fakeClock

	mu         sync.Mutex
	pol        policy.Policy
	polErr     error
	disabled   bool
	last       time.Time
	lastErr    error
	backups    []time.Time // when each backup started
	retentions []time.Time
	running    int
	overlap    bool
	// hook, when set, is the backup's work.
	hook func(ctx context.Context) error
}

func (m *fakeMachine) Policy(context.Context) (policy.Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pol, m.polErr
}

func (m *fakeMachine) Enabled() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.disabled, nil
}

func (m *fakeMachine) LastBackup(context.Context, string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.lastErr
}

func (m *fakeMachine) Backup(ctx context.Context, _ policy.SetPolicy) error {
	m.mu.Lock()
	m.running++
	m.overlap = m.overlap || m.running > 1
	m.backups = append(m.backups, m.clock.Now())
	hook := m.hook
	m.mu.Unlock()
	var err error
	if hook != nil {
		err = hook(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running--
	if err == nil {
		m.last = m.clock.Now()
	}
	return err
}

func (m *fakeMachine) ApplyRetention(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retentions = append(m.retentions, now)
	return nil
}

func (m *fakeMachine) set(f func(m *fakeMachine)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *fakeMachine) runs() ([]time.Time, []time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.backups), slices.Clone(m.retentions)
}

// syncBuffer is a bytes.Buffer for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs the loop on a fake clock.
type harness struct {
	t       *testing.T
	clock   *fakeClock
	m       *fakeMachine
	log     *syncBuffer
	cancel  context.CancelFunc
	done    chan struct{}
	pending bool      // the loop sleeps
	wakeAt  time.Time // until then
}

// start runs the loop at now with policy p and the machine's newest point
// at last (zero: none).
func start(t *testing.T, now time.Time, p policy.Policy, last time.Time, setup ...func(m *fakeMachine)) *harness {
	t.Helper()
	clock := newFakeClock(now)
	m := &fakeMachine{clock: clock, pol: p, last: last}
	for _, f := range setup {
		f(m)
	}
	h := &harness{t: t, clock: clock, m: m, log: &syncBuffer{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	log := slog.New(slog.NewTextHandler(h.log, nil))
	go func() {
		defer close(h.done)
		Run(ctx, m, Options{Paths: []string{"/"}, Clock: clock, Log: log})
	}()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", h.log)
		}
	})
	return h
}

// stop cancels the loop and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.clock.closed:
	default:
		close(h.clock.closed)
	}
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after its context was cancelled")
	}
}

// sleeping waits until the loop sleeps.
func (h *harness) sleeping() {
	h.t.Helper()
	if h.pending {
		return
	}
	select {
	case h.wakeAt = <-h.clock.asleep:
		h.pending = true
	case <-h.done:
		h.t.Fatal("Run returned")
	case <-time.After(10 * time.Second):
		h.t.Fatal("the loop did not go to sleep")
	}
}

// runUntil lets fake time pass, waking the loop whenever its timer is due,
// until its next wake-up is after until.
func (h *harness) runUntil(until time.Time) {
	h.t.Helper()
	for {
		h.sleeping()
		if h.wakeAt.After(until) {
			return
		}
		h.pending = false
		h.clock.fire(h.wakeAt)
	}
}

// wake wakes the sleeping loop at t, later than it asked for (the machine
// slept).
func (h *harness) wake(t time.Time) {
	h.t.Helper()
	h.sleeping()
	h.pending = false
	h.clock.fire(t)
}

func (h *harness) wantRuns(want ...time.Time) {
	h.t.Helper()
	backups, retentions := h.m.runs()
	if !equalTimes(backups, want) {
		h.t.Errorf("backups at\n  %s\nwant\n  %s", fmtTimes(backups), fmtTimes(want))
	}
	if !equalTimes(retentions, want) {
		h.t.Errorf("retention applied at\n  %s\nwant after each backup\n  %s", fmtTimes(retentions), fmtTimes(want))
	}
}

func equalTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, func(x, y time.Time) bool { return x.Equal(y) })
}

func fmtTimes(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.UTC().Format(time.RFC3339))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func every(d time.Duration, zone string) policy.Policy {
	return policy.Policy{Machine: "web01", Seq: 1, TimeZone: zone, Schedule: policy.Schedule{Every: d}}
}

func atTimes(t *testing.T, zone, times string) policy.Policy {
	t.Helper()
	ts, err := policy.ParseAt(times)
	if err != nil {
		t.Fatal(err)
	}
	return policy.Policy{Machine: "web01", Seq: 1, TimeZone: zone, Schedule: policy.Schedule{At: ts}}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRunsAtScheduledTimes(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// The newest point is after today's 02:00: nothing is due at start.
	h := start(t, local("2026-06-10 10:00"), atTimes(t, "Europe/Berlin", "02:00,14:00"), local("2026-06-10 03:00"))
	h.runUntil(local("2026-06-12 00:00"))
	h.wantRuns(local("2026-06-10 14:00"), local("2026-06-11 02:00"), local("2026-06-11 14:00"))
}

func TestOnDemandBackupDoesNotMoveSchedule(t *testing.T) {
	// An on-demand backup at 09:00 covers the 00:00 slot: no catch-up at start.
	h := start(t, utc("2026-06-10T10:00:00Z"), every(12*time.Hour, "UTC"), utc("2026-06-10T09:00:00Z"))
	h.runUntil(utc("2026-06-10T11:00:00Z"))
	// Another one at 11:00 moves nothing either.
	h.m.set(func(m *fakeMachine) { m.last = utc("2026-06-10T11:00:00Z") })
	h.runUntil(utc("2026-06-10T13:00:00Z"))
	h.wantRuns(utc("2026-06-10T12:00:00Z"))

	// The midnight run waits 10 minutes for an on-demand backup to end:
	// the next is at noon all the same.
	h.m.set(func(m *fakeMachine) {
		m.hook = func(context.Context) error {
			if m.clock.Now().Hour() == 0 {
				m.clock.advance(10 * time.Minute)
			}
			return nil
		}
	})
	h.runUntil(utc("2026-06-11T13:00:00Z"))
	backups, _ := h.m.runs()
	want := []time.Time{utc("2026-06-10T12:00:00Z"), utc("2026-06-11T00:00:00Z"), utc("2026-06-11T12:00:00Z")}
	if !equalTimes(backups, want) {
		t.Errorf("backups at %s, want %s", fmtTimes(backups), fmtTimes(want))
	}
}

func TestDisableEnable(t *testing.T) {
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), utc("2026-06-10T10:05:00Z"))
	h.runUntil(utc("2026-06-10T12:30:00Z"))
	h.m.set(func(m *fakeMachine) { m.disabled = true })
	h.runUntil(utc("2026-06-10T15:30:00Z"))
	if n := strings.Count(h.log.String(), "scheduled backup skipped"); n != 3 {
		t.Errorf("%d skipped runs logged while disabled, want 3 (13:00, 14:00, 15:00)", n)
	}
	// Enabled again: no catch-up of the skipped runs, the next at its time.
	h.m.set(func(m *fakeMachine) { m.disabled = false })
	h.runUntil(utc("2026-06-10T17:30:00Z"))
	h.wantRuns(utc("2026-06-10T11:00:00Z"), utc("2026-06-10T12:00:00Z"), utc("2026-06-10T16:00:00Z"), utc("2026-06-10T17:00:00Z"))
}

func TestDisabledAtStartSkipsCatchUp(t *testing.T) {
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), time.Time{}, func(m *fakeMachine) { m.disabled = true })
	h.runUntil(utc("2026-06-10T11:30:00Z"))
	h.wantRuns()
	h.m.set(func(m *fakeMachine) { m.disabled = false })
	h.runUntil(utc("2026-06-10T12:30:00Z"))
	h.wantRuns(utc("2026-06-10T12:00:00Z"))
}

func TestNoOverlap(t *testing.T) {
	// Each backup takes 3.5 hours of an hourly schedule: the slots that
	// pass meanwhile are not run afterwards, one after the other.
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), utc("2026-06-10T10:10:00Z"), func(m *fakeMachine) {
		m.hook = func(context.Context) error { m.clock.advance(210 * time.Minute); return nil }
	})
	h.runUntil(utc("2026-06-10T20:00:00Z"))
	backups, retentions := h.m.runs()
	want := []time.Time{utc("2026-06-10T11:00:00Z"), utc("2026-06-10T15:00:00Z"), utc("2026-06-10T19:00:00Z")}
	if !equalTimes(backups, want) {
		t.Errorf("backups at %s, want %s", fmtTimes(backups), fmtTimes(want))
	}
	if len(retentions) != 3 {
		t.Errorf("retention applied %d times, want 3", len(retentions))
	}
	if h.m.overlap {
		t.Error("two backups ran at once")
	}
}

func TestMissedRunsCoalesce(t *testing.T) {
	// Down for three days (six slots): one backup at start.
	h := start(t, utc("2026-06-10T10:00:00Z"), every(12*time.Hour, "UTC"), utc("2026-06-07T09:00:00Z"))
	h.runUntil(utc("2026-06-10T12:30:00Z"))
	h.wantRuns(utc("2026-06-10T10:00:00Z"), utc("2026-06-10T12:00:00Z"))
	if !strings.Contains(h.log.String(), "was missed") {
		t.Error("the missed run is not logged")
	}
	// The machine sleeps two days while the loop waits: one backup at
	// wake-up, then the schedule's times.
	h.wake(utc("2026-06-12T15:00:00Z"))
	h.runUntil(utc("2026-06-13T01:00:00Z"))
	h.wantRuns(utc("2026-06-10T10:00:00Z"), utc("2026-06-10T12:00:00Z"), utc("2026-06-12T15:00:00Z"), utc("2026-06-13T00:00:00Z"))
}

func TestNoPointBacksUpAtOnce(t *testing.T) {
	h := start(t, utc("2026-06-10T10:17:00Z"), every(12*time.Hour, "UTC"), time.Time{})
	h.runUntil(utc("2026-06-10T12:30:00Z"))
	h.wantRuns(utc("2026-06-10T10:17:00Z"), utc("2026-06-10T12:00:00Z"))
}

func TestPolicyChangeTakesEffect(t *testing.T) {
	h := start(t, utc("2026-06-10T10:00:00Z"), every(12*time.Hour, "UTC"), utc("2026-06-10T09:00:00Z"))
	h.runUntil(utc("2026-06-10T10:20:00Z"))
	next := atTimes(t, "UTC", "11:00")
	next.Seq = 2
	h.m.set(func(m *fakeMachine) { m.pol = next })
	h.runUntil(utc("2026-06-11T12:30:00Z"))
	h.wantRuns(utc("2026-06-10T11:00:00Z"), utc("2026-06-11T11:00:00Z"))
	if !strings.Contains(h.log.String(), "policy changed") {
		t.Error("the policy change is not logged")
	}
}

func TestPolicyUnreadable(t *testing.T) {
	broken := errors.New("storage unreachable")
	// No policy at start: nothing runs; the loop tries again.
	h := start(t, utc("2026-06-10T10:00:00Z"), every(time.Hour, "UTC"), utc("2026-06-10T09:30:00Z"), func(m *fakeMachine) { m.polErr = broken })
	h.runUntil(utc("2026-06-10T12:30:00Z"))
	h.wantRuns()
	// Readable: the 10:00, 11:00 and 12:00 runs were missed, one runs.
	h.m.set(func(m *fakeMachine) { m.polErr = nil })
	h.runUntil(utc("2026-06-10T13:30:00Z"))
	h.wantRuns(utc("2026-06-10T12:35:00Z"), utc("2026-06-10T13:00:00Z"))
	// Unreadable again: the schedule known goes on.
	h.m.set(func(m *fakeMachine) { m.polErr = broken })
	h.runUntil(utc("2026-06-10T14:30:00Z"))
	h.wantRuns(utc("2026-06-10T12:35:00Z"), utc("2026-06-10T13:00:00Z"), utc("2026-06-10T14:00:00Z"))
}

func TestFailedBackupWaitsForNextTime(t *testing.T) {
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), utc("2026-06-10T10:10:00Z"), func(m *fakeMachine) {
		m.hook = func(context.Context) error { return errors.New("vault unreachable") }
	})
	h.runUntil(utc("2026-06-10T13:30:00Z"))
	backups, retentions := h.m.runs()
	want := []time.Time{utc("2026-06-10T11:00:00Z"), utc("2026-06-10T12:00:00Z"), utc("2026-06-10T13:00:00Z")}
	if !equalTimes(backups, want) {
		t.Errorf("backups at %s, want %s: a failed run waits for the next time", fmtTimes(backups), fmtTimes(want))
	}
	if len(retentions) != 0 {
		t.Errorf("retention applied after failed backups: %s", fmtTimes(retentions))
	}
	if n := strings.Count(h.log.String(), "backup failed"); n != 3 {
		t.Errorf("%d failures logged, want 3", n)
	}
}

func TestCancelDuringBackup(t *testing.T) {
	started := make(chan struct{})
	returned := make(chan error, 1)
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), time.Time{}, func(m *fakeMachine) {
		m.hook = func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			returned <- ctx.Err()
			return ctx.Err()
		}
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no backup started")
	}
	h.stop()
	if err := <-returned; !errors.Is(err, context.Canceled) {
		t.Errorf("the backup saw %v, want its context cancelled", err)
	}
	if _, retentions := h.m.runs(); len(retentions) != 0 {
		t.Errorf("retention applied after a cancelled backup: %s", fmtTimes(retentions))
	}
	log := h.log.String()
	if !strings.Contains(log, "backup cancelled") || !strings.Contains(log, "agent stopped") {
		t.Errorf("log does not say the backup was cancelled and the agent stopped:\n%s", log)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	h := start(t, utc("2026-06-10T10:30:00Z"), every(time.Hour, "UTC"), utc("2026-06-10T10:10:00Z"))
	h.sleeping()
	h.stop()
	h.wantRuns()
}

func TestDaylightSavingTime(t *testing.T) {
	zone := "Europe/Berlin"
	t.Run("at 02:30", func(t *testing.T) {
		// 2026-03-29: 02:30 does not exist (02:00 CET -> 03:00 CEST); it is
		// taken an hour later. 2026-10-25: 02:30 happens twice; it runs once,
		// at the first.
		h := start(t, utc("2026-03-28T12:00:00Z"), atTimes(t, zone, "02:30"), utc("2026-03-28T11:00:00Z"))
		h.runUntil(utc("2026-03-31T00:00:00Z"))
		h.wantRuns(
			utc("2026-03-29T01:30:00Z"), // 03:30 CEST
			utc("2026-03-30T00:30:00Z"), // 02:30 CEST
		)
		h2 := start(t, utc("2026-10-24T12:00:00Z"), atTimes(t, zone, "02:30"), utc("2026-10-24T11:00:00Z"))
		h2.runUntil(utc("2026-10-27T00:00:00Z"))
		h2.wantRuns(
			utc("2026-10-25T00:30:00Z"), // 02:30 CEST, not again at 02:30 CET
			utc("2026-10-26T01:30:00Z"), // 02:30 CET
		)
	})
	t.Run("every hour", func(t *testing.T) {
		berlin, _ := time.LoadLocation(zone)
		for _, tc := range []struct {
			day  string
			runs int
		}{{"2026-03-29", 23}, {"2026-10-25", 24}, {"2026-06-10", 24}} {
			dayStart, _ := time.ParseInLocation("2006-01-02", tc.day, berlin)
			dayEnd := dayStart.AddDate(0, 0, 1)
			h := start(t, dayStart.Add(-30*time.Minute), every(time.Hour, zone), dayStart.Add(-40*time.Minute))
			h.runUntil(dayEnd.Add(-time.Minute))
			backups, _ := h.m.runs()
			if len(backups) != tc.runs {
				t.Errorf("%s: %d hourly runs %s, want %d", tc.day, len(backups), fmtTimes(backups), tc.runs)
			}
			for i, b := range backups {
				if b.Before(dayStart) || !b.Before(dayEnd) {
					t.Errorf("%s: run at %s is outside the day", tc.day, b)
				}
				if i > 0 && b.Sub(backups[i-1]) < time.Hour {
					t.Errorf("%s: runs at %s and %s less than an hour apart", tc.day, backups[i-1], b)
				}
			}
			h.stop()
		}
	})
}

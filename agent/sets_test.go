package agent

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/storage/mem"
)

// vaultMachine is a Machine over a real vault in memory: its policy is the
// owner's signed record, a backup saves a point of the job's set at the
// clock's time, and retention is package policy's.
type vaultMachine struct {
	clock *fakeClock
	st    *mem.Store
	root  repo.Root
	v     *repo.Area

	mu   sync.Mutex
	jobs map[string][]policy.SetPolicy // the jobs each set's backups got
}

func newVaultMachine(t *testing.T, clock *fakeClock) (*vaultMachine, *keys.OwnerKeys) {
	t.Helper()
	ctx := context.Background()
	m := &vaultMachine{clock: clock, st: mem.New(), jobs: make(map[string][]policy.SetPolicy)}
	m.st.Clock = clock.Now
	var owner *keys.OwnerKeys
	var err error
	kdf := keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}
	if m.root, owner, err = repo.CreateVault(ctx, m.st, "owner passphrase", kdf); err != nil {
		t.Fatal(err)
	}
	if m.v, err = m.root.RegisterMachine(ctx, "web01", "machine passphrase", kdf, nil); err != nil {
		t.Fatal(err)
	}
	return m, owner
}

func (m *vaultMachine) area() policy.Machine {
	return policy.Machine{Root: m.root, Area: m.v, Host: "web01"}
}

func (m *vaultMachine) Policy(ctx context.Context) (policy.Policy, error) {
	return policy.Current(ctx, m.root, "web01")
}

func (m *vaultMachine) Enabled() (bool, error) { return true, nil }

func (m *vaultMachine) LastBackup(ctx context.Context, set string) (time.Time, error) {
	s, err := policy.Load(ctx, m.area())
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, p := range s.All() {
		if p.SetName == set && p.Time.After(last) {
			last = p.Time
		}
	}
	return last, nil
}

func (m *vaultMachine) Backup(ctx context.Context, job policy.SetPolicy) error {
	m.mu.Lock()
	m.jobs[job.Name] = append(m.jobs[job.Name], job)
	m.mu.Unlock()
	return m.save(ctx, m.clock.Now(), job.Name, job.Paths...)
}

func (m *vaultMachine) save(ctx context.Context, at time.Time, set string, paths ...string) error {
	return m.v.SavePoint(ctx, &repo.Point{Machine: "web01", Time: at, Root: keys.ID{1}, Paths: paths, SetName: set})
}

func (m *vaultMachine) ApplyRetention(ctx context.Context, now time.Time) error {
	_, err := policy.ApplyRetention(ctx, m.area(), now)
	return err
}

// runFor runs the agent on clock until its next wake-up is after until.
func runFor(t *testing.T, clock *fakeClock, m Machine, opts Options, until time.Time) *syncBuffer {
	t.Helper()
	log := &syncBuffer{}
	opts.Clock, opts.Log = clock, slog.New(slog.NewTextHandler(log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, m, opts)
	}()
	defer func() {
		cancel()
		close(clock.closed)
		<-done
		if t.Failed() {
			t.Logf("agent log:\n%s", log)
		}
	}()
	for {
		select {
		case at := <-clock.asleep:
			if at.After(until) {
				return log
			}
			clock.fire(at)
		case <-time.After(10 * time.Second):
			t.Fatal("the loop did not go to sleep")
		}
	}
}

// TestTwoSetsUnderAgent: a machine with its agent's own paths on the
// default rules and two sets of the policy with their own schedules,
// selections and retention, plus a manual point of other paths. After
// three days under the agent, each set has been backed up on its own
// schedule with its own selection and keeps exactly what its rules say;
// the manual point, alone in its set, stays.
func TestTwoSetsUnderAgent(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(utc("2026-06-10T00:30:00Z"))
	m, owner := newVaultMachine(t, clock)
	manual := utc("2026-06-01T09:00:00Z")
	if err := m.save(ctx, manual, "", "/home/me/notes"); err != nil {
		t.Fatal(err)
	}
	p := policy.Default("web01")
	p.Schedule, p.Retention = policy.Schedule{Every: 12 * time.Hour}, retention.Retention{KeepLast: 3}
	etcSel := selection.Spec{Exclude: []string{"*.swp"}, OneFileSystem: true}
	p = p.WithEntry(policy.SetPolicy{Name: "etc", Paths: []string{"/etc"}, Selection: etcSel,
		Schedule: policy.Schedule{Every: 8 * time.Hour}, Retention: retention.Retention{KeepLast: 2}})
	p = p.WithEntry(policy.SetPolicy{Name: "db", Paths: []string{"/var/backups/db"},
		Schedule: policy.Schedule{At: []policy.TimeOfDay{3 * 60}}, Retention: retention.Retention{KeepDaily: 2}})
	// A set without paths: retention only, no job.
	p = p.WithEntry(policy.SetPolicy{Name: "adhoc", Schedule: policy.Schedule{Every: time.Hour}, Retention: retention.Retention{KeepLast: 1}})
	if _, err := policy.Set(ctx, m.root, owner, p, clock.Now()); err != nil {
		t.Fatal(err)
	}
	runFor(t, clock, m, Options{Paths: []string{"/srv"}}, utc("2026-06-12T23:59:00Z"))

	runs := map[string][]string{
		// At start every set is due at once: none has a point.
		"":    {"06-10T00:30", "06-10T12:00", "06-11T00:00", "06-11T12:00", "06-12T00:00", "06-12T12:00"},
		"etc": {"06-10T00:30", "06-10T08:00", "06-10T16:00", "06-11T00:00", "06-11T08:00", "06-11T16:00", "06-12T00:00", "06-12T08:00", "06-12T16:00"},
		"db":  {"06-10T00:30", "06-10T03:00", "06-11T03:00", "06-12T03:00"},
	}
	live := map[string][]string{
		"":    {"06-11T12:00", "06-12T00:00", "06-12T12:00"},
		"etc": {"06-12T08:00", "06-12T16:00"},
		"db":  {"06-11T03:00", "06-12T03:00"},
	}
	s, err := policy.Load(ctx, m.area())
	if err != nil {
		t.Fatal(err)
	}
	for set, want := range runs {
		var got []string
		for _, pt := range s.All() {
			if pt.SetName == set && !pt.Time.Equal(manual) {
				got = append(got, pt.Time.Format("01-02T15:04"))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("set %q backed up at %v, want %v", set, got, want)
		}
		got = nil
		for _, pt := range s.Live() {
			if pt.SetName == set && !pt.Time.Equal(manual) {
				got = append(got, pt.Time.Format("01-02T15:04"))
			}
		}
		if !slices.Equal(got, live[set]) {
			t.Errorf("set %q keeps %v, want %v", set, got, live[set])
		}
	}
	if !slices.ContainsFunc(s.Live(), func(pt *repo.Point) bool { return pt.Time.Equal(manual) }) {
		t.Error("the manual point of other paths was forgotten by another set's rules")
	}
	for _, job := range m.jobs["etc"] {
		if !reflect.DeepEqual(job.Selection, etcSel) || !slices.Equal(job.Paths, []string{"/etc"}) {
			t.Fatalf("etc backed up with paths %q and selection %+v, want the policy's", job.Paths, job.Selection)
		}
	}
	for _, job := range m.jobs[""] {
		if !slices.Equal(job.Paths, []string{"/srv"}) {
			t.Fatalf("the agent's own job backed up %q, want its paths", job.Paths)
		}
	}
	if len(m.jobs["adhoc"]) != 0 {
		t.Errorf("the set without paths was backed up %d times", len(m.jobs["adhoc"]))
	}
}

// TestSetJobFollowsPolicy: a set given paths while the agent runs starts
// its job at the next policy read (at once, having no point), then runs on
// its own schedule.
func TestSetJobFollowsPolicy(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(utc("2026-06-10T10:30:00Z"))
	m, owner := newVaultMachine(t, clock)
	if err := m.save(ctx, utc("2026-06-10T10:00:00Z"), "", "/srv"); err != nil {
		t.Fatal(err)
	}
	p := policy.Default("web01")
	p.Schedule = policy.Schedule{Every: 12 * time.Hour}
	if _, err := policy.Set(ctx, m.root, owner, p, clock.Now()); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	go func() {
		// Once the agent sleeps, the owner gives set etc paths.
		<-first
		etc := p.WithEntry(policy.SetPolicy{Name: "etc", Paths: []string{"/etc"}, Schedule: policy.Schedule{Every: 6 * time.Hour}})
		if _, err := policy.Set(ctx, m.root, owner, etc, clock.Now()); err != nil {
			t.Error(err)
		}
		close(first)
	}()
	runFor(t, clock, &gated{Machine: m, gate: first}, Options{Paths: []string{"/srv"}}, utc("2026-06-10T19:00:00Z"))
	s, err := policy.Load(ctx, m.area())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pt := range s.All() {
		got = append(got, pt.SetName+"@"+pt.Time.Format("15:04"))
	}
	// etc starts at the first recheck after the change (10:35), then 12:00 and 18:00.
	want := []string{"@10:00", "@12:00", "etc@10:35", "etc@12:00", "etc@18:00"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("points %v, want %v", got, want)
	}
}

// gated is a Machine that, on the first policy read, lets a test change
// the policy before reading it again.
type gated struct {
	Machine
	gate  chan struct{}
	reads int
}

func (g *gated) Policy(ctx context.Context) (policy.Policy, error) {
	g.reads++
	if g.reads == 2 {
		g.gate <- struct{}{}
		<-g.gate
	}
	return g.Machine.Policy(ctx)
}

package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/cache/objcache"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const testPass keys.Passphrase = "correct horse battery staple"

// t0 is the tests' "now": the points are the days before it.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fixture is a vault root in memory with its owner and one machine.
type fixture struct {
	st    *mem.Store
	root  repo.Root
	owner *keys.OwnerKeys
	v     *repo.Area
	clock time.Time // the storage's clock
	mu    sync.Mutex
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: mem.New(), clock: t0}
	f.st.Clock = func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.clock
	}
	var err error
	if f.root, f.owner, err = repo.CreateVault(ctx, f.st, testPass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	if f.v, err = f.root.RegisterMachine(ctx, "web01", testPass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) setClock(t time.Time) {
	f.mu.Lock()
	f.clock = t
	f.mu.Unlock()
}

func (f *fixture) machine() Machine {
	return Machine{Root: f.root, Area: f.v, Host: "web01"}
}

// addPoints saves one point per day for n days, the last at t0 - 1h.
func (f *fixture) addPoints(t testing.TB, n int) []*repo.Point {
	t.Helper()
	var out []*repo.Point
	for i := n - 1; i >= 0; i-- {
		p := &repo.Point{Machine: "web01", Time: t0.Add(-time.Hour - time.Duration(i)*24*time.Hour), Root: keys.ID{1}, Paths: []string{"/"}}
		if err := f.v.SavePoint(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func (f *fixture) setPolicy(t testing.TB, r retention.Retention) Policy {
	t.Helper()
	p := Default("web01")
	p.Retention = r
	p, err := Set(context.Background(), f.root, f.owner, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) load(t testing.TB) *State {
	t.Helper()
	s, err := Load(context.Background(), f.machine())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func ids(points []*repo.Point) []keys.ID {
	out := make([]keys.ID, len(points))
	for i, p := range points {
		out[i] = p.ID
	}
	return out
}

func sameIDs(t testing.TB, what string, got, want []*repo.Point) {
	t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s: %d points %v, want %d %v", what, len(got), short(got), len(want), short(want))
	}
}

func short(points []*repo.Point) []string {
	out := make([]string, len(points))
	for i, p := range points {
		out[i] = p.ID.Short() + "@" + p.Time.Format("01-02")
	}
	return out
}

func TestDefaultPolicy(t *testing.T) {
	f := newFixture(t)
	p, err := Current(context.Background(), f.root, "web01")
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsDefault() || p.Schedule.Every != 12*time.Hour || p.Retention.String() != "keep daily 14, weekly 8, monthly 12, yearly 3" || p.TimeZone != "UTC" {
		t.Errorf("default policy %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("the default policy is not valid: %v", err)
	}
}

func TestSetAndCurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := Policy{Machine: "web01", TimeZone: "Europe/Berlin", Schedule: Schedule{At: []TimeOfDay{2 * 60, 14 * 60}},
		Retention: retention.Retention{KeepLast: 3, KeepWithin: 14 * retention.Day}}
	got, err := Set(ctx, f.root, f.owner, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || !got.Set.Equal(t0) {
		t.Errorf("first policy: seq %d, set %s", got.Seq, got.Set)
	}
	cur, err := Current(ctx, f.root, "web01")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Seq != 1 || cur.TimeZone != "Europe/Berlin" || cur.Schedule.String() != "at 02:00, 14:00" || cur.Retention != p.Retention {
		t.Errorf("Current = %+v", cur)
	}
	p.Retention.KeepLast = 5
	if _, err := Set(ctx, f.root, f.owner, p, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if cur, _ := Current(ctx, f.root, "web01"); cur.Seq != 2 || cur.Retention.KeepLast != 5 {
		t.Errorf("after a second Set: %+v", cur)
	}
	// Refused: an unregistered machine, an invalid policy, keys that are
	// not the owner's.
	other := p
	other.Machine = "nobody"
	if _, err := Set(ctx, f.root, f.owner, other, t0); !errors.Is(err, repo.ErrNoMachine) {
		t.Errorf("Set for an unregistered machine: %v", err)
	}
	bad := p
	bad.Schedule = Schedule{Every: 30 * time.Minute}
	if _, err := Set(ctx, f.root, f.owner, bad, t0); !errors.Is(err, ErrPolicy) {
		t.Errorf("Set of a 30-minute schedule: %v", err)
	}
	impostor, err := keys.NewOwnerKeys(f.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Set(ctx, f.root, impostor, p, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Set with other keys: %v", err)
	}
}

// TestPolicyForgery: a policy the owner did not sign, or one signed for
// another machine and copied, is not the machine's policy.
func TestPolicyForgery(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.root.RegisterMachine(ctx, "db01", testPass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	f.setPolicy(t, retention.Retention{KeepDaily: 30})
	area := f.root.MachineStorage("web01")

	// Signed by other keys, under a higher number.
	impostor, err := keys.NewOwnerKeys(f.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	forged := Default("web01")
	forged.Retention = retention.Retention{KeepLast: 1}
	forged.Seq, forged.Set = 2, t0
	if err := signed.Save(ctx, area, seqName(policyPrefix, 2), impostor, policyContext, forged.record(f.root.ID)); err != nil {
		t.Fatal(err)
	}
	// Signed by the owner for db01, copied to web01 under a higher number.
	dbPolicy := Default("db01")
	dbPolicy.Retention = retention.Retention{KeepLast: 1}
	dbPolicy, err = Set(ctx, f.root, f.owner, dbPolicy, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.root.MachineStorage("db01").Load(ctx, seqName(policyPrefix, dbPolicy.Seq), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := area.Save(ctx, seqName(policyPrefix, 3), b); err != nil {
		t.Fatal(err)
	}
	// Signed under another context (a PIN's, say): not a policy.
	if err := signed.Save(ctx, area, seqName(policyPrefix, 4), f.owner, "pin", forged.record(f.root.ID)); err != nil {
		t.Fatal(err)
	}
	// Junk.
	if err := area.Save(ctx, seqName(policyPrefix, 5), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	cur, err := Current(ctx, f.root, "web01")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Seq != 1 || cur.Retention.KeepDaily != 30 {
		t.Errorf("Current took a forged policy: %+v", cur)
	}
	// The owner's next policy goes after the junk.
	p, err := Set(ctx, f.root, f.owner, Default("web01"), t0)
	if err != nil || p.Seq != 6 {
		t.Errorf("Set after planted records: seq %d, %v", p.Seq, err)
	}
}

// TestSignedPolicyUnreadable: a signed policy that does not validate (from a
// later azfs, say) is an error, not a fall back to an older policy.
func TestSignedPolicyUnreadable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.setPolicy(t, retention.Retention{KeepLast: 1})
	p := Default("web01")
	p.Seq, p.Set, p.TimeZone = 2, t0, "Mars/Olympus_Mons"
	area := f.root.MachineStorage("web01")
	if err := signed.Save(ctx, area, seqName(policyPrefix, 2), f.owner, policyContext, p.record(f.root.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := Current(ctx, f.root, "web01"); !errors.Is(err, ErrPolicy) {
		t.Errorf("Current with an unreadable signed policy: %v", err)
	}
	if _, err := ApplyRetention(ctx, f.machine(), t0); !errors.Is(err, ErrPolicy) {
		t.Errorf("ApplyRetention with an unreadable signed policy: %v", err)
	}
}

func TestWindow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if d, err := Window(ctx, f.root); err != nil || d != DefaultWindow {
		t.Fatalf("default window %s, %v", d, err)
	}
	for _, d := range []time.Duration{30 * retention.Day, 7 * retention.Day} {
		if err := SetWindow(ctx, f.root, f.owner, d, t0); err != nil {
			t.Fatal(err)
		}
		if got, err := Window(ctx, f.root); err != nil || got != d {
			t.Errorf("window %s, %v; want %s", got, err, d)
		}
	}
	impostor, err := keys.NewOwnerKeys(f.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetWindow(ctx, f.root, impostor, 0, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("SetWindow with other keys: %v", err)
	}
	rec := windowRecord{Vault: f.root.ID, Seq: 3, Time: t0, Window: 0}
	if err := signed.Save(ctx, f.st, seqName(windowPrefix, 3), impostor, windowContext, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := Window(ctx, f.root); got != 7*retention.Day {
		t.Errorf("a forged window counts: %s", got)
	}
	if err := SetWindow(ctx, f.root, f.owner, -time.Hour, t0); !errors.Is(err, ErrPolicy) {
		t.Errorf("negative window: %v", err)
	}
}

func TestApplyRetention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 10)
	f.setPolicy(t, retention.Retention{KeepLast: 3})

	s := f.load(t)
	sameIDs(t, "live before", s.Live(), points)
	sameIDs(t, "expired", s.Expired(t0), points[:7])

	forgotten, err := ApplyRetention(ctx, f.machine(), t0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten", forgotten, points[:7])
	s = f.load(t)
	sameIDs(t, "live after", s.Live(), points[7:])
	deleted := s.Deleted()
	if len(deleted) != 7 {
		t.Fatalf("%d deleted, want 7", len(deleted))
	}
	for _, d := range deleted {
		st := d.Status
		if !st.Forgotten || st.ByOwner || st.Policy != 1 || st.Host != "web01" || !st.At.Equal(t0) || !st.PurgeableAt.Equal(t0.Add(DefaultWindow)) {
			t.Errorf("status of %s: %+v", d.Point.ID.Short(), st)
		}
	}
	// Applying again forgets nothing more; forgotten points do not count.
	if again, err := ApplyRetention(ctx, f.machine(), t0.Add(time.Minute)); err != nil || len(again) != 0 {
		t.Errorf("second application forgot %d points (%v)", len(again), err)
	}
	// New points push the oldest live ones out.
	more := f.addPointsAt(t, t0.Add(time.Hour), t0.Add(2*time.Hour))
	forgotten, err = ApplyRetention(ctx, f.machine(), t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten after two more", forgotten, points[7:9])
	sameIDs(t, "live after two more", f.load(t).Live(), append([]*repo.Point{points[9]}, more...))
}

func (f *fixture) addPointsAt(t testing.TB, times ...time.Time) []*repo.Point {
	t.Helper()
	var out []*repo.Point
	for _, tm := range times {
		p := &repo.Point{Machine: "web01", Time: tm, Root: keys.ID{1}, Paths: []string{"/"}}
		if err := f.v.SavePoint(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestRetentionPerSet: retention applies to each backup set apart. A
// manual point of other paths, and a point of a named set, older than
// every point of the machine's daily set, are the newest of their sets
// and stay; a tombstone that an application across sets wrote for the
// manual point (as azfs did before sets) does not hold.
func TestRetentionPerSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	save := func(p *repo.Point) *repo.Point {
		t.Helper()
		p.Machine, p.Root = "web01", keys.ID{1}
		if err := f.v.SavePoint(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	manual := save(&repo.Point{Time: t0.Add(-20 * retention.Day), Paths: []string{"/etc/ssh"}})
	db := save(&repo.Point{Time: t0.Add(-19 * retention.Day), Paths: []string{"/var/backups"}, SetName: "db"})
	daily := f.addPoints(t, 10) // paths "/"
	f.setPolicy(t, retention.Retention{KeepLast: 3})

	// What an application across sets forgot: all but the last 3.
	plain, err := EncodeTombstone(Tombstone{Points: append(ids([]*repo.Point{manual, db}), ids(daily[:7])...), Time: t0, Policy: 1, Host: "old azfs"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.SaveTombstone(ctx, plain); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	sameIDs(t, "live: the tombstone holds only within the daily set", s.Live(), append([]*repo.Point{manual, db}, daily[7:]...))
	sameIDs(t, "expired", s.Expired(t0), nil)

	// Each set keeps its last 3; the other sets' points do not count.
	more := []*repo.Point{
		save(&repo.Point{Time: t0.Add(time.Hour), Paths: []string{"/etc/ssh"}}),
		save(&repo.Point{Time: t0.Add(2 * time.Hour), Paths: []string{"/etc/ssh"}}),
		save(&repo.Point{Time: t0.Add(3 * time.Hour), Paths: []string{"/etc/ssh"}}),
		save(&repo.Point{Time: t0.Add(4 * time.Hour), Paths: []string{"/other"}, SetName: "db"}),
	}
	forgotten, err := ApplyRetention(ctx, f.machine(), t0.Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten: the oldest of the /etc/ssh set", forgotten, []*repo.Point{manual})
	live := append(append([]*repo.Point{db}, daily[7:]...), more...)
	sameIDs(t, "live", f.load(t).Live(), live)
}

// TestEmptyPolicyKeepsAll: a policy without rules forgets nothing.
func TestEmptyPolicyKeepsAll(t *testing.T) {
	f := newFixture(t)
	f.addPoints(t, 50)
	f.setPolicy(t, retention.Retention{})
	forgotten, err := ApplyRetention(context.Background(), f.machine(), t0)
	if err != nil || len(forgotten) != 0 {
		t.Errorf("an empty policy forgot %d points (%v)", len(forgotten), err)
	}
}

// TestTombstoneChecked: a tombstone for a point the owner's policy keeps
// (written by a compromised machine, or anyone with the area's keys) is
// ignored; lengthening the retention brings back what a shorter one
// forgot.
func TestTombstoneChecked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 10)
	f.setPolicy(t, retention.Retention{KeepLast: 3})

	// The machine claims the policy forgot every point.
	plain, err := EncodeTombstone(Tombstone{Points: ids(points), Time: t0, Policy: 1, Host: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.SaveTombstone(ctx, plain); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	sameIDs(t, "live despite a tombstone for every point", s.Live(), points[7:])
	sameIDs(t, "forgotten", pointsOf(s.Deleted()), points[:7])

	// A longer retention: the tombstone no longer holds for points 4 to 6.
	f.setPolicy(t, retention.Retention{KeepLast: 6})
	sameIDs(t, "live after lengthening", f.load(t).Live(), points[4:])
	// No retention at all: everything is back.
	f.setPolicy(t, retention.Retention{})
	sameIDs(t, "live with no rule", f.load(t).Live(), points)
}

// TestTombstoneCheckedAtItsTime: a tombstone holds only for points the
// policy forgot when it was written. One written ahead of time, for points
// the policy still kept, never starts their soft-delete window: when they
// expire, the application that forgets them does.
func TestTombstoneCheckedAtItsTime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.addPoints(t, 3)
	f.setPolicy(t, retention.Retention{KeepLast: 3})
	plain, err := EncodeTombstone(Tombstone{Points: ids(old), Time: t0, Policy: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.SaveTombstone(ctx, plain); err != nil {
		t.Fatal(err)
	}
	newer := f.addPointsAt(t, t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	later := t0.Add(20 * retention.Day)
	f.setClock(later)
	s := f.load(t)
	sameIDs(t, "live: the early tombstone does not hold", s.Live(), append(old, newer...))
	forgotten, err := ApplyRetention(ctx, f.machine(), later)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten", forgotten, old)
	for _, p := range old {
		if st, _ := f.load(t).Status(p.ID); !st.At.Equal(later) || !st.PurgeableAt.Equal(later.Add(DefaultWindow)) {
			t.Errorf("point %s: forgotten %s, purgeable %s; want from %s", p.ID.Short(), st.At, st.PurgeableAt, later)
		}
	}
}

func pointsOf(ds []Deleted) []*repo.Point {
	out := make([]*repo.Point, len(ds))
	for i, d := range ds {
		out[i] = d.Point
	}
	return out
}

// TestForgedTombstone: a tombstone sealed under other keys (written by the
// storage, which holds none) is damage, not a forget.
func TestForgedTombstone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 5)
	f.setPolicy(t, retention.Retention{KeepLast: 1})
	other, err := keys.NewKeySet(f.v.ID())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := EncodeTombstone(Tombstone{Points: ids(points), Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	id := other.ID(keys.KindTombstone, plain)
	sealed := other.NewIndexSealer().Seal(nil, keys.KindTombstone, id, plain)
	if err := f.v.Storage().Save(ctx, repo.TombstoneName(id), sealed); err != nil {
		t.Fatal(err)
	}
	s, err := Load(ctx, f.machine())
	if !errors.Is(err, repo.ErrDamaged) || s == nil {
		t.Fatalf("Load with a forged tombstone: %v", err)
	}
	sameIDs(t, "live", s.Live(), points)
}

// TestOwnerForgetUndelete: the owner's records come first, the latest
// deciding; an undeleted point is never forgotten by retention again.
func TestOwnerForgetUndelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 5)
	f.setPolicy(t, retention.Retention{KeepLast: 2})
	m := f.machine()

	if err := Forget(ctx, m, f.owner, []keys.ID{points[4].ID}, t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	sameIDs(t, "live after forgetting the newest", s.Live(), points[:4])
	if st, _ := s.Status(points[4].ID); !st.Forgotten || !st.ByOwner || !st.At.Equal(t0) {
		t.Errorf("status %+v", st)
	}
	// Retention counts live points only: the newest forgotten, the two
	// before it are the last two.
	forgotten, err := ApplyRetention(ctx, m, t0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "retention forgot", forgotten, points[:2])

	// Undelete one point forgotten by retention and the owner's.
	if err := Undelete(ctx, m, f.owner, []keys.ID{points[0].ID, points[4].ID}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	s = f.load(t)
	sameIDs(t, "live after undelete", s.Live(), []*repo.Point{points[0], points[2], points[3], points[4]})
	if st, _ := s.Status(points[0].ID); st.Forgotten || !st.Undeleted {
		t.Errorf("undeleted point: %+v", st)
	}
	// Retention does not forget the undeleted point 0 again; it forgets
	// point 2, pushed out by the returning point 4.
	forgotten, err = ApplyRetention(ctx, m, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "retention after undelete", forgotten, points[2:3])
	// The owner forgets point 0 again: the latest record decides.
	if err := Forget(ctx, m, f.owner, []keys.ID{points[0].ID}, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "live after forgetting again", f.load(t).Live(), points[3:])

	// Records signed by other keys count for nothing.
	impostor, err := keys.NewOwnerKeys(f.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := Forget(ctx, m, impostor, []keys.ID{points[3].ID}, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Forget with other keys: %v", err)
	}
	fake := ownerRecordBody{Vault: f.root.ID, Machine: "web01", ID: "0123456789abcdef0123456789abcdef", Action: ActionForget, Points: ids(points), Time: t0.Add(time.Hour)}
	if err := signed.Save(ctx, f.root.MachineStorage("web01"), ownerPrefix+fake.ID, impostor, ownerContext, fake); err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "live after a forged forget", f.load(t).Live(), points[3:])
}

// TestManyOwnerForgets: a forget of more points than one record holds
// takes several records.
func TestManyOwnerForgets(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var times []time.Time
	for i := range 2*maxRecordPoints + 10 {
		times = append(times, t0.Add(-time.Duration(i+1)*time.Minute))
	}
	points := f.addPointsAt(t, times...)
	if err := Forget(ctx, f.machine(), f.owner, ids(points), t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	if len(s.Live()) != 0 || len(s.Deleted()) != len(points) || len(s.records) != 3 {
		t.Errorf("%d live, %d deleted, %d records", len(s.Live()), len(s.Deleted()), len(s.records))
	}
}

// TestPurgeable: the window counts from the later of a tombstone's own
// time and the storage's, so a backdated tombstone does not shorten it;
// records go once all their points do.
func TestPurgeable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 6)
	f.setPolicy(t, retention.Retention{KeepLast: 4})
	m := f.machine()

	// A machine that claims it forgot points 0 and 1 a year ago.
	plain, err := EncodeTombstone(Tombstone{Points: ids(points[:2]), Time: t0.AddDate(-1, 0, 0), Policy: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.SaveTombstone(ctx, plain); err != nil {
		t.Fatal(err)
	}
	// The owner forgets point 5 a day later.
	f.setClock(t0.Add(24 * time.Hour))
	if err := Forget(ctx, m, f.owner, []keys.ID{points[5].ID}, t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(24 * time.Hour)
	s := f.load(t)
	if st, _ := s.Status(points[0].ID); !st.At.Equal(t0) || !st.PurgeableAt.Equal(t0.Add(DefaultWindow)) {
		t.Errorf("backdated tombstone: forgotten %s, purgeable %s; want the storage's time %s", st.At, st.PurgeableAt, t0)
	}
	for _, tc := range []struct {
		now     time.Time
		points  []*repo.Point
		records int
	}{
		{now, nil, 0},
		{t0.Add(DefaultWindow), points[:2], 1},
		{t0.Add(DefaultWindow + 24*time.Hour), []*repo.Point{points[0], points[1], points[5]}, 2},
	} {
		plan, err := s.Purgeable(ctx, tc.now)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, fmt.Sprintf("purgeable at %s", tc.now), plan.Points, tc.points)
		if len(plan.Records) != tc.records {
			t.Errorf("purgeable at %s: records %v, want %d", tc.now, plan.Records, tc.records)
		}
	}
	// Prune deletes the points, then the records: nothing is forgotten
	// any more, and what is left is live.
	plan, err := s.Purgeable(ctx, t0.Add(DefaultWindow+24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan.Points {
		if err := f.v.DeleteObject(ctx, repo.PointsPrefix, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range plan.Records {
		if err := f.v.Storage().Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	s = f.load(t)
	sameIDs(t, "live after the purge", s.Live(), points[2:5])
	if len(s.Deleted()) != 0 || len(s.tombstones) != 0 || len(s.records) != 0 {
		t.Errorf("after the purge: %d deleted, %d tombstones, %d records", len(s.Deleted()), len(s.tombstones), len(s.records))
	}
}

// createOnly lets its callers create objects only, as a blob vault's
// backup SAS does.
type createOnly struct {
	storage.Storage
}

func (createOnly) Delete(context.Context, string) error { return storage.ErrPermission }

// TestApplyWithCreateOnlyStorage: a machine that may only create objects
// applies its retention.
func TestApplyWithCreateOnlyStorage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 5)
	f.setPolicy(t, retention.Retention{KeepLast: 1})
	root := repo.Root{Storage: createOnly{f.st}, Config: f.root.Config}
	v, err := root.OpenMachine(ctx, "web01", f.v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	forgotten, err := ApplyRetention(ctx, Machine{Root: root, Area: v}, t0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "forgotten", forgotten, points[:4])
}

// TestCache: points and tombstones come from the cache; a damaged entry is
// fetched again.
func TestCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 20)
	f.setPolicy(t, retention.Retention{KeepLast: 5})
	path := t.TempDir() + "/objects"
	c := objcache.Open(path)
	m := f.machine()
	m.Cache = c
	if _, err := ApplyRetention(ctx, m, t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = objcache.Open(path)
	name := "points/" + points[0].ID.String()
	good, ok := c.Get(name)
	if !ok {
		t.Fatalf("%s not cached", name)
	}
	bad := slices.Clone(good)
	bad[len(bad)-1] ^= 1
	c.Put(name, bad)
	m.Cache = c
	s, err := Load(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "live through the cache", s.Live(), points[15:])
	if len(s.Deleted()) != 15 {
		t.Errorf("%d deleted through the cache, want 15", len(s.Deleted()))
	}
	if b, _ := c.Get(name); !slices.Equal(b, good) {
		t.Error("the damaged cache entry was not replaced by the storage's copy")
	}
}

// TestWriteOnly: a write-only machine cannot read its points' times, so it
// cannot apply retention.
func TestWriteOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	certID := fmt.Sprintf("%064x", 1)
	wrap := func(secret, ad []byte) ([]byte, error) { return append([]byte{}, secret...), nil }
	v, err := f.root.RegisterMachine(ctx, "wo01", testPass, cheapKDF, &repo.CertMode{ID: certID, Wrap: wrap})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.StartSession(ctx, wrap); err != nil {
		t.Fatal(err)
	}
	if err := v.SavePoint(ctx, &repo.Point{Machine: "wo01", Time: t0, Root: keys.ID{1}}); err != nil {
		t.Fatal(err)
	}
	if v, err = f.root.OpenMachine(ctx, "wo01", v.Keys()); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyRetention(ctx, Machine{Root: f.root, Area: v}, t0); !errors.Is(err, repo.ErrWriteOnly) {
		t.Errorf("ApplyRetention on a write-only machine: %v", err)
	}
}

// BenchmarkLoad10000 loads the state of a machine with 10,000 points, all
// but a few dozen forgotten by the default retention, through a warm
// object cache; and applies retention to it.
func BenchmarkLoad10000(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	times := make([]time.Time, 10000)
	for i := range times {
		times[i] = t0.Add(-time.Duration(i) * 6 * time.Hour)
	}
	f.addPointsAt(b, times...)
	f.setPolicy(b, Default("web01").Retention)
	c := objcache.Open(b.TempDir() + "/objects")
	m := f.machine()
	m.Cache = c
	forgotten, err := ApplyRetention(ctx, m, t0)
	if err != nil || len(forgotten) < 9900 {
		b.Fatalf("forgot %d, %v", len(forgotten), err)
	}
	if _, err := Load(ctx, m); err != nil {
		b.Fatal(err)
	}
	b.Run("Load", func(b *testing.B) {
		for b.Loop() {
			if _, err := Load(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ApplyRetention", func(b *testing.B) {
		for b.Loop() {
			if _, err := ApplyRetention(ctx, m, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlanChange: what a policy change forgets and whether it needs the
// PIN ('azfs policy set' decides with it), with and without the points.
func TestPlanChange(t *testing.T) {
	f := newFixture(t)
	points := f.addPoints(t, 6)
	cur := f.setPolicy(t, retention.Retention{KeepLast: 4})
	s := f.load(t)

	next := cur
	next.Retention = retention.Retention{KeepLast: 3}
	c, err := PlanChange(s, cur, next, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Read || c.Live != 6 || len(c.Lowered) != 1 || !(Request{Change: &c}).NeedsPIN() {
		t.Errorf("lowering keep-last 4 to 3: %+v", c)
	}
	sameIDs(t, "newly", c.Newly, points[2:3])
	sameIDs(t, "already", c.Already, points[:2])

	raised := cur
	raised.Retention = retention.Retention{KeepLast: 5}
	if c, err := PlanChange(s, cur, raised, t0); err != nil || (Request{Change: &c}).NeedsPIN() || len(c.Newly) != 0 || len(c.Already) != 1 {
		t.Errorf("raising keep-last to 5: %+v, %v", c, err)
	}
	// Points that cannot be read: only the rules decide.
	if c, err := PlanChange(nil, cur, next, t0); err != nil || c.Read || !(Request{Change: &c}).NeedsPIN() || c.Newly != nil {
		t.Errorf("without the points: %+v, %v", c, err)
	}
	if c, _ := PlanChange(nil, cur, raised, t0); (Request{Change: &c}).NeedsPIN() {
		t.Errorf("raising without the points needs no PIN: %+v", c)
	}
}

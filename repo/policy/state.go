package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
)

// Machine is one machine's area as this package works on it.
type Machine struct {
	// Root is the vault root, whose owner keys verify policies and owner
	// records: the caller has checked them against the keys it trusts
	// (repo/open.Root does).
	Root repo.Root
	// Area is the machine's area, opened with keys that read its points.
	Area *repo.Area
	// Cache, when not nil, keeps sealed points and tombstones between
	// processes.
	Cache repo.ObjectCache
	// Host names whoever applies retention in its tombstones.
	Host string
}

func (m Machine) name() string { return m.Area.Config().Machine }

// Status is the fate of one point.
type Status struct {
	Forgotten bool
	// At is when it was forgotten: the owner's signed time, or the
	// earliest effective time of the tombstones that forgot it (the later
	// of what each claims and when the storage saved it).
	At time.Time
	// PurgeableAt is At plus the soft-delete window: from then on prune may
	// delete the point and its data.
	PurgeableAt time.Time
	// ByOwner says the owner forgot it ('azfs forget'); else its retention
	// policy did.
	ByOwner bool
	// Policy is the number of the policy the first tombstone applied, and
	// Host who applied it (retention only).
	Policy int
	Host   string
	// Undeleted says the owner brought the point back: it is live and
	// retention never forgets it again.
	Undeleted bool
}

// Deleted is a forgotten point and its status.
type Deleted struct {
	Point  *repo.Point
	Status Status
}

// State is what became of a machine's points: its policy, the vault's
// soft-delete window, and every point's status.
type State struct {
	Machine string
	Policy  Policy
	Window  time.Duration

	m          Machine
	points     []*repo.Point // every point this reader can read, oldest first
	status     map[keys.ID]Status
	tombstones []storedTombstone
	records    []OwnerRecord
}

type storedTombstone struct {
	id keys.ID
	Tombstone
	effective time.Time
}

// Load reads machine m's policy, the vault's soft-delete window, its points
// and what forgot or brought them back, and decides every point's status
// (see the package documentation). Damaged points and tombstones are
// left out and reported in an error wrapping repo.ErrDamaged, returned with
// the state; any other error returns no state. A policy or window that the
// owner signed but that does not decode fails the load: falling back to an
// older one could forget more or purge sooner.
func Load(ctx context.Context, m Machine) (*State, error) {
	name := m.name()
	pol, err := Current(ctx, m.Root, name)
	if err != nil {
		return nil, err
	}
	loc, err := pol.Location()
	if err != nil {
		return nil, err
	}
	window, err := Window(ctx, m.Root)
	if err != nil {
		return nil, err
	}
	points, damaged := m.Area.PointsFrom(ctx, m.Cache)
	if damaged != nil && !errors.Is(damaged, repo.ErrDamaged) {
		return nil, damaged
	}
	sealed, damagedTS := m.Area.Tombstones(ctx, m.Cache)
	if damagedTS != nil && !errors.Is(damagedTS, repo.ErrDamaged) {
		return nil, damagedTS
	}
	s := &State{Machine: name, Policy: pol, Window: window, m: m, points: points}
	for _, o := range sealed {
		t, err := DecodeTombstone(o.Plain)
		if err != nil {
			damagedTS = errors.Join(damagedTS, fmt.Errorf("tombstone %s: %w: %w", o.ID.Short(), repo.ErrDamaged, err))
			continue
		}
		eff := t.Time
		if o.Modified.After(eff) {
			eff = o.Modified
		}
		s.tombstones = append(s.tombstones, storedTombstone{id: o.ID, Tombstone: t, effective: eff})
	}
	if s.records, err = ownerRecords(ctx, m.Root.MachineStorage(name), m.Root.Config, name); err != nil {
		return nil, err
	}
	s.decide(loc)
	return s, errors.Join(damaged, damagedTS)
}

// decide sets every point's status.
func (s *State) decide(loc *time.Location) {
	s.status = make(map[keys.ID]Status, len(s.points))
	byOwner := make(map[keys.ID][]*OwnerRecord)
	for i := range s.records {
		r := &s.records[i]
		for _, id := range r.Points {
			byOwner[id] = append(byOwner[id], r)
		}
	}
	// A tombstone holds for a point when the current policy (the rules of
	// the point's set), applied at the tombstone's time to the points
	// there were then, forgets the point too.
	check := retention.NewCheckerEach(retentionPoints(s.points), s.Policy.RetentionOf, loc)
	index := make(map[keys.ID]int, len(s.points))
	for i, p := range s.points {
		index[p.ID] = i
	}
	byTombstone := make(map[keys.ID][]*storedTombstone)
	for i := range s.tombstones {
		t := &s.tombstones[i]
		for _, id := range t.Points {
			if i, ok := index[id]; ok && check.Forgets(i, t.effective) {
				byTombstone[id] = append(byTombstone[id], t)
			}
		}
	}
	for _, p := range s.points {
		var st Status
		if recs := byOwner[p.ID]; len(recs) > 0 {
			last := slices.MaxFunc(recs, func(a, b *OwnerRecord) int {
				return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
			})
			if last.Action == ActionUndelete {
				st.Undeleted = true
			} else {
				st = Status{Forgotten: true, At: last.Time, ByOwner: true}
			}
		} else if ts := byTombstone[p.ID]; len(ts) > 0 {
			first := slices.MinFunc(ts, func(a, b *storedTombstone) int { return a.effective.Compare(b.effective) })
			st = Status{Forgotten: true, At: first.effective, Policy: first.Policy, Host: first.Host}
		}
		if st.Forgotten {
			st.PurgeableAt = st.At.Add(s.Window)
		}
		s.status[p.ID] = st
	}
}

func retentionPoints(points []*repo.Point) []retention.Point {
	out := make([]retention.Point, len(points))
	for i, p := range points {
		out[i] = retention.Point{ID: p.ID.String(), Set: p.Set(), Time: p.Time}
	}
	return out
}

// Status returns the status of point id, and false when this reader does
// not know the point.
func (s *State) Status(id keys.ID) (Status, bool) {
	st, ok := s.status[id]
	return st, ok
}

// All returns every point this reader can read, forgotten ones included,
// oldest first.
func (s *State) All() []*repo.Point { return s.points }

// Live returns the points that are not forgotten, oldest first: what
// listings and mounts show.
func (s *State) Live() []*repo.Point {
	var out []*repo.Point
	for _, p := range s.points {
		if !s.status[p.ID].Forgotten {
			out = append(out, p)
		}
	}
	return out
}

// Deleted returns the forgotten points with their status, oldest first.
func (s *State) Deleted() []Deleted {
	var out []Deleted
	for _, p := range s.points {
		if st := s.status[p.ID]; st.Forgotten {
			out = append(out, Deleted{Point: p, Status: st})
		}
	}
	return out
}

// Planned is what a retention would do with a live point.
type Planned struct {
	Point *repo.Point
	Keep  bool
	// Reasons name the rules that keep it; "undeleted" for a point the
	// owner brought back, which retention never forgets.
	Reasons []string
}

// Plan applies pol's retention at now to the live points, oldest first,
// as ApplyRetention would: to each backup set's points apart
// (repo.Point.Set), each set under its own rules (Policy.RetentionOf),
// forgotten points do not count, and undeleted ones are kept whatever the
// rules say.
func (s *State) Plan(pol Policy, now time.Time) ([]Planned, error) {
	loc, err := pol.Location()
	if err != nil {
		return nil, err
	}
	live := s.Live()
	out := make([]Planned, len(live))
	for i, d := range retention.ApplyEach(retentionPoints(live), pol.RetentionOf, loc, now) {
		out[i] = Planned{Point: live[i], Keep: d.Keep, Reasons: d.Reasons}
		if !d.Keep && s.status[live[i].ID].Undeleted {
			out[i] = Planned{Point: live[i], Keep: true, Reasons: []string{"undeleted"}}
		}
	}
	return out, nil
}

// Expired returns the live points that the machine's policy forgets at now,
// oldest first: what ApplyRetention would forget.
func (s *State) Expired(now time.Time) []*repo.Point {
	plan, err := s.Plan(s.Policy, now)
	if err != nil {
		return nil // Load refused such a policy
	}
	var out []*repo.Point
	for _, p := range plan {
		if !p.Keep {
			out = append(out, p.Point)
		}
	}
	return out
}

// Compare returns what next, replacing the machine's policy, would forget
// at now among the live points, oldest first: newly, the points the
// current policy keeps (for which the change needs the security PIN), and
// already, those it forgets too.
func (s *State) Compare(next Policy, now time.Time) (newly, already []*repo.Point, err error) {
	cur, err := s.Plan(s.Policy, now)
	if err != nil {
		return nil, nil, err
	}
	plan, err := s.Plan(next, now)
	if err != nil {
		return nil, nil, err
	}
	for i, p := range plan {
		switch {
		case p.Keep:
		case cur[i].Keep:
			newly = append(newly, p.Point)
		default:
			already = append(already, p.Point)
		}
	}
	return newly, already, nil
}

// ApplyRetention applies machine m's policy at now: it forgets the live
// points the policy does not keep (undeleted ones aside), by saving one
// tombstone that names them, and returns them, oldest first (none: nothing
// saved). It only creates an object, so storage credentials that may not
// delete or overwrite suffice; what it forgets stays in the vault, hidden,
// for the soft-delete window. Run it after each backup.
//
// Damaged points and tombstones do not count (which only keeps more of
// the others); they are reported in an error wrapping repo.ErrDamaged,
// returned with what was forgotten. A write-only machine (certificate
// mode) cannot read its points' times: it gets repo.ErrWriteOnly, and its
// retention is applied with the certificate's private key.
func ApplyRetention(ctx context.Context, m Machine, now time.Time) ([]*repo.Point, error) {
	s, damaged := Load(ctx, m)
	if damaged != nil && !errors.Is(damaged, repo.ErrDamaged) {
		return nil, fmt.Errorf("apply retention of %s: %w", m.name(), damaged)
	}
	forgotten, err := s.Apply(ctx, now)
	if err != nil {
		return nil, err
	}
	return forgotten, damaged
}

// Apply forgets what s.Expired(now) returns, as ApplyRetention does, and
// returns it.
func (s *State) Apply(ctx context.Context, now time.Time) ([]*repo.Point, error) {
	expired := s.Expired(now)
	if len(expired) == 0 {
		return nil, nil
	}
	t := Tombstone{Time: now.UTC(), Policy: s.Policy.Seq, Host: s.m.Host}
	for _, p := range expired {
		t.Points = append(t.Points, p.ID)
	}
	plain, err := EncodeTombstone(t)
	if err != nil {
		return nil, err
	}
	id, err := s.m.Area.SaveTombstone(ctx, plain)
	if err != nil {
		return nil, fmt.Errorf("apply retention of %s: %w", s.Machine, err)
	}
	s.tombstones = append(s.tombstones, storedTombstone{id: id, Tombstone: t, effective: t.Time})
	for _, p := range expired {
		s.status[p.ID] = Status{Forgotten: true, At: t.Time, PurgeableAt: t.Time.Add(s.Window), Policy: t.Policy, Host: t.Host}
	}
	return expired, nil
}

// Forget forgets points of machine m as the owner: an owner-signed record,
// which every reader honours. The caller has asked for the security PIN.
func Forget(ctx context.Context, m Machine, owner *keys.OwnerKeys, points []keys.ID, now time.Time) error {
	return saveOwnerRecords(ctx, m.Root, owner, m.name(), ActionForget, points, now)
}

// Undelete brings forgotten points of machine m back as the owner: an
// owner-signed record, after which they are live and retention never
// forgets them again.
func Undelete(ctx context.Context, m Machine, owner *keys.OwnerKeys, points []keys.ID, now time.Time) error {
	return saveOwnerRecords(ctx, m.Root, owner, m.name(), ActionUndelete, points, now)
}

// Purge is what prune may delete of a machine's area at some time.
type Purge struct {
	// Points are the forgotten points whose soft-delete window has passed,
	// oldest first. Delete their objects (repo.Area.DeleteObject) before the
	// records below; the data only they reference may go with them.
	Points []*repo.Point
	// Records are the tombstones and owner records (names in the area)
	// that name only points being purged or gone already. Delete them
	// after the points: a record deleted first would bring its points
	// back.
	Records []string
}

// Purgeable returns what may be purged at now. Points this reader cannot
// read (another certificate's) are never purged, and records naming them
// stay.
func (s *State) Purgeable(ctx context.Context, now time.Time) (Purge, error) {
	var out Purge
	purged := make(map[keys.ID]bool)
	for _, p := range s.points {
		if st := s.status[p.ID]; st.Forgotten && !now.Before(st.PurgeableAt) {
			out.Points = append(out.Points, p)
			purged[p.ID] = true
		}
	}
	// Points in the storage, readable by this reader or not.
	ids, err := s.m.Area.ObjectIDs(ctx, repo.PointsPrefix)
	if err != nil {
		return Purge{}, err
	}
	present := make(map[keys.ID]bool, len(ids))
	for _, id := range ids {
		present[id] = true
	}
	obsolete := func(ids []keys.ID) bool {
		for _, id := range ids {
			if present[id] && !purged[id] {
				return false
			}
		}
		return true
	}
	for _, t := range s.tombstones {
		if obsolete(t.Points) {
			out.Records = append(out.Records, repo.TombstoneName(t.id))
		}
	}
	for _, r := range s.records {
		if obsolete(r.Points) {
			out.Records = append(out.Records, ownerPrefix+r.ID)
		}
	}
	return out, nil
}

// Change is what replacing a machine's policy Current by Next does at a
// time: the retention rules it lowers and, when the machine's points can
// be read, which of its live points it forgets.
type Change struct {
	Current, Next Policy
	// Lowered names the rules Next lowers (Policy.Shortens).
	Lowered []string
	// Read says the points were read: Live, Newly and Already are known.
	Read bool
	Live int
	// Newly are the live points Next forgets that Current keeps, Already
	// those both forget, oldest first.
	Newly, Already []*repo.Point
}

// PlanChange returns what replacing cur by next does at now; s is the
// machine's state, nil when its points cannot be read (certificate mode
// without the private key).
func PlanChange(s *State, cur, next Policy, now time.Time) (Change, error) {
	c := Change{Current: cur, Next: next, Lowered: cur.Shortens(next)}
	if s == nil {
		return c, nil
	}
	var err error
	if c.Newly, c.Already, err = s.Compare(next, now); err != nil {
		return c, err
	}
	c.Read, c.Live = true, len(s.Live())
	return c, nil
}

package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/azfs/azfs/repo"
)

// PointSummary is a point as 'azfs points --json' lists it, and as every
// command that lists points does (forget, undelete, policy set and apply;
// docs/cli.md).
type PointSummary struct {
	ID      string    `json:"id"`
	Machine string    `json:"machine"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
	// Set is the backup set's name; empty for the set of the paths.
	Set string `json:"set"`
	// Tags are the point's tags, sorted; [] for none.
	Tags    []string `json:"tags"`
	Files   uint64   `json:"files"`
	Bytes   uint64   `json:"bytes"`
	Partial bool     `json:"partial"`
	// ChangedWhileRead counts the files stored as read while they kept
	// changing (marked changed during backup).
	ChangedWhileRead uint64 `json:"changed_while_read"`
}

// Summarize returns p's summary.
func Summarize(p *repo.Point) PointSummary {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return PointSummary{p.ID.String(), p.Machine, p.Time, p.Paths, p.SetName, tags, p.Stats.Files, p.Stats.Bytes, p.Partial, p.Stats.ChangedWhileRead}
}

// Summaries returns the summaries of points, in their order; [] for none.
func Summaries(points []*repo.Point) []PointSummary {
	out := make([]PointSummary, 0, len(points))
	for _, p := range points {
		out = append(out, Summarize(p))
	}
	return out
}

// LiveMatching returns the live points that filter matches, oldest
// first; with set not nil, only those of the backup set named *set ("":
// the set of its paths): what 'azfs points' lists.
func (s *State) LiveMatching(filter repo.TagFilter, set *string) []*repo.Point {
	points := filter.Select(s.Live())
	if set != nil {
		points = slices.DeleteFunc(points, func(p *repo.Point) bool { return p.SetName != *set })
	}
	return points
}

// By names who forgot a point: "owner", or "policy N" for the retention
// of the owner's policy number N.
func (st Status) By() string {
	if st.ByOwner {
		return "owner"
	}
	return fmt.Sprintf("policy %d", st.Policy)
}

// DeletedSummary is a forgotten point as 'azfs points --deleted --json'
// lists it: its summary, when it was forgotten and by whom, and when prune
// may purge it.
type DeletedSummary struct {
	PointSummary
	Forgotten    time.Time `json:"forgotten"`
	By           string    `json:"by"` // "owner", or "policy N"
	Purgeable    time.Time `json:"purgeable"`
	PurgeableNow bool      `json:"purgeable_now"`
	// Point is the point summarized.
	Point *repo.Point `json:"-"`
}

// DeletedMatching returns the forgotten points that filter matches,
// oldest first, as at now.
func (s *State) DeletedMatching(filter repo.TagFilter, now time.Time) []DeletedSummary {
	out := []DeletedSummary{}
	for _, d := range s.Deleted() {
		if !filter.Match(d.Point) {
			continue
		}
		st := d.Status
		out = append(out, DeletedSummary{Summarize(d.Point), st.At, st.By(), st.PurgeableAt, !now.Before(st.PurgeableAt), d.Point})
	}
	return out
}

// RetentionRun is one application of a machine's retention ('azfs policy
// apply', and a policy set that takes effect at once); its JSON is 'azfs
// policy apply --json'.
type RetentionRun struct {
	Machine    string `json:"machine"`
	Policy     int    `json:"policy"`    // its number; 0 for the default
	Retention  string `json:"retention"` // Policy.DescribeRetention
	DryRun     bool   `json:"dry_run"`
	LivePoints int    `json:"live_points"` // before
	// Forgotten are the points forgotten; with DryRun, those to be.
	Forgotten []PointSummary `json:"forgotten"`
	// RecoverableUntil is when the points forgotten become purgeable
	// ('azfs undelete' until then); zero when none were.
	RecoverableUntil time.Time `json:"recoverable_until,omitzero"`
	// Points are the points Forgotten summarizes, oldest first.
	Points []*repo.Point `json:"-"`
}

// RunRetention applies the machine's policy at now, as Apply does, or
// with dryRun only says what it would forget.
func (s *State) RunRetention(ctx context.Context, now time.Time, dryRun bool) (RetentionRun, error) {
	run := RetentionRun{Machine: s.Machine, Policy: s.Policy.Seq, Retention: s.Policy.DescribeRetention(), DryRun: dryRun,
		LivePoints: len(s.Live()), Forgotten: []PointSummary{}}
	var err error
	if dryRun {
		run.Points = s.Expired(now)
	} else if run.Points, err = s.Apply(ctx, now); err != nil {
		return run, err
	}
	run.Forgotten = Summaries(run.Points)
	if !dryRun && len(run.Points) > 0 {
		run.RecoverableUntil = now.Add(s.Window)
	}
	return run, nil
}

// ChangeReport is what 'azfs policy set' asks for and does: the policy
// before and after (nil: the request changes only the soft-delete
// window), what the change forgets, and what applying it forgot. Its JSON
// is 'azfs policy set --json'.
type ChangeReport struct {
	Machine string   `json:"machine,omitempty"`
	Set     string   `json:"set,omitempty"` // the set whose rules changed
	Current *View    `json:"current"`
	New     *View    `json:"new"`
	Lowered []string `json:"lowered"` // the retention rules the change lowers
	// LivePoints, Forgets and ForgetsAlso are null, [] and 0 when the
	// machine's points cannot be read here (certificate mode).
	LivePoints  *int           `json:"live_points"`
	Forgets     []PointSummary `json:"forgets"` // live points the new policy forgets that the current one keeps
	ForgetsAlso int            `json:"forgets_also"`
	// SoftDelete is the vault's window before and after; nil: unchanged.
	SoftDelete *WindowReport `json:"soft_delete"`
	NeedsPIN   bool          `json:"needs_pin"`
	DryRun     bool          `json:"dry_run"`
	// Saved is the new policy's number; 0: none saved (yet).
	Saved int `json:"saved"`
	// Forgotten are the points applying the new policy forgot.
	Forgotten []PointSummary `json:"forgotten"`
}

// WindowReport is a change of the vault's soft-delete window, in seconds.
type WindowReport struct {
	CurrentSeconds int64 `json:"current_seconds"`
	NewSeconds     int64 `json:"new_seconds"`
}

// Report returns r as a ChangeReport of the rules of set ("": the default
// rules) before it is committed, the policies shown under the vault's
// current soft-delete window with their next runs after now.
func (r Request) Report(set string, window time.Duration, dryRun bool, now time.Time) (ChangeReport, error) {
	out := ChangeReport{Set: set, DryRun: dryRun, NeedsPIN: r.NeedsPIN(), Lowered: []string{}, Forgets: []PointSummary{}, Forgotten: []PointSummary{}}
	if w := r.Window; w != nil {
		out.SoftDelete = &WindowReport{int64(w.Current / time.Second), int64(w.Next / time.Second)}
	}
	c := r.Change
	if c == nil {
		return out, nil
	}
	out.Machine = c.Next.Machine
	for _, p := range []struct {
		pol Policy
		to  **View
	}{{c.Current, &out.Current}, {c.Next, &out.New}} {
		v, err := NewView(p.pol, window, now)
		if err != nil {
			return out, err
		}
		*p.to = &v
	}
	out.Lowered = append(out.Lowered, c.Lowered...)
	if c.Read {
		out.LivePoints = new(int)
		*out.LivePoints = c.Live
		out.Forgets, out.ForgetsAlso = Summaries(c.Newly), len(c.Already)
	}
	return out, nil
}

// LastPoint is a machine's (or a set's) newest point, as 'azfs status
// --json' and 'azfs machines --json' give it.
type LastPoint struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Partial bool      `json:"partial"`
	// Source is "vault", or "this host" when the machine cannot read its
	// points and this is the last point a backup on this host committed.
	Source string `json:"source"`
}

// VaultPoint returns p as a LastPoint read from the vault.
func VaultPoint(p *repo.Point) *LastPoint {
	return &LastPoint{ID: p.ID.String(), Time: p.Time, Partial: p.Partial, Source: "vault"}
}

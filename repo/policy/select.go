package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

// SelectToForget returns the live points that filter matches and sels
// name: ID prefixes, dates, times or latest (repo.SelectPoint, times in
// loc), each point once, in the order given; without sels, every live
// point filter matches (a filter that matches none is an error, as
// repo.TagFilter.Matching says). A selector that names a point forgotten
// already says so.
func (s *State) SelectToForget(filter repo.TagFilter, sels []string, loc *time.Location) ([]*repo.Point, error) {
	live, err := filter.Matching(s.Live())
	if err != nil || len(sels) == 0 {
		return live, err
	}
	deleted := s.deletedPoints()
	return selectPoints(live, sels, loc, func(sel string) error {
		if p, err := repo.SelectPoint(deleted, sel, loc); err == nil {
			return fmt.Errorf("point %s of %s is forgotten already ('azfs points --deleted')", p.ID.Short(), s.Machine)
		}
		return nil
	})
}

// ForgetSelected forgets points of the machine as its owner (Forget), once
// spendPIN has spent the owner's security PIN, which forgetting always
// needs: a refused PIN forgets nothing. It returns when the points become
// purgeable ('azfs undelete' brings them back until then).
func (s *State) ForgetSelected(ctx context.Context, owner *keys.OwnerKeys, points []*repo.Point, spendPIN func() error, now time.Time) (time.Time, error) {
	if err := spendPIN(); err != nil {
		return time.Time{}, err
	}
	if err := Forget(ctx, s.m, owner, IDs(points), now); err != nil {
		return time.Time{}, err
	}
	return now.Add(s.Window), nil
}

// SelectToUndelete returns the forgotten points sels name, as
// SelectToForget selects. A selector that names a live point says it is
// not forgotten.
func (s *State) SelectToUndelete(sels []string, loc *time.Location) ([]*repo.Point, error) {
	live := s.Live()
	return selectPoints(s.deletedPoints(), sels, loc, func(sel string) error {
		if p, err := repo.SelectPoint(live, sel, loc); err == nil {
			return fmt.Errorf("point %s of %s is not forgotten", p.ID.Short(), s.Machine)
		}
		return nil
	})
}

func (s *State) deletedPoints() []*repo.Point {
	var out []*repo.Point
	for _, d := range s.Deleted() {
		out = append(out, d.Point)
	}
	return out
}

// selectPoints resolves sels among points, each point once, in the order
// given. A selector that matches nothing there is explained by other when
// it returns an error (a point in the other list), else by the selection's
// own error.
func selectPoints(points []*repo.Point, sels []string, loc *time.Location, other func(sel string) error) ([]*repo.Point, error) {
	var out []*repo.Point
	seen := make(map[keys.ID]bool)
	for _, sel := range sels {
		p, err := repo.SelectPoint(points, sel, loc)
		if err != nil {
			if oerr := other(sel); oerr != nil {
				return nil, oerr
			}
			return nil, err
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// IDs returns the IDs of points, in their order.
func IDs(points []*repo.Point) []keys.ID {
	out := make([]keys.ID, len(points))
	for i, p := range points {
		out[i] = p.ID
	}
	return out
}

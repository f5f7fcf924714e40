// Package rollback notices a storage that rolls a machine area back: one
// that hides or deletes the newest recovery points, so that readers see an
// older vault than the one they saw before.
//
// Nothing in the vault can show that: the storage serves every object, and
// one that withholds the newest points is consistent with itself. So each
// host remembers, per machine area, the newest point it has seen the area
// show (a Mark, kept in the host's state directory), and compares every
// later listing with it. Points are only ever removed from storage by a
// prune purging forgotten points past the soft-delete window, and
// retention never forgets a machine's newest point, so the marked point
// missing while no point at least as new is there means the storage lost
// or hides it. Once noticed, the mark stays on the missing point (it does
// not move to the points a rolled-back vault shows, nor to the ones later
// backups add to it), so every later command reports it again until the
// point is back or someone accepts the loss.
//
// What it cannot notice: points this host never saw (a host that lists
// rarely notices only the loss of what it listed), and the loss of older
// points once newer ones are there, which a purge also causes. Commands
// update the mark without a lock, so two at once can set it back to the
// older point one of them saw: that weakens the check, and never makes it
// report a point that is there.
package rollback

import (
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

// ErrRolledBack reports that an area lacks a point this host saw it show.
var ErrRolledBack = errors.New("the vault has lost recovery points this host saw (rolled back or deleted by the storage)")

// Mark is the newest point a host has seen a machine area show.
type Mark struct {
	Point keys.ID   `json:"point"`
	Taken time.Time `json:"taken"` // the point's time
	Seen  time.Time `json:"seen"`  // when this host first saw it
	// Missing is when this host first found the point missing while no
	// point at least as new was there; zero while it is not.
	Missing time.Time `json:"missing,omitzero"`
}

// IsZero reports whether m marks no point (the host has seen none).
func (m Mark) IsZero() bool { return m.Point.IsZero() }

// RolledBackError is the error Check returns: the marked point is gone.
type RolledBackError struct {
	Mark Mark
}

func (e *RolledBackError) Error() string {
	return fmt.Sprintf("point %s (%s), seen here on %s, is missing from the vault, and no newer point is there: the storage has rolled back or deleted recovery points",
		e.Mark.Point.Short(), e.Mark.Taken.Local().Format("2006-01-02 15:04:05"), e.Mark.Seen.Local().Format("2006-01-02"))
}

func (e *RolledBackError) Unwrap() error { return ErrRolledBack }

// Check compares points, every point a machine area shows (forgotten ones
// included), with m, the mark kept from earlier listings, at now. It
// returns the mark to keep, and an error wrapping ErrRolledBack when the
// marked point is missing and no point at least as new is there, or when
// it went missing earlier and has not come back.
func Check(m Mark, points []*repo.Point, now time.Time) (Mark, error) {
	newest := Newest(points)
	switch {
	case m.IsZero():
		if newest == nil {
			return m, nil
		}
		return markOf(newest, now), nil
	case contains(points, m.Point):
		if newer(newest, m) {
			return markOf(newest, now), nil
		}
		m.Missing = time.Time{}
		return m, nil
	case m.Missing.IsZero() && newest != nil && newer(newest, m):
		// Newer points and the marked one gone: a purge can do that (the
		// owner forgot it and its window passed), so it is not reported.
		return markOf(newest, now), nil
	}
	if m.Missing.IsZero() {
		m.Missing = now.UTC()
	}
	return m, &RolledBackError{Mark: m}
}

// Committed returns the mark to keep after this host committed p. A mark
// on a missing point stays: a backup into a rolled-back vault does not
// undo the loss.
func Committed(m Mark, p *repo.Point, now time.Time) Mark {
	if !m.Missing.IsZero() || !newer(p, m) {
		return m
	}
	return markOf(p, now)
}

// Newest returns the newest of points (by time, then ID), or nil.
func Newest(points []*repo.Point) *repo.Point {
	var n *repo.Point
	for _, p := range points {
		if n == nil || p.Time.After(n.Time) || p.Time.Equal(n.Time) && p.ID.String() > n.ID.String() {
			n = p
		}
	}
	return n
}

// newer reports whether p is newer than the marked point.
func newer(p *repo.Point, m Mark) bool {
	if p == nil {
		return false
	}
	return p.Time.After(m.Taken) || p.Time.Equal(m.Taken) && p.ID.String() > m.Point.String()
}

func contains(points []*repo.Point, id keys.ID) bool {
	for _, p := range points {
		if p.ID == id {
			return true
		}
	}
	return false
}

func markOf(p *repo.Point, now time.Time) Mark {
	return Mark{Point: p.ID, Taken: p.Time.UTC(), Seen: now.UTC()}
}

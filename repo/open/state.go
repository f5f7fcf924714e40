package open

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/azfs/azfs/cache/objcache"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/rollback"
)

// PolicyMachine returns the machine area o has open as package policy
// works on it, with cache (may be nil).
func (o *Opened) PolicyMachine(cache repo.ObjectCache) policy.Machine {
	return policy.Machine{Root: o.VaultRoot(), Area: o.Area, Cache: cache, Host: hoststate.Hostname()}
}

// State reads what became of the points of the machine area o has open
// (package policy): its policy, and which points are live or forgotten.
// Sealed points and tombstones are kept between commands in
// <cache dir>/<area id>/objects-<machine> (package cache/objcache), so that
// listing thousands of points reads one local file, not thousands of
// objects; what the file holds is authenticated like the storage's copy.
// Damaged points are left out and reported through warn, and so is an area
// that has lost points this host saw it show (see NoticeRollback).
func (o *Opened) State(ctx context.Context, warn func(msg string)) (*policy.State, error) {
	s, err := o.loadState(ctx, warn)
	if err != nil {
		return nil, err
	}
	if err := o.NoticeRollback(o.Machine, s.All(), warn); err != nil {
		warn(fmt.Sprintf("machine %s: %s", o.Machine, err))
	}
	return s, nil
}

// StateToChange is State for commands that forget or purge points: they
// refuse, with an error wrapping rollback.ErrRolledBack, to act on an area
// that has lost points this host saw it show, since what they would decide
// from an older vault is wrong.
func (o *Opened) StateToChange(ctx context.Context, warn func(msg string)) (*policy.State, error) {
	s, err := o.loadState(ctx, warn)
	if err != nil {
		return nil, err
	}
	if err := o.NoticeRollback(o.Machine, s.All(), warn); err != nil {
		return nil, fmt.Errorf("%w; nothing forgotten or purged", err)
	}
	return s, nil
}

func (o *Opened) loadState(ctx context.Context, warn func(msg string)) (*policy.State, error) {
	var cache *objcache.Cache
	if dir, err := keyring.CacheDir(); err == nil {
		cache = objcache.Open(filepath.Join(dir, o.Area.ID(), "objects-"+o.Machine))
	}
	m := o.PolicyMachine(nil)
	if cache != nil {
		m.Cache = cache
	}
	s, err := policy.Load(ctx, m)
	if cache != nil {
		if cerr := cache.Close(); cerr != nil {
			warn("cannot keep points in the cache; they will be read from the vault again: " + cerr.Error())
		}
	}
	if err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return nil, err
		}
		warn("some recovery points or tombstones are damaged and not shown (run 'azfs check'): " + err.Error())
	}
	return s, nil
}

// StateDir returns this host's state directory of the machine o has open
// (package hoststate): its locks, settings and the newest point seen.
func (o *Opened) StateDir() (hoststate.Dir, error) { return o.StateDirOf(o.Machine) }

// StateDirOf returns this host's state directory of machine in o's vault.
func (o *Opened) StateDirOf(machine string) (hoststate.Dir, error) {
	configDir, err := keyring.ConfigDir()
	if err != nil {
		return "", err
	}
	return hoststate.StateDir(configDir, o.Root.ID, machine), nil
}

// NoticeRollback compares points, every point the area of machine shows
// (forgotten ones included), with the newest point this host has seen it
// show, kept in the machine's state directory, and keeps the newest. It
// returns an error wrapping rollback.ErrRolledBack when that point is
// missing and nothing at least as new is there, or went missing earlier and
// is not back (package rollback). Failing to read or keep the record is
// not an error: it only weakens the check, and is reported through warn.
func (o *Opened) NoticeRollback(machine string, points []*repo.Point, warn func(msg string)) error {
	return o.updateSeen(machine, warn, func(m rollback.Mark) (rollback.Mark, error) {
		return rollback.Check(m, points, time.Now())
	})
}

// NoteCommitted records p, a point this host just committed, as the
// newest point seen (unless the area has been found rolled back).
func (o *Opened) NoteCommitted(p *repo.Point, warn func(msg string)) {
	_ = o.updateSeen(o.Machine, warn, func(m rollback.Mark) (rollback.Mark, error) {
		return rollback.Committed(m, p, time.Now()), nil
	})
}

// ForgetSeen drops this host's record of the newest point seen in the area
// o has open, ending the reports of a point found missing (for when the
// owner forgot it and a prune purged it, or its loss is known and
// accepted); the next listing starts the record again.
func (o *Opened) ForgetSeen() error {
	dir, err := o.StateDir()
	if err != nil {
		return err
	}
	return dir.RemoveSeen()
}

func (o *Opened) updateSeen(machine string, warn func(msg string), next func(rollback.Mark) (rollback.Mark, error)) error {
	dir, err := o.StateDirOf(machine)
	if err != nil {
		warn("cannot check the vault for a rollback: " + err.Error())
		return nil
	}
	m, err := dir.LoadSeen()
	if err != nil {
		warn(err.Error() + "; starting again from the points the vault shows now")
	}
	kept, rolledBack := next(m)
	if kept != m {
		if err := dir.SaveSeen(kept); err != nil {
			warn("cannot record the newest point seen, which checks the vault for a rollback: " + err.Error())
		}
	}
	return rolledBack
}

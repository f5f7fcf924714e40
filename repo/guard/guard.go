// Package guard is how backups and prunes of one machine's area run at
// once (format.md §13.4): prune's owner-signed marks (the packs it will
// delete after a safety margin) and the backups' keep objects (packs a
// running backup already depends on), their codecs, and Guard, a backup
// run's side, which lists the marks as the run goes. Package prune writes
// marks and honours keeps; package backup runs a Guard. Neither imports the
// other.
package guard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
)

// Defaults of the guard (format.md §13.4). A prune's safety margin must be
// at least twice the tolerance (prune.MinMargin).
const (
	// DefaultEvery is how often a backup lists the marks.
	DefaultEvery = time.Minute
	// DefaultTolerance is the longest a backup goes on without a
	// completed listing of the marks (since the start of the one before).
	DefaultTolerance = 5 * time.Minute
)

// ErrLostMarks reports a backup that stopped, or a point committed, without
// the certainty that a concurrent prune keeps the packs it needs.
var ErrLostMarks = errors.New("lost track of the vault's prune marks")

// Options configure a Guard; zero fields take the defaults.
type Options struct {
	Every     time.Duration // listing interval (DefaultEvery)
	Tolerance time.Duration // see DefaultTolerance; a prune's margin must be at least twice it
}

// Guard protects one backup run from concurrent prunes of its machine's
// area. It lists the area's marks when the run starts and then every
// Every: the run reuses no blob of a pack a mark names (it stores such
// blobs again), and for every pack the run already depends on (blobs it
// reused, packs it uploaded) that a newly seen mark names it writes a keep
// object, which the prune honours. A listing that completes later than
// Tolerance after the start of the one before stops the run; so does a
// mark naming packs the run depends on seen later than half that mark's
// margin. Commit lists once more and commits the point within Tolerance.
// It implements repo.PackGuard.
type Guard struct {
	v    *repo.Area
	opts Options
	fail func(error) // stops the run

	mu     sync.Mutex
	seen   map[MarkID]bool
	marked map[keys.ID]bool // packs of seen marks (and gone packs) the run must not start to depend on
	deps   map[keys.ID]bool // packs the run depends on
	last   time.Time        // start of the last completed listing; zero before the first
	// newMark is set when a listing after the first found a mark of the
	// area: a prune ran while the run did, and Commit confirms the deps.
	newMark bool

	refreshMu sync.Mutex // one listing at a time
	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
}

var _ repo.PackGuard = (*Guard)(nil)

// Start lists the marks of v's area and starts listing them every
// opts.Every until Stop or Commit. fail is called, once, with an error
// wrapping ErrLostMarks when the run must stop.
func Start(ctx context.Context, v *repo.Area, opts Options, fail func(error)) (*Guard, error) {
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = DefaultTolerance
	}
	g := &Guard{
		v: v, opts: opts,
		seen: make(map[MarkID]bool), marked: make(map[keys.ID]bool), deps: make(map[keys.ID]bool),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	var once sync.Once
	g.fail = func(err error) { once.Do(func() { fail(err) }) }
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	go g.loop(ctx)
	return g, nil
}

func (g *Guard) loop(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(g.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A listing that fails is tried again at the next tick: only its
		// lateness matters, which the next completed listing measures.
		if err := g.refresh(ctx); errors.Is(err, ErrLostMarks) {
			g.fail(err)
			return
		}
	}
}

// Stop ends the periodic listings.
func (g *Guard) Stop() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// Depend reports whether the run may depend on pack (reuse blobs stored in
// it, or upload a pack of that name, whose bytes may be stored already), and
// records that it does when it may: not when a mark the run has seen names
// it, unless the run depended on it before it saw the mark.
func (g *Guard) Depend(pack keys.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deps[pack] {
		return true // the common case, once per reused blob: one lookup
	}
	if g.marked[pack] {
		return false
	}
	g.deps[pack] = true
	return true
}

// Skip reports whether a mark the run has seen names pack: such an orphan
// is not adopted.
func (g *Guard) Skip(pack keys.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.marked[pack]
}

// Avoid makes the run store again the blobs of packs the index names but
// the storage no longer holds.
func (g *Guard) Avoid(packs []keys.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range packs {
		if !g.deps[p] {
			g.marked[p] = true
		}
	}
}

// Commit lists the marks once more, then calls save (which commits the
// point), and fails with ErrLostMarks if save returned later than Tolerance
// after that listing started: the point is committed, but a prune may have
// deleted data it needs (azfs check tells). When a mark appeared while the
// run went on, it first confirms that every pack the run depends on is
// still stored, and fails with ErrLostMarks, without calling save, when one is
// gone. The guard is stopped.
func (g *Guard) Commit(ctx context.Context, save func(context.Context) error) error {
	g.Stop()
	if err := g.refresh(ctx); err != nil {
		return err
	}
	start := g.last
	if err := g.confirm(ctx); err != nil {
		return err
	}
	if err := save(ctx); err != nil {
		return err
	}
	if d := Elapsed(start, time.Now()); d > g.opts.Tolerance {
		return fmt.Errorf("%w: the point was committed %s after the last listing of the marks (more than %s): a prune may have deleted data it needs; run azfs check", ErrLostMarks, d.Round(time.Second), g.opts.Tolerance)
	}
	return nil
}

// confirm lists the packs when a mark appeared while the run went on, and
// fails with ErrLostMarks when a pack the run depends on is gone. Prunes that
// keep the margin (at least MinMargin) never delete one; a prune with a
// shorter margin, which its owner asserted no backup runs beside, may have
// deleted one, and removed its mark, between two listings. A mark seen
// later is the sign that prunes run: the cost, one listing of the packs
// (as the run made when it started), is paid only then.
func (g *Guard) confirm(ctx context.Context) error {
	g.mu.Lock()
	var gone map[keys.ID]bool
	if g.newMark {
		gone = maps.Clone(g.deps)
	}
	g.mu.Unlock()
	if gone == nil {
		return nil
	}
	err := g.v.PackSizes(ctx, func(id keys.ID, _ int64) { delete(gone, id) })
	if err != nil {
		return fmt.Errorf("confirm the packs this backup uses: %w", err)
	}
	if len(gone) == 0 {
		return nil
	}
	ids := SortPacks(slices.Collect(maps.Keys(gone)))
	return fmt.Errorf("%w: a prune deleted %d packs this backup uses (%s) while it ran: no point committed; back up again, which stores their data again", ErrLostMarks, len(ids), packList(ids))
}

// packList names up to 3 packs by their short IDs.
func packList(ids []keys.ID) string {
	var names []string
	for _, id := range ids[:min(len(ids), 3)] {
		names = append(names, id.Short())
	}
	s := strings.Join(names, ", ")
	if len(ids) > 3 {
		s += ", …"
	}
	return s
}

// Elapsed is the time from a to b on the monotonic clock or the wall
// clock, whichever says more: the monotonic clock stops while a machine
// sleeps, the wall clock may be stepped back.
func Elapsed(a, b time.Time) time.Duration {
	return max(b.Sub(a), b.Round(0).Sub(a.Round(0)))
}

// refresh lists the marks and answers the new ones. It fails with ErrLostMarks
// when the run can no longer be sure its packs are kept, and with other
// errors when the listing failed.
func (g *Guard) refresh(ctx context.Context) error {
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()
	start := time.Now()
	st := g.v.Storage()
	var fresh []MarkID
	err := st.List(ctx, MarksPrefix, func(fi storage.Info) error {
		if id, ok := ParseMarkID(path.Base(fi.Name)); ok && fi.Name == MarksPrefix+id.String() {
			g.mu.Lock()
			if !g.seen[id] {
				fresh = append(fresh, id)
			}
			g.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list prune marks: %w", err)
	}
	var lateness time.Duration // the smallest half margin of a mark that needs a keep
	for _, id := range fresh {
		b, err := st.Load(ctx, MarksPrefix+id.String(), 0, -1)
		if errors.Is(err, storage.ErrNotFound) {
			// Listed and then gone: a mark that was never acted on (not
			// signed by the owner, or saved too slowly), or one a prune
			// finished with, whose packs are gone from the index already
			// when this is the first listing. Later listings cannot first
			// see a finished mark as long as they keep within the
			// tolerance, which is checked below.
			continue
		}
		if err != nil {
			return fmt.Errorf("read prune mark %s: %w", id, err)
		}
		m, err := DecodeMark(b)
		g.mu.Lock()
		g.seen[id] = true
		var keep []keys.ID
		if err == nil && m.Area == g.v.ID() {
			g.newMark = g.newMark || !g.last.IsZero()
			for _, p := range m.Packs {
				if g.deps[p] {
					keep = append(keep, p)
				} else {
					g.marked[p] = true
				}
			}
		}
		g.mu.Unlock()
		// A mark that does not decode is one no prune acts on.
		if len(keep) == 0 {
			continue
		}
		if err := saveKeep(ctx, st, id, keep); err != nil {
			return err
		}
		if lateness == 0 || m.Margin/2 < lateness {
			lateness = max(m.Margin/2, 1)
		}
	}
	end := time.Now()
	if !g.last.IsZero() {
		d := Elapsed(g.last, end)
		if d > g.opts.Tolerance {
			return fmt.Errorf("%w: %s without a completed listing (more than %s): stopping rather than committing a point whose data a prune may have deleted", ErrLostMarks, d.Round(time.Second), g.opts.Tolerance)
		}
		if lateness > 0 && d >= lateness {
			return fmt.Errorf("%w: a prune mark naming packs this backup uses was answered %s after the listing before (its margin allows %s)", ErrLostMarks, d.Round(time.Millisecond), lateness)
		}
	}
	g.last = start
	return nil
}

// saveKeep stores a keep object for mark id under a name of its own.
func saveKeep(ctx context.Context, st storage.Storage, id MarkID, packs []keys.ID) error {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("keep packs: %w", err)
	}
	name := KeepsPrefix + id.String() + "/" + hex.EncodeToString(raw[:])
	if err := st.Save(ctx, name, EncodeKeep(id, SortPacks(packs))); err != nil {
		return fmt.Errorf("keep packs for prune mark %s: %w", id, err)
	}
	return nil
}

// IsKeep reports whether name is a keep object of mark id.
func IsKeep(name string, id MarkID) bool {
	rest, ok := strings.CutPrefix(name, KeepsPrefix+id.String()+"/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

package open

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/restore"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
)

// Reading is a machine area opened for reading its points, as azmount
// and the commands that read points without mounting them (restore, ls,
// find, diff, dump) need it: the index loaded, orphan packs indexed in
// memory, and the live points known.
type Reading struct {
	*Opened
	State *policy.State
	// Live are the points Point selects among: the live ones, which the
	// caller may narrow (azmount --tag).
	Live []*repo.Point
	warn func(msg string) // ReadOptions.Warn
}

// ReadOptions tune ForReading.
type ReadOptions struct {
	// SegmentBytes is the memory for the pack segments the small blobs of
	// a vault over a network are read through (default 16 MiB: four
	// segments).
	SegmentBytes int64
	// Prepare, when set, is called on the opened area before anything of
	// it is read (azmount hands the vault its disk cache there).
	Prepare func(*Opened)
	// Warn receives what is reported and left out: damaged points, index
	// files, a storage that lost points.
	Warn func(msg string)
}

// ForReading opens the area t names for reading its points: the root and
// the area ([Machine]: the keyring's keys, a passphrase, a credentials file
// or a private key, restore-only credentials included), small blobs of a
// vault over a network read by the 4 MiB pack segment, the points' state
// (forgotten points are not served), the index (damaged index files
// reported and their packs indexed from their trailers) and the orphan
// packs, in memory only. Damage reads find is noted in the index; the
// caller saves it (Area.SaveDamage) when it is done, or asks for it to be
// saved as found (Area.SaveDamageAsFound).
func ForReading(ctx context.Context, t Target, opts ReadOptions) (*Reading, error) {
	o, err := Machine(ctx, t)
	if err != nil {
		return nil, err
	}
	if !location.IsLocal(o.Location) {
		// Requests are dear over a network (a blob container, an SMB
		// share): small blobs come by the 4 MiB of their pack, and the
		// blobs around the one a reader wants with it.
		if opts.SegmentBytes <= 0 {
			opts.SegmentBytes = 16 << 20
		}
		o.Area.FetchPackSegments(opts.SegmentBytes)
	}
	if opts.Prepare != nil {
		opts.Prepare(o)
	}
	state, err := o.State(ctx, opts.Warn)
	if err != nil {
		return nil, err
	}
	r := &Reading{Opened: o, State: state, Live: state.Live(), warn: opts.Warn}
	if err := r.Area.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return nil, err
		}
		opts.Warn("damaged index files; indexing their packs from the pack trailers: " + err.Error())
	}
	if _, err := r.Area.AdoptOrphanPacks(ctx, false); err != nil {
		return nil, err
	}
	return r, nil
}

// Point selects one live point by a selector (a date: its last point, a
// time, an ID prefix, or "latest"; see repo.SelectPoint), in the local
// time zone. A selector naming a forgotten point says how the owner brings
// it back.
func (r *Reading) Point(sel string) (*repo.Point, error) {
	p, err := repo.SelectPoint(r.Live, sel, time.Local)
	if err != nil {
		for _, d := range r.State.Deleted() {
			if len(sel) >= 4 && strings.HasPrefix(d.Point.ID.String(), strings.ToLower(sel)) {
				return nil, fmt.Errorf("point %s is forgotten (soft-deleted): the owner brings it back with 'azfs undelete %s'", d.Point.ID.Short(), d.Point.ID.Short())
			}
		}
		return nil, err
	}
	return p, nil
}

// Points returns the points a command reads: the one sel selects (Point),
// or with all every live point, newest first.
func (r *Reading) Points(sel string, all bool) ([]*repo.Point, error) {
	if !all {
		p, err := r.Point(sel)
		if err != nil {
			return nil, err
		}
		return []*repo.Point{p}, nil
	}
	points := slices.Clone(r.Live)
	slices.Reverse(points)
	return points, nil
}

// ReadPoint opens the area t names for reading ([ForReading]) and selects
// the point sel names in it ([Reading.Point]): what 'azfs restore', 'ls',
// 'dump' and 'image mount' read.
func ReadPoint(ctx context.Context, t Target, opts ReadOptions, sel string) (*Reading, *repo.Point, error) {
	r, err := ForReading(ctx, t, opts)
	if err != nil {
		return nil, nil, err
	}
	p, err := r.Point(sel)
	if err != nil {
		return nil, nil, err
	}
	return r, p, nil
}

// blobRestoreWorkers is the least number of pack spans a restore from a
// blob vault fetches at once: each fetch is a round trip, and more of them
// hide the latency.
const blobRestoreWorkers = 32

// Restore writes the point p, or its path, into dir (restore.Run, with
// opts; from a blob vault with at least 32 fetches at once, 4 per core,
// unless opts.Workers says), then remembers what the reads found damaged
// ([Reading.SaveDamage]).
func (r *Reading) Restore(ctx context.Context, p *repo.Point, path, dir string, opts restore.Options) (restore.Result, error) {
	if opts.Workers == 0 && location.IsBlob(r.Location) {
		opts.Workers = max(blobRestoreWorkers, 4*runtime.GOMAXPROCS(0))
	}
	res, err := restore.Run(ctx, r.Area, p.Root, path, dir, opts)
	r.SaveDamage()
	return res, err
}

// SaveDamage remembers in the vault what the reads of r found damaged,
// for the next backup to store again (repo.Area.SaveDamage). It is best
// effort, within 30 seconds even after ctx of the reads ended: restore
// credentials may not write, and another failure is warned of.
func (r *Reading) SaveDamage() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Area.SaveDamage(ctx); err != nil && !errors.Is(err, storage.ErrPermission) && r.warn != nil {
		r.warn("cannot remember the damage reads found in the vault; run azfs check to find it again: " + err.Error())
	}
}

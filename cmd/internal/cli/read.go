package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
)

// Reading is a machine area opened for reading its points, as azmount
// and the commands that read points without mounting them (restore, ls,
// find, diff, dump) need it: the index loaded, orphan packs indexed in
// memory, and the live points known.
type Reading struct {
	*Opened
	State *policy.State
}

// OpenReading opens the area t names for reading its points: the root and
// the area (OpenVault: the keyring's keys, a passphrase, a credentials file
// or a private key, restore-only credentials included), small blobs of a
// blob vault read by the 4 MiB pack segment, the points' state (forgotten
// points are not served), the index (damaged index files reported through
// warn and their packs indexed from their trailers) and the orphan packs,
// in memory only. prepare, when set, is called on the opened area before
// anything of it is read (azmount hands the vault its disk cache there).
// Damage reads find is noted in the index; the caller saves
// it (Vault.SaveDamage) when it is done, or asks for it to be saved as
// found (Vault.SaveDamageAsFound) before reading.
func OpenReading(ctx context.Context, t Target, warn func(msg string), prepare func(*Opened)) (*Reading, error) {
	o, err := OpenVault(ctx, t)
	if err != nil {
		return nil, err
	}
	if IsBlobLocation(o.Location) {
		// Requests are dear over a network: small blobs come by the 4 MiB
		// of their pack, and the blobs around the one a reader wants with
		// it.
		o.Vault.FetchPackSegments(repo.DefaultSegmentMemory)
	}
	if prepare != nil {
		prepare(o)
	}
	state, err := o.State(ctx, warn)
	if err != nil {
		return nil, err
	}
	r := &Reading{Opened: o, State: state}
	if err := r.LoadIndex(ctx, warn); err != nil {
		return nil, err
	}
	return r, nil
}

// LoadIndex loads the index of the area r has open and indexes its orphan
// packs in memory; damaged index files are reported through warn.
func (r *Reading) LoadIndex(ctx context.Context, warn func(msg string)) error {
	if err := r.Vault.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return err
		}
		warn("damaged index files; indexing their packs from the pack trailers: " + Message(err))
	}
	_, err := r.Vault.AdoptOrphanPacks(ctx, false)
	return err
}

// Point selects one live point by a selector (a date: its last point, a
// time, an ID prefix, or "latest"; see repo.SelectPoint), in the local
// time zone. A selector naming a forgotten point says how the owner brings
// it back.
func (r *Reading) Point(sel string) (*repo.Point, error) {
	p, err := repo.SelectPoint(r.State.Live(), sel, time.Local)
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

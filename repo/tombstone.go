package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// tombstonesPrefix holds a machine area's retention tombstones: what an
// application of its retention policy forgot (package repo/policy gives
// them their meaning).
const tombstonesPrefix = "tombstones/"

// TombstoneName is the name of tombstone id in its machine's area.
func TombstoneName(id keys.ID) string { return tombstonesPrefix + id.String() }

// SealedObject is the plaintext of an authenticated object with its ID and
// when the storage says it was saved.
type SealedObject struct {
	ID       keys.ID
	Modified time.Time // zero when the storage does not say
	Plain    []byte
}

// SaveTombstone seals plain as a tombstone (keys.KindTombstone) under the
// area's index key, which every key set of the area holds, write-only ones
// too, and stores it as tombstones/<id>; it returns the ID. Saving needs
// only the right to create objects.
func (v *Area) SaveTombstone(ctx context.Context, plain []byte) (keys.ID, error) {
	return v.SaveObject(ctx, tombstonesPrefix, keys.KindTombstone, plain)
}

// Tombstones returns every tombstone of the area, through c when it is not
// nil (tombstones are immutable). Tombstones that fail to authenticate are
// left out and reported in an error wrapping ErrDamaged, returned with the
// good ones; any other error returns none.
func (v *Area) Tombstones(ctx context.Context, c ObjectCache) ([]SealedObject, error) {
	var infos []storage.Info
	err := v.st.List(ctx, tombstonesPrefix, func(fi storage.Info) error {
		infos = append(infos, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", tombstonesPrefix, err)
	}
	var mu sync.Mutex
	var damaged []error
	out := make([]SealedObject, 0, len(infos))
	err = par.Each(ctx, infos, ioParallelism, func(ctx context.Context, fi storage.Info) error {
		id, err := parseObjectName(fi.Name)
		var plain []byte
		if err != nil || fi.Name != TombstoneName(id) {
			err = fmt.Errorf("tombstone %s: %w: bad name", fi.Name, ErrDamaged)
		} else if plain, err = v.loadCached(ctx, c, fi.Name, fi.Name, keys.KindTombstone, id); err != nil {
			err = fmt.Errorf("tombstone %s: %w", id.Short(), err)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, ErrDamaged):
			damaged = append(damaged, err)
		case errors.Is(err, storage.ErrNotFound):
			// Purged since the listing.
		case err != nil:
			return err
		default:
			out = append(out, SealedObject{ID: id, Modified: fi.Modified, Plain: plain})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(damaged...)
}

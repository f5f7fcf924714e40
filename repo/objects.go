package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// The sealed-object API: every object of a machine area but its packs,
// config and key slots is one sealed object of a kind (keys.Kind), stored
// at <prefix><its ID in hex>, its ID the keyed hash of its plaintext, its
// kind and ID bound into the seal (format.md §3). Packages that define a
// kind of object store it through these, under a prefix of their own:
// index files (IndexPrefix) and points (PointsPrefix) are repo's.

// SaveObject seals plain as an object of kind under its own keyed hash (its
// ID) and stores it at prefix+ID: under the index key for the index kinds
// (index files, trailers, tombstones, damage records), else under the
// area's data key (a write-only machine's session key). Saving an object that already exists is not an error: it is the
// same content, if it has its size (see sized).
func (v *Area) SaveObject(ctx context.Context, prefix string, kind keys.Kind, plain []byte) (keys.ID, error) {
	id := v.keys.ID(kind, plain)
	s, err := v.sealerFor(kind)
	if err != nil {
		return id, err
	}
	sealed := s.Seal(nil, kind, id, plain)
	err = v.st.Save(ctx, prefix+id.String(), sealed)
	if errors.Is(err, storage.ErrExists) && v.sized(ctx, prefix+id.String(), len(sealed)) {
		return id, nil // the same bytes, saved before
	}
	if err != nil {
		return id, fmt.Errorf("save %s: %w", kind, err)
	}
	return id, nil
}

// LoadObject reads and opens the sealed object id of kind under prefix. One
// that does not authenticate wraps ErrDamaged; one under a data key this
// area lacks, keys.ErrOtherKey; one that is gone, storage.ErrNotFound.
func (v *Area) LoadObject(ctx context.Context, prefix string, kind keys.Kind, id keys.ID) ([]byte, error) {
	return v.loadObject(ctx, prefix+id.String(), kind, id)
}

// loadObject reads and opens a whole sealed object.
func (v *Area) loadObject(ctx context.Context, name string, kind keys.Kind, id keys.ID) ([]byte, error) {
	sealed, err := v.st.Load(ctx, name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", kind, id.Short(), err)
	}
	return v.openObject(kind, id, sealed)
}

// openObject authenticates and decrypts a whole sealed object into a new
// slice, leaving sealed unchanged.
func (v *Area) openObject(kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error) {
	var plain []byte
	var err error
	switch {
	case isIndexKind(kind):
		plain, err = v.meta.Open(nil, kind, id, sealed)
	case v.open.Len() == 0:
		return nil, ErrWriteOnly
	default:
		plain, err = v.open.Open(nil, kind, id, sealed)
	}
	if errors.Is(err, keys.ErrOtherKey) {
		return nil, err // not damage: sealed under a key this machine lacks
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return plain, nil
}

// ObjectIDs returns the IDs of the objects under prefix, including those
// that do not open with this area's keys. Names azfs never writes there
// are left out.
func (v *Area) ObjectIDs(ctx context.Context, prefix string) ([]keys.ID, error) {
	names, err := v.list(ctx, prefix)
	if err != nil {
		return nil, err
	}
	ids := make([]keys.ID, 0, len(names))
	for _, n := range names {
		if id, err := parseObjectName(n); err == nil && n == prefix+id.String() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// DeleteObject deletes the object id under prefix; one already gone is not
// an error. Only the owner's storage credentials may delete.
func (v *Area) DeleteObject(ctx context.Context, prefix string, id keys.ID) error {
	return v.deleteObject(ctx, prefix+id.String())
}

func (v *Area) deleteObject(ctx context.Context, name string) error {
	if err := v.st.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

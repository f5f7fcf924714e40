package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

// What package repo/prune needs of a vault beyond reading and backing up:
// index files one by one, and deleting packs, index files and points. Only
// the owner's storage credentials may delete.

// IndexFiles returns the IDs of the vault's index files.
func (v *Vault) IndexFiles(ctx context.Context) ([]keys.ID, error) {
	names, err := v.list(ctx, indexPrefix)
	if err != nil {
		return nil, err
	}
	ids := make([]keys.ID, 0, len(names))
	for _, n := range names {
		id, err := parseObjectName(n)
		if err != nil || n != indexPrefix+id.String() {
			continue // azfs never writes such a name
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ReadIndexFile reads and authenticates index file id. A file that fails is
// ErrDamaged; one that is gone wraps storage.ErrNotFound.
func (v *Vault) ReadIndexFile(ctx context.Context, id keys.ID) (*index.File, error) {
	return v.readIndexFile(ctx, indexPrefix+id.String())
}

// SaveIndexFile stores f as a new index file and returns its ID. It does not
// change the in-memory index.
func (v *Vault) SaveIndexFile(ctx context.Context, f *index.File) (keys.ID, error) {
	return v.saveObject(ctx, indexPrefix, keys.KindIndex, f.Encode())
}

// DeleteIndexFile deletes index file id; one already gone is not an error.
func (v *Vault) DeleteIndexFile(ctx context.Context, id keys.ID) error {
	return v.deleteObject(ctx, indexPrefix+id.String())
}

// PackSizes calls fn with the ID and size of every pack in the storage.
func (v *Vault) PackSizes(ctx context.Context, fn func(id keys.ID, size int64)) error {
	err := v.st.List(ctx, dataPrefix, func(fi storage.Info) error {
		if id, err := parseObjectName(fi.Name); err == nil && fi.Name == dataName(id) {
			fn(id, fi.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", dataPrefix, err)
	}
	return nil
}

// SavePack finishes pw and stores it as a new pack (never relying on a pack
// of the same bytes that exists already), and returns its name and
// entries. It does not change the in-memory index.
func (v *Vault) SavePack(ctx context.Context, pw *pack.Writer) (keys.ID, []pack.Entry, error) {
	id, _, entries, err := v.savePack(ctx, pw, nil)
	return id, entries, err
}

// LoadPackRange returns length bytes of pack id from off.
func (v *Vault) LoadPackRange(ctx context.Context, id keys.ID, off, length int64) ([]byte, error) {
	b, err := v.st.Load(ctx, dataName(id), off, length)
	if err != nil {
		return nil, packRangeError("load pack range", id, err)
	}
	if int64(len(b)) != length {
		return nil, fmt.Errorf("pack %s: %w: truncated", id.Short(), ErrDamaged)
	}
	return b, nil
}

// AuthenticateBlob checks that sealed opens as blob (kind, id) under the
// vault's keys, and leaves it unchanged. It decrypts into scratch, which
// it returns, grown, for the next call.
func (v *Vault) AuthenticateBlob(kind keys.Kind, id keys.ID, sealed, scratch []byte) ([]byte, error) {
	if v.open.Len() == 0 {
		return scratch, ErrWriteOnly
	}
	plain, err := v.open.Open(scratch[:0], kind, id, sealed)
	if err != nil {
		return scratch, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return plain, nil
}

// DeletePack deletes pack id; one already gone is not an error.
func (v *Vault) DeletePack(ctx context.Context, id keys.ID) error {
	return v.deleteObject(ctx, dataName(id))
}

// PointIDs returns the IDs of every point object in the storage, including
// those that do not open with this vault's keys. Names under points/ that
// azfs never writes are left out.
func (v *Vault) PointIDs(ctx context.Context) ([]keys.ID, error) {
	names, err := v.list(ctx, pointsPrefix)
	if err != nil {
		return nil, err
	}
	ids := make([]keys.ID, 0, len(names))
	for _, n := range names {
		if id, err := parseObjectName(n); err == nil && n == pointsPrefix+id.String() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// LoadPoint reads point id.
func (v *Vault) LoadPoint(ctx context.Context, id keys.ID) (*Point, error) {
	return v.loadPoint(ctx, pointsPrefix+id.String(), nil)
}

// DeletePoint deletes point object id; one already gone is not an error.
func (v *Vault) DeletePoint(ctx context.Context, id keys.ID) error {
	return v.deleteObject(ctx, pointsPrefix+id.String())
}

func (v *Vault) deleteObject(ctx context.Context, name string) error {
	if err := v.st.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

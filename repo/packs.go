package repo

import (
	"context"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

// The pack API, for a caller that rewrites packs (package repo/prune) or
// watches them (repo/guard): packs listed with their sizes, stored whole,
// read by range, their blobs authenticated as stored, and deleted. Only the
// owner's storage credentials may delete.

// PackSizes calls fn with the ID and size of every pack in the storage.
func (v *Area) PackSizes(ctx context.Context, fn func(id keys.ID, size int64)) error {
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
func (v *Area) SavePack(ctx context.Context, pw *pack.Writer) (keys.ID, []pack.Entry, error) {
	id, _, entries, err := v.savePack(ctx, pw, nil)
	return id, entries, err
}

// LoadPackRange returns length bytes of pack id from off.
func (v *Area) LoadPackRange(ctx context.Context, id keys.ID, off, length int64) ([]byte, error) {
	return v.LoadPackRangeInto(ctx, nil, id, off, length)
}

// LoadPackRangeInto is LoadPackRange appending to dst, reading into dst's
// room when that suffices and the storage can (storage.LoadInto): for a
// reader that recycles its buffers (the mount's windows of disk images).
func (v *Area) LoadPackRangeInto(ctx context.Context, dst []byte, id keys.ID, off, length int64) ([]byte, error) {
	b, err := storage.LoadInto(ctx, v.st, dst, dataName(id), off, length)
	if err != nil {
		return nil, packRangeError("load pack range", id, err)
	}
	if int64(len(b)-len(dst)) != length {
		return nil, fmt.Errorf("pack %s: %w: truncated", id.Short(), ErrDamaged)
	}
	return b, nil
}

// AuthenticateBlob checks that sealed opens as blob (kind, id) under the
// vault's keys, and leaves it unchanged. It decrypts into scratch, which
// it returns, grown, for the next call.
func (v *Area) AuthenticateBlob(kind keys.Kind, id keys.ID, sealed, scratch []byte) ([]byte, error) {
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
func (v *Area) DeletePack(ctx context.Context, id keys.ID) error {
	return v.deleteObject(ctx, dataName(id))
}

package repair

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

// IndexReport is what rebuilding an area's index from its pack trailers
// found and did.
type IndexReport struct {
	Packs int // packs in the storage
	Files int // index files that authenticate
	// Covered counts the packs the new index file covers: packs no
	// index file that is kept names.
	Covered int
	// Written is the new index file's ID (zero in a dry run or when no
	// pack needed one).
	Written keys.ID
	// Stale are the authenticated index files replaced by the new one:
	// they name packs the storage no longer holds, or disagree with a
	// pack's trailer. Deleted once the new file is saved.
	Stale []StaleFile
	// DamagedTrailers are packs whose trailer does not authenticate; their
	// blobs are still found where an index file names them.
	DamagedTrailers []keys.ID
	// Unindexed are those of DamagedTrailers that no index file names:
	// their blobs cannot be located.
	Unindexed []keys.ID
}

// StaleFile is an index file the rebuild supersedes, and why.
type StaleFile struct {
	ID  keys.ID
	Why string
}

// indexParallelism bounds concurrent trailer and index file reads.
const indexParallelism = 8

// claim is what an authenticated index file says a pack holds.
type claim struct {
	file   int // position in files
	digest [32]byte
}

// trailer is what a pack's own trailer says.
type trailer struct {
	damaged bool
	digest  [32]byte
	entries []pack.Entry // kept only for packs no index file names
}

// rebuildIndex compares every index file with every pack trailer of v and,
// with apply, writes one index file covering every pack no kept index file
// names (from its trailer, else from a replaced index file), and then
// deletes the replaced files. Index files that do not authenticate are
// junk (see quarantine) and cover nothing.
func rebuildIndex(ctx context.Context, v *repo.Area, apply bool) (*IndexReport, error) {
	rep := &IndexReport{}
	files, err := v.ObjectIDs(ctx, repo.IndexPrefix)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	claims := make(map[keys.ID][]claim)
	good := make([]bool, len(files))
	err = par.Range(ctx, len(files), indexParallelism, func(ctx context.Context, i int) error {
		f, err := v.ReadIndexFile(ctx, files[i])
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		good[i] = true
		for _, p := range f.Packs {
			claims[p.Pack] = append(claims[p.Pack], claim{file: i, digest: digest(p.Entries)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range good {
		if g {
			rep.Files++
		}
	}

	trailers := make(map[keys.ID]*trailer)
	if err := v.PackSizes(ctx, func(id keys.ID, _ int64) { trailers[id] = nil }); err != nil {
		return nil, err
	}
	rep.Packs = len(trailers)
	ids := make([]keys.ID, 0, len(trailers))
	for id := range trailers {
		ids = append(ids, id)
	}
	err = par.Each(ctx, ids, indexParallelism, func(ctx context.Context, id keys.ID) error {
		entries, _, err := v.PackTrailer(ctx, id)
		t := &trailer{}
		switch {
		case errors.Is(err, repo.ErrDamaged):
			t.damaged = true
		case errors.Is(err, storage.ErrNotFound):
			t = nil // deleted since the listing (a prune)
		case err != nil:
			return err
		default:
			t.digest = digest(entries)
			if len(claims[id]) == 0 {
				t.entries = entries
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if t == nil {
			delete(trailers, id)
		} else {
			trailers[id] = t
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// A file is stale when it names a pack the storage does not hold, or
	// says of a pack other than the pack's own authenticated trailer.
	stale := make(map[int]string)
	for id, cs := range claims {
		t, present := trailers[id]
		for _, c := range cs {
			switch {
			case !present:
				stale[c.file] = fmt.Sprintf("names pack %s, which the storage no longer holds", id.Short())
			case !t.damaged && t.digest != c.digest:
				stale[c.file] = fmt.Sprintf("disagrees with the trailer of pack %s", id.Short())
			}
		}
	}
	covered := make(map[keys.ID]bool)
	for id, cs := range claims {
		for _, c := range cs {
			if _, ok := stale[c.file]; !ok {
				covered[id] = true
			}
		}
	}
	var newFile index.File
	for id, t := range trailers {
		if t.damaged {
			rep.DamagedTrailers = append(rep.DamagedTrailers, id)
		}
		if covered[id] {
			continue
		}
		entries, ok, err := uncoveredEntries(ctx, v, id, t, claims[id], files)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since the listing (a prune)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			rep.Unindexed = append(rep.Unindexed, id)
			continue
		}
		newFile.Packs = append(newFile.Packs, index.PackBlobs{Pack: id, Entries: entries})
	}
	for i, why := range stale {
		rep.Stale = append(rep.Stale, StaleFile{ID: files[i], Why: why})
	}
	slices.SortFunc(rep.Stale, func(a, b StaleFile) int { return cmp.Compare(a.ID.String(), b.ID.String()) })
	sortIDs(rep.DamagedTrailers)
	sortIDs(rep.Unindexed)
	slices.SortFunc(newFile.Packs, func(a, b index.PackBlobs) int { return cmp.Compare(a.Pack.String(), b.Pack.String()) })
	rep.Covered = len(newFile.Packs)
	if !apply {
		return rep, nil
	}
	// The successor first: no index file is deleted before every pack it
	// named that still exists is named by a saved one.
	if len(newFile.Packs) > 0 {
		if rep.Written, err = v.SaveObject(ctx, repo.IndexPrefix, keys.KindIndex, newFile.Encode()); err != nil {
			return nil, err
		}
	}
	for _, s := range rep.Stale {
		if err := v.DeleteObject(ctx, repo.IndexPrefix, s.ID); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// uncoveredEntries returns the entries of pack id, which no kept index file
// names: from its trailer t when it authenticates, else from one of the
// stale index files that claim it; ok is false when neither can say.
func uncoveredEntries(ctx context.Context, v *repo.Area, id keys.ID, t *trailer, claims []claim, files []keys.ID) (entries []pack.Entry, ok bool, err error) {
	if !t.damaged {
		if len(claims) == 0 {
			return t.entries, true, nil
		}
		entries, _, err := v.PackTrailer(ctx, id) // claimed, so not kept
		return entries, err == nil, err
	}
	for _, c := range claims {
		f, err := v.ReadIndexFile(ctx, files[c.file])
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, repo.ErrDamaged) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		for _, p := range f.Packs {
			if p.Pack == id {
				return p.Entries, true, nil
			}
		}
	}
	return nil, false, nil
}

// digest identifies a pack's entries whatever their order.
func digest(entries []pack.Entry) [32]byte {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b pack.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	return sha256.Sum256((&index.File{Packs: []index.PackBlobs{{Entries: sorted}}}).Encode())
}

func sortIDs(ids []keys.ID) {
	slices.SortFunc(ids, func(a, b keys.ID) int { return cmp.Compare(a.String(), b.String()) })
}

package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

// Damage records: a copy of a blob found missing or damaged, by a read, a
// check or a backup, is remembered in the vault (damage/<id>, sealed under
// the index key, so a storage can neither forge nor alter one; it can only
// withhold them, which costs no more than before they existed). Every
// LoadIndex applies them to the index, so that readers try such copies last
// and backups do not reuse them: a backup that meets the blob in its source
// stores it again, and because blob IDs are content hashes, every older
// point that needs the blob reads the new copy from then on.
const damagePrefix = "damage/"

// damageLog collects the copies this process found bad and has not yet
// saved.
type damageLog struct {
	mu      sync.Mutex
	unsaved []index.BadCopy
	// autosave, when set, saves new findings in the background (a mount,
	// which has no end of run to save them at).
	autosave bool
	saving   bool
	// saveMu is held by a SaveDamage while it saves, so that the one a
	// mount makes at its end waits for a background save under way:
	// the process exits after it.
	saveMu sync.Mutex
}

// NoteBadCopy records that the copy of blob in packID is missing or
// damaged: the index prefers its other copies, and SaveDamage remembers it
// in the vault.
func (v *Area) NoteBadCopy(blob, packID keys.ID) {
	if v.idx.MarkBad(blob, packID) {
		v.logBad(index.BadCopy{Blob: blob, Pack: packID})
	}
}

// notePackGone records that pack packID is gone from the storage.
func (v *Area) notePackGone(packID keys.ID) {
	if v.idx.MarkPackBad(packID) {
		v.logBad(index.BadCopy{Pack: packID})
	}
}

func (v *Area) logBad(c index.BadCopy) {
	v.damage.mu.Lock()
	v.damage.unsaved = append(v.damage.unsaved, c)
	start := v.damage.autosave && !v.damage.saving
	if start {
		v.damage.saving = true
	}
	v.damage.mu.Unlock()
	if start {
		go v.autosaveDamage()
	}
}

// SaveDamageAsFound makes the vault save what reads find damaged in the
// background as they find it, best effort (a restore-only credential may
// not write). For long-lived readers such as a mount; others call
// SaveDamage when they are done.
func (v *Area) SaveDamageAsFound() {
	v.damage.mu.Lock()
	v.damage.autosave = true
	v.damage.mu.Unlock()
}

// autosaveTimeout bounds a background save of damage findings.
const autosaveTimeout = time.Minute

func (v *Area) autosaveDamage() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), autosaveTimeout)
		err := v.SaveDamage(ctx)
		cancel()
		v.damage.mu.Lock()
		if err != nil || len(v.damage.unsaved) == 0 {
			// Saved, or not savable now: the next finding tries again,
			// unless the credential may not write at all (restore-only).
			v.damage.saving = false
			if errors.Is(err, storage.ErrPermission) {
				v.damage.autosave = false
			}
			v.damage.mu.Unlock()
			return
		}
		v.damage.mu.Unlock()
	}
}

// SaveDamage stores the copies this process found bad and has not saved
// yet in a damage record. Nothing is written when there are none. It
// returns once another save under way (in the background) has ended too.
func (v *Area) SaveDamage(ctx context.Context) error {
	v.damage.saveMu.Lock()
	defer v.damage.saveMu.Unlock()
	v.damage.mu.Lock()
	found := v.damage.unsaved
	v.damage.unsaved = nil
	v.damage.mu.Unlock()
	if len(found) == 0 {
		return nil
	}
	rec := index.DamageRecord{Bad: found}
	if _, err := v.SaveObject(ctx, damagePrefix, keys.KindDamage, rec.Encode()); err != nil {
		v.damage.mu.Lock()
		v.damage.unsaved = append(v.damage.unsaved, found...)
		v.damage.mu.Unlock()
		return fmt.Errorf("remember damage: %w", err)
	}
	return nil
}

// ApplyDamageRecords applies every damage record of the vault to the index
// (LoadIndex does; for those who fill the index themselves, as prune). A
// record that does not authenticate or decode is skipped: it is not
// trusted, and it makes nothing worse than not having it.
func (v *Area) ApplyDamageRecords(ctx context.Context) error {
	names, err := v.list(ctx, damagePrefix)
	if err != nil {
		return err
	}
	return par.Each(ctx, names, ioParallelism, func(ctx context.Context, name string) error {
		id, err := parseObjectName(name)
		if err != nil {
			return nil
		}
		plain, err := v.loadCached(ctx, v.cache, "damage-"+id.String(), name, keys.KindDamage, id)
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, ErrDamaged) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := index.DecodeDamageRecord(plain)
		if err != nil {
			return nil
		}
		rec.Apply(v.idx)
		return nil
	})
}

// DamageRecords returns the names of the vault's damage records.
func (v *Area) DamageRecords(ctx context.Context) ([]string, error) {
	return v.list(ctx, damagePrefix)
}

// noteTruncatedPacks marks bad the copies that lie beyond the end of
// packs stored shorter than the index says they are (sizes, from a
// listing, by pack). A truncated pack is found by the listing alone,
// without reading it.
func (v *Area) noteTruncatedPacks(sizes map[keys.ID]int64) {
	var short map[keys.ID]int64
	for id, size := range sizes {
		if end := v.idx.PackEnd(id); end > 0 && uint64(size) < end+pack.FooterLen {
			if short == nil {
				short = make(map[keys.ID]int64)
			}
			short[id] = size
		}
	}
	if short == nil {
		return
	}
	var lost []index.BadCopy
	v.idx.EachCopy(func(blob keys.ID, loc index.Location) bool {
		if size, ok := short[loc.Pack]; ok && int64(loc.Offset)+int64(loc.Length) > size {
			lost = append(lost, index.BadCopy{Blob: blob, Pack: loc.Pack})
		}
		return true
	})
	for _, c := range lost {
		v.NoteBadCopy(c.Blob, c.Pack)
	}
}

// DropStaleDamage deletes the damage records none of whose copies is in a
// pack that exists (keeps says which do): a prune deleted those packs, and
// the records say nothing any more. It returns how many it deleted. A
// record that does not open is left for check and repair to report.
func (v *Area) DropStaleDamage(ctx context.Context, exists func(packID keys.ID) bool) (int, error) {
	names, err := v.list(ctx, damagePrefix)
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, name := range names {
		id, err := parseObjectName(name)
		if err != nil {
			continue
		}
		plain, err := v.loadObject(ctx, name, keys.KindDamage, id)
		if err != nil {
			continue
		}
		rec, err := index.DecodeDamageRecord(plain)
		if err != nil || slices.ContainsFunc(rec.Bad, func(c index.BadCopy) bool { return exists(c.Pack) }) {
			continue
		}
		if err := v.st.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return dropped, fmt.Errorf("delete stale damage record: %w", err)
		}
		dropped++
	}
	return dropped, nil
}

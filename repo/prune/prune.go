// Package prune deletes from a machine's area the packs that no recovery
// point needs, and repacks packs that are mostly garbage, while that
// machine (and its own agent) keeps backing up into it.
//
// It works in two phases separated by a safety margin (format.md §13.4).
// Phase 1 (a mark) walks every point's trees into a set of blob IDs, and
// records, signed by the owner, the packs that hold no needed blob: the
// mark. It also copies the needed blobs of mostly-garbage packs into new
// packs, and marks the old ones. Phase 2, in a prune that lists the points
// at least a margin after the mark, walks the points again and deletes the
// marked packs that are still unneeded, unless a running backup asked to
// keep them. Backups list the marks as they run (package guard, which both
// prune and backup import: the mark and keep codecs, and guard.Guard): they
// never start to depend on a marked pack, and they answer a new mark naming
// packs they already depend on with a keep object well before the margin is
// over.
// Index files that name packs leaving the index are superseded (new files
// saved first, the old ones deleted, then the packs).
//
// Memory: the in-memory index (about 70 bytes per blob), the set of needed
// blob IDs (about 50 bytes per blob) and a small record per pack; one pack
// at a time is read whole for repacking.
package prune

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
)

// Options configure a prune of one machine's area.
type Options struct {
	// Owner signs new marks; its public keys verify the marks found.
	Owner *keys.OwnerKeys
	// Margin is the time between marking a pack and deleting it: a mark
	// is acted on once the smaller of its own margin and this one has
	// passed. It must be at least twice the backups' guard tolerance
	// (MinMargin) while backups may run. Zero marks and deletes in one
	// run: only when no backup of the machine runs until the prune ends.
	Margin time.Duration
	// MaxUnused is the share of the stored bytes that may stay unused in
	// packs that also hold needed blobs: unused/(used+unused), as restic's
	// --max-unused. Packs with the most garbage are repacked until it
	// holds. 1 or more never repacks.
	MaxUnused float64
	// DryRun computes and reports, and writes or deletes nothing.
	DryRun bool
	// Purge lists points to delete first, before anything is marked or
	// deleted: expired soft-deleted points, chosen by the caller.
	Purge []keys.ID
	// Host names this machine in the prune lock.
	Host string
	// Backups is this host's lock of the machine's backups: the prune
	// refuses while a backup holds it, and with a margin under MinMargin
	// holds it itself until the end. Nil: no backup runs on this host.
	Backups HostBackups
}

// Result reports what a prune found and did (or, with DryRun, would do).
// Byte counts are stored (sealed) bytes. The JSON names are those of
// 'azfs prune --json'.
type Result struct {
	Purged      int   `json:"purged"`       // points deleted first (Options.Purge)
	Points      int   `json:"points"`       // points walked
	Blobs       int   `json:"blobs"`        // blobs the points need
	BytesUsed   int64 `json:"bytes_used"`   // their bytes, one copy each
	Packs       int   `json:"packs"`        // packs in the storage
	BytesStored int64 `json:"bytes_stored"` // their bytes

	Deleted      int   `json:"deleted"` // packs deleted (marked at least a margin ago, still unneeded)
	DeletedBytes int64 `json:"deleted_bytes"`
	Kept         int   `json:"kept"`    // marked packs not deleted: a running backup asked, or points need them now
	Pending      int   `json:"pending"` // packs of marks not due yet
	PendingBytes int64 `json:"pending_bytes"`

	Repacked      int       `json:"repacked"`       // packs whose needed blobs were copied into new packs (and marked)
	RepackedBytes int64     `json:"repacked_bytes"` // their size
	CopiedBytes   int64     `json:"copied_bytes"`   // what was copied
	Marked        int       `json:"marked"`         // packs marked now (unneeded ones and repacked ones)
	MarkedBytes   int64     `json:"marked_bytes"`
	DueAt         time.Time `json:"due_at,omitzero"` // when this run's mark may be acted on; zero without one

	IndexWritten int `json:"index_written"` // index files
	IndexDeleted int `json:"index_deleted"`
	Unreadable   int `json:"unreadable"` // packs whose trailer or content does not authenticate: left alone
	// DamageRecordsDropped counts damage records deleted because every
	// pack they name is gone.
	DamageRecordsDropped int `json:"damage_records_dropped"`
	InvalidMarks         int `json:"invalid_marks"` // mark objects the owner did not sign: removed
}

// ErrUnreadable reports a point that prune cannot read: it must read every
// point to know what is needed.
var ErrUnreadable = errors.New("prune needs every point of the machine readable")

// indexBatch bounds the entries of one index file prune writes.
const indexBatch = 1 << 16

type packInfo struct {
	size       int64
	live       int64 // bytes of needed blobs whose chosen copy is here
	indexed    bool  // a loaded index file names it
	unreadable bool  // its trailer does not authenticate
	// entries is kept for packs of marks and packs no index file names
	// (the others are in the vault's in-memory index).
	entries []pack.Entry
}

type indexFile struct {
	id      keys.ID
	packs   []keys.ID
	damaged bool
}

type pruner struct {
	v     *repo.Area
	st    storage.Storage
	opts  Options
	owner keys.OwnerPublic
	now   func() time.Time
	res   Result

	marks   []*guard.Mark           // valid marks
	invalid []guard.MarkID          // marks the owner did not sign
	markOf  map[keys.ID]*guard.Mark // packs of valid marks
	purged  map[keys.ID]bool        // points deleted first
	walked  map[keys.ID]bool        // points walked
	reach   map[keys.ID]struct{}
	packs   map[keys.ID]*packInfo
	files   []indexFile
	missing map[keys.ID]bool // named by index files, gone from the storage

	doomed    map[keys.ID]bool // packs to delete
	survivors map[keys.ID]bool // packs of due marks kept
	copied    map[keys.ID]bool // blobs copied into new packs by this run
	newMark   *guard.Mark
	done      []*guard.Mark // marks acted on: removed at the end
}

// Run prunes v, a machine's area opened afresh (its index not loaded) with
// keys that read every point: the owner's escrow in passphrase mode, a
// certificate's private key in certificate mode. On error the result says
// what was done before it.
func Run(ctx context.Context, v *repo.Area, opts Options) (*Result, error) {
	if opts.Owner == nil {
		return nil, errors.New("prune: the owner's keys are needed")
	}
	return run(ctx, v, opts, time.Now)
}

func run(ctx context.Context, v *repo.Area, opts Options, now func() time.Time) (res *Result, err error) {
	p := &pruner{
		v: v, st: v.Storage(), opts: opts, owner: opts.Owner.Public(), now: now,
		markOf: make(map[keys.ID]*guard.Mark), purged: make(map[keys.ID]bool), walked: make(map[keys.ID]bool),
		reach: make(map[keys.ID]struct{}), packs: make(map[keys.ID]*packInfo), missing: make(map[keys.ID]bool),
		doomed: make(map[keys.ID]bool), survivors: make(map[keys.ID]bool), copied: make(map[keys.ID]bool),
	}
	if opts.Backups != nil {
		release, err := excludeBackups(opts.Backups, opts.Margin, opts.DryRun)
		if err != nil {
			return nil, err
		}
		defer func() {
			if rerr := release(); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !opts.DryRun {
		l, err := takeLock(ctx, p.st, opts.Host, now, cancel)
		if err != nil {
			return nil, err
		}
		defer func() {
			if rerr := l.release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	if err := p.prune(ctx); err != nil {
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			err = cause
		}
		return &p.res, err
	}
	return &p.res, nil
}

func (p *pruner) prune(ctx context.Context) error {
	if p.v.Index().Len() != 0 {
		return errors.New("prune: open the machine's area afresh (its index must not be loaded)")
	}
	if err := p.loadMarks(ctx); err != nil {
		return err
	}
	if err := p.purge(ctx); err != nil {
		return err
	}
	listed := p.now()
	if err := p.survey(ctx); err != nil {
		return err
	}
	var due []*guard.Mark
	for _, m := range p.marks {
		if m.Due(listed, p.opts.Margin) {
			due = append(due, m)
		}
	}
	if err := p.decide(ctx, due); err != nil {
		return err
	}
	p.done = append(p.done, due...)
	unused, repack := p.choose()
	if p.opts.DryRun {
		p.res.Repacked = len(repack)
		for _, id := range repack {
			p.res.RepackedBytes += p.packs[id].size
			p.res.CopiedBytes += p.packs[id].live
		}
		p.count(append(unused, repack...))
		p.tally()
		return nil
	}
	repacked, err := p.repack(ctx, repack)
	if err != nil {
		return err
	}
	if err := p.mark(ctx, append(unused, repacked...)); err != nil {
		return err
	}
	p.tally()
	if err := p.supersede(ctx); err != nil {
		return err
	}
	if err := p.deletePacks(ctx); err != nil {
		return err
	}
	// Damage records that name only deleted packs say nothing any more.
	dropped, err := p.v.DropStaleDamage(ctx, func(id keys.ID) bool { return p.packs[id] != nil && !p.doomed[id] })
	if err != nil {
		return err
	}
	p.res.DamageRecordsDropped = dropped
	return p.removeMarks(ctx)
}

// tally records the decisions in the result.
func (p *pruner) tally() {
	for id := range p.doomed {
		p.res.Deleted++
		p.res.DeletedBytes += p.packs[id].size
	}
	p.res.Kept = len(p.survivors)
	for id, m := range p.markOf {
		if info := p.packs[id]; info != nil && m != p.newMark && !p.doomed[id] && !p.survivors[id] {
			p.res.Pending++
			p.res.PendingBytes += info.size
		}
	}
}

// count records the packs of a new mark in the result.
func (p *pruner) count(marked []keys.ID) {
	p.res.Marked = len(marked)
	for _, id := range marked {
		p.res.MarkedBytes += p.packs[id].size
	}
	if len(marked) > 0 {
		p.res.DueAt = p.now().Add(p.opts.Margin)
	}
}

// loadMarks reads every mark; those that do not verify are set aside for
// removal.
func (p *pruner) loadMarks(ctx context.Context) error {
	var ids []guard.MarkID
	err := p.st.List(ctx, guard.MarksPrefix, func(fi storage.Info) error {
		if id, ok := guard.ParseMarkID(path.Base(fi.Name)); ok && fi.Name == guard.MarksPrefix+id.String() {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list prune marks: %w", err)
	}
	for _, id := range ids {
		b, err := p.st.Load(ctx, guard.MarksPrefix+id.String(), 0, -1)
		if err != nil {
			return fmt.Errorf("read prune mark %s: %w", id, err)
		}
		m, err := guard.VerifyMark(b, p.owner, p.v.ID(), id)
		if err != nil {
			p.invalid = append(p.invalid, id)
			continue
		}
		p.marks = append(p.marks, m)
		for _, pk := range m.Packs {
			if p.markOf[pk] == nil {
				p.markOf[pk] = m
			}
		}
	}
	slices.SortFunc(p.marks, func(a, b *guard.Mark) int { return a.Created.Compare(b.Created) })
	p.res.InvalidMarks = len(p.invalid)
	return nil
}

func (p *pruner) purge(ctx context.Context) error {
	for _, id := range p.opts.Purge {
		p.purged[id] = true
		if p.opts.DryRun {
			continue
		}
		if err := p.v.DeleteObject(ctx, repo.PointsPrefix, id); err != nil {
			return err
		}
	}
	p.res.Purged = len(p.opts.Purge)
	return nil
}

// survey lists and reads the points, the index files and the packs, in
// that order (points before the index: format §13.2), and walks the
// points' trees.
func (p *pruner) survey(ctx context.Context) error {
	roots, err := p.loadPoints(ctx)
	if err != nil {
		return err
	}
	err = p.v.PackSizes(ctx, func(id keys.ID, size int64) { p.packs[id] = &packInfo{size: size} })
	if err != nil {
		return err
	}
	if err := p.loadIndex(ctx); err != nil {
		return err
	}
	if err := p.walk(ctx, roots, true); err != nil {
		return err
	}
	for _, info := range p.packs {
		p.res.Packs++
		p.res.BytesStored += info.size
	}
	p.res.Blobs = len(p.reach)
	idx := p.v.Index()
	idx.Each(func(id keys.ID, loc index.Location) bool {
		if _, ok := p.reach[id]; ok {
			p.packs[loc.Pack].live += int64(loc.Length)
			p.res.BytesUsed += int64(loc.Length)
		}
		return true
	})
	return nil
}

// loadPoints reads every point object (but those purged) and returns their
// roots. A point that does not open with the vault's keys stops the prune:
// what it needs would be deleted.
func (p *pruner) loadPoints(ctx context.Context) ([]keys.ID, error) {
	ids, err := p.v.ObjectIDs(ctx, repo.PointsPrefix)
	if err != nil {
		return nil, err
	}
	var fresh []keys.ID
	for _, id := range ids {
		if !p.purged[id] && !p.walked[id] {
			fresh = append(fresh, id)
		}
	}
	roots := make([]keys.ID, len(fresh))
	err = par.Range(ctx, len(fresh), walkers, func(ctx context.Context, i int) error {
		pt, err := p.v.LoadPoint(ctx, fresh[i])
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil // deleted since the listing: needs nothing
		case errors.Is(err, repo.ErrWriteOnly):
			return fmt.Errorf("%w: the machine is in certificate mode and its points open only with the certificate's private key (--private-key)", ErrUnreadable)
		case errors.Is(err, keys.ErrOtherKey):
			return fmt.Errorf("%w: point %s is sealed for another certificate (or an earlier key of the machine): %w", ErrUnreadable, fresh[i].Short(), err)
		case err != nil:
			return fmt.Errorf("%w: %w (azfs check names the damaged files and the points that hold them; a backup of files that still exist heals them; forget the points whose data is lost for good, then prune)", ErrUnreadable, err)
		}
		roots[i] = pt.Root
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range fresh {
		p.walked[id] = true
	}
	p.res.Points = len(p.walked)
	return slices.DeleteFunc(roots, keys.ID.IsZero), nil
}

// loadIndex reads every index file and the trailers of the packs none
// names, and fills the vault's in-memory index with the packs present:
// marked packs last, so that a blob with a copy in an unmarked pack is
// found there.
func (p *pruner) loadIndex(ctx context.Context) error {
	ids, err := p.v.ObjectIDs(ctx, repo.IndexPrefix)
	if err != nil {
		return err
	}
	idx := p.v.Index()
	var mu sync.Mutex
	aside := make(map[keys.ID][]pack.Entry) // marked, or not in the first listing
	p.files = make([]indexFile, len(ids))
	err = par.Range(ctx, len(ids), walkers, func(ctx context.Context, i int) error {
		p.files[i].id = ids[i]
		f, err := p.v.ReadIndexFile(ctx, ids[i])
		if errors.Is(err, repo.ErrDamaged) {
			p.files[i].damaged = true // superseded: its packs are adopted below
			return nil
		}
		if err != nil {
			return err
		}
		for _, pb := range f.Packs {
			p.files[i].packs = append(p.files[i].packs, pb.Pack)
			mu.Lock()
			info := p.packs[pb.Pack]
			if info != nil && p.markOf[pb.Pack] == nil {
				info.indexed = true
				mu.Unlock()
				idx.AddPack(pb.Pack, pb.Entries)
				continue
			}
			if _, ok := aside[pb.Pack]; !ok {
				aside[pb.Pack] = pb.Entries
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Packs saved after the first listing are in the second; a pack an
	// index file names was saved before that file, so one in neither is
	// gone.
	err = p.v.PackSizes(ctx, func(id keys.ID, size int64) {
		if p.packs[id] == nil {
			p.packs[id] = &packInfo{size: size}
		}
	})
	if err != nil {
		return err
	}
	for id, entries := range aside {
		info := p.packs[id]
		if info == nil {
			p.missing[id] = true
			continue
		}
		info.indexed, info.entries = true, entries
	}
	var orphans []keys.ID
	for id, info := range p.packs {
		if !info.indexed {
			orphans = append(orphans, id)
		}
	}
	err = par.Range(ctx, len(orphans), walkers, func(ctx context.Context, i int) error {
		entries, _, err := p.v.PackTrailer(ctx, orphans[i])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, repo.ErrDamaged):
			p.packs[orphans[i]].unreadable = true
			p.res.Unreadable++
		case err != nil:
			return err
		default:
			p.packs[orphans[i]].entries = entries
		}
		return nil
	})
	if err != nil {
		return err
	}
	var marked []keys.ID
	for id, info := range p.packs {
		switch {
		case info.entries == nil:
		case p.markOf[id] != nil:
			marked = append(marked, id)
		default:
			idx.AddPack(id, info.entries)
		}
	}
	for _, id := range marked {
		idx.AddPack(id, p.packs[id].entries)
		// Copies in a marked pack, about to be deleted, are preferred
		// last, as bad copies are: a blob stored again elsewhere is kept
		// there.
		idx.MarkPackBad(id)
	}
	// Copies found bad are preferred last too: of a blob stored again
	// after its copy was damaged, the good copy is the one kept.
	return p.v.ApplyDamageRecords(ctx)
}

// walk adds the blobs of the points' trees to p.reach. With strict, a blob
// they need that no pack holds stops the prune.
func (p *pruner) walk(ctx context.Context, roots []keys.ID, strict bool) error {
	if err := walk(ctx, p.v, roots, p.reach); err != nil {
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, keys.ErrAuth) {
			return fmt.Errorf("%w: %w (azfs check names the damaged files and the points that hold them; a backup of files that still exist heals them; forget the points whose data is lost for good, then prune)", ErrUnreadable, err)
		}
		return err
	}
	if !strict {
		return nil
	}
	idx := p.v.Index()
	missing := 0
	var first keys.ID
	for id := range p.reach {
		if !idx.Has(id) {
			if missing == 0 {
				first = id
			}
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d blobs the points need are in no pack (%s, ...) (azfs check names the damaged files and the points that hold them; a backup of files that still exist heals them; forget the points whose data is lost for good, then prune)", repo.ErrDamaged, missing, first.Short())
	}
	return nil
}

// decide sorts the packs of due marks into those to delete and those to
// keep: kept when a backup asked (a keep object), when their trailer does
// not read, or when they hold a needed blob of which no pack that stays
// has a copy.
func (p *pruner) decide(ctx context.Context, due []*guard.Mark) error {
	for _, m := range due {
		kept, all, err := p.keeps(ctx, m.ID)
		if err != nil {
			return err
		}
		for _, id := range m.Packs {
			info := p.packs[id]
			switch {
			case info == nil: // gone already
			case all || kept[id] || info.unreadable || p.survivors[id]:
				p.survivors[id] = true
				delete(p.doomed, id)
			default:
				p.doomed[id] = true
			}
		}
	}
	idx := p.v.Index()
	for _, id := range sortedKeys(p.doomed) {
		for _, e := range p.packs[id].entries {
			if _, needed := p.reach[e.ID]; !needed || p.copied[e.ID] {
				continue
			}
			if loc, ok := idx.Lookup(e.ID); !ok || p.doomed[loc.Pack] {
				// Needed since the mark (a point committed after it):
				// this pack stays.
				delete(p.doomed, id)
				p.survivors[id] = true
				break
			}
		}
	}
	return nil
}

// keeps returns the packs running backups asked to keep for mark id; all
// is set when a keep object does not decode (then nothing of the mark is
// deleted).
func (p *pruner) keeps(ctx context.Context, id guard.MarkID) (kept map[keys.ID]bool, all bool, err error) {
	var names []string
	err = p.st.List(ctx, guard.KeepsPrefix+id.String()+"/", func(fi storage.Info) error {
		if guard.IsKeep(fi.Name, id) {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list keeps of prune mark %s: %w", id, err)
	}
	kept = make(map[keys.ID]bool)
	for _, n := range names {
		b, err := p.st.Load(ctx, n, 0, -1)
		if err != nil {
			return nil, false, fmt.Errorf("read keep of prune mark %s: %w", id, err)
		}
		mid, packs, err := guard.DecodeKeep(b)
		if err != nil || mid != id {
			all = true
			continue
		}
		for _, pk := range packs {
			kept[pk] = true
		}
	}
	return kept, all, nil
}

// choose returns the packs to mark as unneeded, and those to repack so
// that the unused share of the packs that stay is within MaxUnused. Packs of
// marks, kept packs and unreadable ones are left as they are.
func (p *pruner) choose() (unused, repack []keys.ID) {
	var used, garbage int64
	var partial []keys.ID
	for id, info := range p.packs {
		switch {
		case p.doomed[id] || p.survivors[id] || info.unreadable || p.markOf[id] != nil:
		case info.live == 0:
			unused = append(unused, id)
		default:
			used += info.live
			garbage += info.size - info.live
			if info.size > info.live {
				partial = append(partial, id)
			}
		}
	}
	if p.opts.MaxUnused >= 1 {
		return guard.SortPacks(unused), nil
	}
	limit := int64(max(p.opts.MaxUnused, 0) / (1 - max(p.opts.MaxUnused, 0)) * float64(used))
	// The largest share of garbage first.
	share := func(id keys.ID) float64 { return float64(p.packs[id].live) / float64(p.packs[id].size) }
	slices.SortFunc(partial, func(a, b keys.ID) int {
		return cmp.Or(cmp.Compare(share(a), share(b)), bytes.Compare(a[:], b[:]))
	})
	for _, id := range partial {
		if garbage <= limit {
			break
		}
		repack = append(repack, id)
		garbage -= p.packs[id].size - p.packs[id].live
	}
	return guard.SortPacks(unused), repack
}

// Reads of a repacked pack: runs of needed blobs with gaps of at most
// repackGap, up to repackRead bytes (a larger blob alone).
const (
	repackRead = 4 << 20
	repackGap  = 256 << 10
	// repackIndexEvery is how many new packs go into one index file.
	repackIndexEvery = 64
)

// repack copies the needed blobs of packs, authenticated, into new packs
// indexed by an index file of their own, and returns the packs copied. A
// pack with a blob that does not authenticate is left alone (its good
// blobs are copied all the same). Memory: one pack being filled per kind,
// and one read.
func (p *pruner) repack(ctx context.Context, packs []keys.ID) ([]keys.ID, error) {
	if len(packs) == 0 {
		return nil, nil
	}
	want := make(map[keys.ID][]pack.Entry, len(packs))
	for _, id := range packs {
		want[id] = nil
	}
	p.v.Index().Each(func(id keys.ID, loc index.Location) bool {
		if _, needed := p.reach[id]; needed {
			if list, ok := want[loc.Pack]; ok {
				want[loc.Pack] = append(list, pack.Entry{Kind: loc.Kind, ID: id, Offset: loc.Offset, Length: loc.Length})
			}
		}
		return true
	})
	open := make(map[keys.Kind]*pack.Writer)
	var landed index.File
	saveIndex := func() error {
		if len(landed.Packs) == 0 {
			return nil
		}
		if _, err := p.v.SaveObject(ctx, repo.IndexPrefix, keys.KindIndex, landed.Encode()); err != nil {
			return fmt.Errorf("repack: %w", err)
		}
		p.res.IndexWritten++
		landed.Packs = nil
		return nil
	}
	store := func(pw *pack.Writer) error {
		id, entries, err := p.v.SavePack(ctx, pw)
		if err != nil {
			return fmt.Errorf("repack: %w", err)
		}
		landed.Packs = append(landed.Packs, index.PackBlobs{Pack: id, Entries: entries})
		pw.Reset()
		if len(landed.Packs) == repackIndexEvery {
			return saveIndex()
		}
		return nil
	}
	var done, copied []keys.ID
	var scratch []byte
	for _, id := range packs {
		entries := want[id]
		slices.SortFunc(entries, func(a, b pack.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
		damaged := false
		for len(entries) > 0 {
			n, end := 1, int64(entries[0].Offset)+int64(entries[0].Length)
			for n < len(entries) {
				e := entries[n]
				if int64(e.Offset)-end > repackGap || int64(e.Offset)+int64(e.Length)-int64(entries[0].Offset) > repackRead {
					break
				}
				end = int64(e.Offset) + int64(e.Length)
				n++
			}
			start := int64(entries[0].Offset)
			b, err := p.v.LoadPackRange(ctx, id, start, end-start)
			if errors.Is(err, repo.ErrDamaged) {
				damaged = true
				break
			}
			if err != nil {
				return nil, err
			}
			for _, e := range entries[:n] {
				sealed := b[int64(e.Offset)-start : int64(e.Offset)-start+int64(e.Length)]
				if scratch, err = p.v.AuthenticateBlob(e.Kind, e.ID, sealed, scratch); err != nil {
					damaged = true
					continue
				}
				pw := open[e.Kind]
				if pw == nil {
					pw = pack.NewWriter()
					open[e.Kind] = pw
				}
				if pw.Count() > 0 && pw.Size()+len(sealed) > pack.TargetSize {
					if err := store(pw); err != nil {
						return nil, err
					}
				}
				pw.Add(e.Kind, e.ID, sealed)
				copied = append(copied, e.ID)
				p.res.CopiedBytes += int64(e.Length)
			}
			entries = entries[n:]
		}
		if damaged {
			p.res.Unreadable++
			p.packs[id].unreadable = true
			continue
		}
		done = append(done, id)
		p.res.Repacked++
		p.res.RepackedBytes += p.packs[id].size
	}
	for _, kind := range []keys.Kind{keys.KindData, keys.KindTree} {
		if pw := open[kind]; pw != nil && pw.Count() > 0 {
			if err := store(pw); err != nil {
				return nil, err
			}
		}
	}
	if err := saveIndex(); err != nil {
		return nil, err
	}
	for _, id := range copied {
		p.copied[id] = true
	}
	return done, nil
}

// mark saves the mark of packs, signed by the owner. With a zero margin it
// is due at once: the points are listed again, the new ones walked, and
// its packs decided in this run.
func (p *pruner) mark(ctx context.Context, packs []keys.ID) error {
	p.count(packs)
	if len(packs) == 0 {
		return nil
	}
	id, err := guard.NewMarkID()
	if err != nil {
		return err
	}
	m := &guard.Mark{Area: p.v.ID(), ID: id, Created: p.now().UTC(), Margin: p.opts.Margin, Packs: guard.SortPacks(packs)}
	if err := p.st.Save(ctx, guard.MarksPrefix+id.String(), m.Encode(p.opts.Owner)); err != nil {
		return fmt.Errorf("save prune mark: %w", err)
	}
	// Backups count the margin from when they could first see the mark;
	// a save that took long eats into it.
	if d := guard.Elapsed(m.Created, p.now()); m.Margin > 0 && d > m.Margin/4 {
		if err := p.st.Delete(ctx, guard.MarksPrefix+id.String()); err != nil {
			return fmt.Errorf("remove late prune mark: %w", err)
		}
		return fmt.Errorf("saving the prune mark took %s, more than a quarter of the margin: nothing was marked, run prune again", d.Round(time.Millisecond))
	}
	p.newMark = m
	for _, pk := range m.Packs {
		p.markOf[pk] = m
	}
	p.res.DueAt = m.Created.Add(m.Margin)
	if m.Margin > 0 {
		return nil
	}
	// Due at once: decided against the points as they are now.
	roots, err := p.loadPoints(ctx)
	if err != nil {
		return err
	}
	if err := p.walk(ctx, roots, false); err != nil {
		return err
	}
	if err := p.decide(ctx, []*guard.Mark{m}); err != nil {
		return err
	}
	p.done = append(p.done, m)
	return nil
}

// supersede rewrites the index files that name packs leaving the index
// (packs to delete, packs of marks not decided yet, packs gone) or that are
// damaged, without those packs; adds the packs that stay but that no index
// file names (kept packs of marks, needed orphans); saves the new files and
// then deletes the old ones.
func (p *pruner) supersede(ctx context.Context) error {
	leaving := func(id keys.ID) bool {
		return p.doomed[id] || p.missing[id] || p.markOf[id] != nil && !p.survivors[id]
	}
	var old []keys.ID
	for _, f := range p.files {
		if f.damaged || slices.ContainsFunc(f.packs, leaving) {
			old = append(old, f.id)
		}
	}
	var out index.File
	entries := 0
	var written []keys.ID
	flush := func() error {
		if len(out.Packs) == 0 {
			return nil
		}
		id, err := p.v.SaveObject(ctx, repo.IndexPrefix, keys.KindIndex, out.Encode())
		if err != nil {
			return err
		}
		written = append(written, id)
		out, entries = index.File{}, 0
		return nil
	}
	add := func(pb index.PackBlobs) error {
		out.Packs = append(out.Packs, pb)
		if entries += len(pb.Entries); entries >= indexBatch {
			return flush()
		}
		return nil
	}
	seen := make(map[keys.ID]bool)
	for _, fid := range old {
		f, err := p.v.ReadIndexFile(ctx, fid)
		if errors.Is(err, repo.ErrDamaged) {
			continue // its packs were read from their trailers
		}
		if err != nil {
			return err
		}
		for _, pb := range f.Packs {
			if !leaving(pb.Pack) && !seen[pb.Pack] {
				seen[pb.Pack] = true
				if err := add(pb); err != nil {
					return err
				}
			}
		}
	}
	for _, id := range sortedKeys(p.packs) {
		info := p.packs[id]
		if info.indexed || info.entries == nil || seen[id] || leaving(id) || info.live == 0 && !p.survivors[id] {
			continue
		}
		if err := add(index.PackBlobs{Pack: id, Entries: info.entries}); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	p.res.IndexWritten += len(written)
	old = slices.DeleteFunc(old, func(id keys.ID) bool { return slices.Contains(written, id) }) // saved again, same content
	p.res.IndexDeleted = len(old)
	return par.Range(ctx, len(old), walkers, func(ctx context.Context, i int) error {
		return p.v.DeleteObject(ctx, repo.IndexPrefix, old[i])
	})
}

func (p *pruner) deletePacks(ctx context.Context) error {
	doomed := sortedKeys(p.doomed)
	return par.Range(ctx, len(doomed), walkers, func(ctx context.Context, i int) error {
		return p.v.DeletePack(ctx, doomed[i])
	})
}

// removeMarks deletes the marks acted on, and those the owner did not sign,
// with their keep objects.
func (p *pruner) removeMarks(ctx context.Context) error {
	ids := append([]guard.MarkID(nil), p.invalid...)
	for _, m := range p.done {
		ids = append(ids, m.ID)
	}
	for _, id := range ids {
		var names []string
		err := p.st.List(ctx, guard.KeepsPrefix+id.String()+"/", func(fi storage.Info) error {
			names = append(names, fi.Name)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list keeps of prune mark %s: %w", id, err)
		}
		for _, n := range append(names, guard.MarksPrefix+id.String()) {
			if err := p.st.Delete(ctx, n); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("remove prune mark %s: %w", id, err)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[keys.ID]V) []keys.ID {
	out := make([]keys.ID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return guard.SortPacks(out)
}

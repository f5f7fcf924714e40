// Package check verifies a vault: its structure (every index file, pack
// trailer, point and tree part authenticates and every referenced chunk is
// indexed in a pack that exists), and optionally every stored byte, or
// those of a subset of the packs.
package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

// Options select how deep to check.
type Options struct {
	ReadData bool // authenticate and decompress every blob of every pack
	// Subset, with ReadData, reads only the packs it selects; nil reads
	// them all.
	Subset *Subset
	// Problem is called for each problem found, as it is found.
	Problem func(Problem)
}

// Subset selects the packs a check reads, as restic's --read-data-subset:
// either a share of the packs chosen at random in each run ("10%", "2.5%"),
// which covers the whole vault in the long run, or group n of m ("1/5"):
// the packs whose name, its first 8 bytes as a big-endian number, is n-1
// modulo m, so that checks with 1/m, 2/m, ..., m/m read every pack once
// (packs written in between fall into any group).
type Subset struct {
	percent float64 // > 0: a random share
	n, m    uint64  // else group n of m
}

// ParseSubset parses "P%" (0 < P ≤ 100) or "n/m" (1 ≤ n ≤ m).
func ParseSubset(s string) (*Subset, error) {
	bad := func(why string) error {
		return fmt.Errorf("read-data subset %q: %s (use a percentage such as 10%%, or n/m such as 1/5)", s, why)
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) || v <= 0 || v > 100 {
			return nil, bad("the percentage must be above 0 and at most 100")
		}
		return &Subset{percent: v}, nil
	}
	ns, ms, ok := strings.Cut(s, "/")
	if !ok {
		return nil, bad("not a percentage or a fraction")
	}
	n, err1 := strconv.ParseUint(ns, 10, 64)
	m, err2 := strconv.ParseUint(ms, 10, 64)
	if err1 != nil || err2 != nil || n < 1 || n > m {
		return nil, bad("n and m must be whole numbers with 1 <= n <= m")
	}
	return &Subset{n: n, m: m}, nil
}

func (s *Subset) String() string {
	if s.percent > 0 {
		return strconv.FormatFloat(s.percent, 'f', -1, 64) + "%"
	}
	return fmt.Sprintf("%d/%d", s.n, s.m)
}

// choose returns the packs of the subset among packs.
func (s *Subset) choose(packs []keys.ID) map[keys.ID]bool {
	out := make(map[keys.ID]bool)
	if s.percent > 0 {
		k := int(math.Ceil(float64(len(packs)) * s.percent / 100))
		for _, i := range rand.Perm(len(packs))[:k] {
			out[packs[i]] = true
		}
		return out
	}
	for _, id := range packs {
		if binary.BigEndian.Uint64(id[:8])%s.m == s.n-1 {
			out[id] = true
		}
	}
	return out
}

// Problem is one thing found wrong.
type Problem struct {
	What string // "pack", "index", "point", "tree", "chunk", "file"
	Name string // the object's ID or the file's path
	Err  error
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %v", p.What, p.Name, p.Err) }

// Result summarises a check.
type Result struct {
	Packs, Points, Trees, Chunks int
	// Unreadable counts blobs sealed under keys the checker does not
	// hold (another certificate's epoch); they are neither checked nor
	// counted as damage.
	Unreadable int
	// PacksRead counts the packs whose bytes were read (with ReadData).
	PacksRead int
	BytesRead int64
	// Stale counts packs the index names that the storage no longer holds
	// and that no point needs: a prune deleted them while the check ran,
	// or an index file still names them after an interrupted prune (the
	// next prune supersedes it). Not a problem.
	Stale    int
	Problems []Problem
}

// ErrDamaged is returned when the check found problems.
var ErrDamaged = errors.New("the vault is damaged")

type checker struct {
	v    *repo.Vault
	opts Options

	// byPack groups the index by pack, built once: what each pack is
	// supposed to hold.
	byPack map[keys.ID][]packBlob
	// read holds the packs whose bytes are read.
	read map[keys.ID]bool
	// missing holds the indexed packs the storage does not hold, true
	// once a point is found to need one of their blobs.
	missing map[keys.ID]bool

	mu      sync.Mutex
	res     Result
	damaged map[keys.ID]error // blobs that failed, for naming affected files
}

type packBlob struct {
	id  keys.ID
	loc index.Location
}

func (c *checker) problem(what, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Problem{What: what, Name: name, Err: err}
	c.res.Problems = append(c.res.Problems, p)
	if c.opts.Problem != nil {
		c.opts.Problem(p)
	}
}

// Run checks v. It returns the result and ErrDamaged when problems were
// found; other errors mean the check itself could not run.
func Run(ctx context.Context, v *repo.Vault, opts Options) (*Result, error) {
	c := &checker{v: v, opts: opts, damaged: make(map[keys.ID]error), missing: make(map[keys.ID]bool)}
	// Points first: everything a listed point needs was indexed before the
	// point was written, so a backup committing meanwhile is not misread as
	// damage.
	points, err := v.Points(ctx)
	if err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return nil, err
		}
		c.problem("point", "", err)
	}
	if err := v.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return nil, err
		}
		c.problem("index", "", err)
	}
	if _, err := v.AdoptOrphanPacks(ctx, false); err != nil {
		return nil, err
	}
	if err := c.packs(ctx); err != nil {
		return nil, err
	}
	if err := c.points(ctx, points); err != nil {
		return nil, err
	}
	for _, id := range c.v.Index().Packs() {
		needed, gone := c.missing[id]
		switch {
		case needed:
			c.problem("pack", id.String(), errors.New("indexed but missing from storage"))
		case gone:
			c.res.Stale++
		}
	}
	if len(c.res.Problems) > 0 {
		return &c.res, ErrDamaged
	}
	return &c.res, nil
}

// packs checks that every indexed pack exists and that its trailer agrees
// with the index; with ReadData it also reads every blob.
func (c *checker) packs(ctx context.Context) error {
	stored, err := c.v.ListPacks(ctx)
	if err != nil {
		return err
	}
	present := make(map[keys.ID]bool, len(stored))
	for _, id := range stored {
		present[id] = true
	}
	indexed := c.v.Index().Packs()
	c.res.Packs = len(indexed)
	c.byPack = make(map[keys.ID][]packBlob, len(indexed))
	c.v.Index().Each(func(blob keys.ID, loc index.Location) bool {
		c.byPack[loc.Pack] = append(c.byPack[loc.Pack], packBlob{blob, loc})
		return true
	})
	for _, id := range stored {
		if !c.v.Index().HasPack(id) {
			// Orphans with a good trailer were adopted before this runs.
			c.problem("pack", id.String(), errors.New("covered by no index file and its trailer does not authenticate"))
		}
	}
	var readable []keys.ID
	for _, id := range indexed {
		if present[id] {
			readable = append(readable, id)
			continue
		}
		c.gone(id) // a problem only if a point needs it (see Run)
	}
	c.read = make(map[keys.ID]bool)
	switch {
	case !c.opts.ReadData:
	case c.opts.Subset != nil:
		c.read = c.opts.Subset.choose(readable)
	default:
		for _, id := range readable {
			c.read[id] = true
		}
	}
	c.res.PacksRead = len(c.read)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, id := range indexed {
		if !present[id] {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.pack(ctx, id)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// gone records a pack deleted since the listing (a prune ran meanwhile):
// a problem only if a point needs it.
func (c *checker) gone(id keys.ID) {
	c.mu.Lock()
	c.missing[id] = false
	c.mu.Unlock()
	c.markPackDamaged(id, errors.New("pack missing"))
}

func (c *checker) markPackDamaged(id keys.ID, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.byPack[id] {
		c.damaged[b.id] = err
	}
}

func (c *checker) pack(ctx context.Context, id keys.ID) {
	entries, _, err := c.v.PackTrailer(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		c.gone(id)
		return
	}
	if err != nil {
		c.problem("pack", id.String(), err)
		if !c.read[id] {
			c.markPackDamaged(id, err)
			return
		}
	}
	for _, e := range entries {
		loc, ok := c.v.Index().Lookup(e.ID)
		if ok && loc.Pack == id && (loc.Offset != e.Offset || loc.Length != e.Length) {
			c.problem("pack", id.String(), fmt.Errorf("blob %s: index and trailer disagree", e.ID.Short()))
		}
	}
	if !c.read[id] {
		return
	}
	b, err := c.v.LoadPack(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		c.gone(id)
		return
	}
	if err != nil {
		c.problem("pack", id.String(), err)
		c.markPackDamaged(id, err)
		return
	}
	c.mu.Lock()
	c.res.BytesRead += int64(len(b))
	c.mu.Unlock()
	if pack.Name(b) != id {
		c.problem("pack", id.String(), errors.New("content does not match its name (bytes changed in storage)"))
	}
	// Authenticate every blob the index places in this pack, trailer or not.
	hashers := map[keys.Kind]*keys.Hasher{
		keys.KindData: c.v.Keys().NewHasher(keys.KindData),
		keys.KindTree: c.v.Keys().NewHasher(keys.KindTree),
	}
	for _, pb := range c.byPack[id] {
		blob, loc := pb.id, pb.loc
		if uint64(loc.Offset)+uint64(loc.Length) > uint64(len(b)) {
			c.blobDamaged(blob, loc.Kind, id, errors.New("beyond the end of the pack"))
			continue
		}
		plain, err := c.v.OpenBlob(loc.Kind, blob, b[loc.Offset:loc.Offset+loc.Length])
		if errors.Is(err, keys.ErrOtherKey) {
			// Sealed for another certificate's epoch: not readable with
			// the keys at hand, and not damage.
			c.mu.Lock()
			c.res.Unreadable++
			c.mu.Unlock()
			continue
		}
		if err == nil && hashers[loc.Kind].Sum(plain) != blob {
			err = errors.New("content does not hash to its ID")
		}
		if err != nil {
			c.blobDamaged(blob, loc.Kind, id, err)
			continue
		}
		c.mu.Lock()
		c.res.Chunks++
		c.mu.Unlock()
	}
}

func (c *checker) blobDamaged(blob keys.ID, kind keys.Kind, packID keys.ID, err error) {
	what := kind.String()
	if kind == keys.KindData {
		what = "chunk"
	}
	c.problem(what, blob.String(), fmt.Errorf("in pack %s: %w", packID.Short(), err))
	c.mu.Lock()
	c.damaged[blob] = err
	c.mu.Unlock()
}

// points walks every point's tree: every part must load and every chunk be
// indexed; files that need a damaged or missing chunk are named.
func (c *checker) points(ctx context.Context, points []*repo.Point) error {
	c.res.Points = len(points)
	seen := make(map[keys.ID]bool)
	for _, p := range points {
		c.need(p.Root)
		root, err := c.v.Part(ctx, p.Root)
		if err != nil || len(root.Nodes) != 1 || root.Nodes[0].Type != tree.Dir {
			if err == nil {
				err = errors.New("root is not a single directory")
			}
			c.problem("point", p.ID.String(), err)
			continue
		}
		label := p.ID.Short() + ":"
		if err := c.walk(ctx, &root.Nodes[0], label, seen); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) walk(ctx context.Context, dir *tree.Node, where string, seen map[keys.ID]bool) error {
	for _, ref := range dir.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen[ref.ID] {
			continue // an identical listing was checked already
		}
		seen[ref.ID] = true
		c.need(ref.ID)
		part, err := c.v.Part(ctx, ref.ID)
		if err != nil {
			c.problem("tree", ref.ID.String(), fmt.Errorf("listing of %s: %w", where, err))
			continue
		}
		c.res.Trees++
		for i := range part.Nodes {
			n := &part.Nodes[i]
			p := where + "/" + n.Name
			if where[len(where)-1] == ':' {
				p = where + n.Name
			}
			switch n.Type {
			case tree.Dir:
				if err := c.walk(ctx, n, p, seen); err != nil {
					return err
				}
			case tree.File:
				c.file(n, p)
			}
		}
	}
	return nil
}

// need notes that a point needs blob id, for the report of missing packs.
func (c *checker) need(id keys.ID) {
	if loc, ok := c.v.Index().Lookup(id); ok {
		if _, gone := c.missing[loc.Pack]; gone {
			c.missing[loc.Pack] = true
		}
	}
}

func (c *checker) file(n *tree.Node, p string) {
	for _, e := range n.Extents {
		c.need(e.ID)
		if _, ok := c.v.Index().Lookup(e.ID); !ok {
			c.problem("file", p, fmt.Errorf("chunk %s at offset %d is missing from the vault", e.ID.Short(), e.Offset))
			return
		}
		c.mu.Lock()
		err, bad := c.damaged[e.ID]
		c.mu.Unlock()
		if bad {
			c.problem("file", p, fmt.Errorf("chunk %s at offset %d is damaged: %v", e.ID.Short(), e.Offset, err))
			return
		}
	}
}

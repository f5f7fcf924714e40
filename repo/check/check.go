// Package check verifies a vault: its structure (every index file, pack
// trailer, point and tree part authenticates and every referenced chunk is
// indexed in a pack that exists), and optionally every stored byte, or
// those of a subset of the packs.
package check

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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

// String returns the problem as one line; a name holding a path (a file's,
// a listing's) is quoted, as %q does, so that no file name can forge a
// line.
func (p Problem) String() string {
	if p.What == "file" || p.What == "tree" && strings.Contains(p.Name, ":") {
		return fmt.Sprintf("%s %q: %v", p.What, p.Name, p.Err)
	}
	return fmt.Sprintf("%s %s: %v", p.What, p.Name, p.Err)
}

// MarshalJSON gives the problem as 'azfs check --json' lists it: what,
// name and the error's message (docs/cli.md).
func (p Problem) MarshalJSON() ([]byte, error) {
	msg := ""
	if p.Err != nil {
		msg = p.Err.Error()
	}
	return json.Marshal(struct {
		What  string `json:"what"`
		Name  string `json:"name"`
		Error string `json:"error"`
	}{p.What, p.Name, msg})
}

// Result summarises a check.
type Result struct {
	Packs  int `json:"packs"`
	Points int `json:"points"`
	Trees  int `json:"tree_parts"`
	Chunks int `json:"chunks"`
	// PacksRead counts the packs whose bytes were read (with ReadData).
	PacksRead int   `json:"packs_read"`
	BytesRead int64 `json:"bytes_read"`
	// Unreadable counts blobs sealed under keys the checker does not
	// hold (another certificate's epoch); they are neither checked nor
	// counted as damage.
	Unreadable int `json:"unreadable"`
	// Stale counts packs the index names that the storage no longer holds
	// and that no point needs: a prune deleted them while the check ran,
	// or an index file still names them after an interrupted prune (the
	// next prune supersedes it). Not a problem.
	Stale int `json:"-"`
	// Redundant counts copies of blobs found missing or damaged whose
	// blob has a good copy elsewhere: nothing is lost, reads use the good
	// copy, and the next prune drops the bad one. Not a problem.
	Redundant int `json:"redundant"`
	// Remembered is set when the check stored what it found damaged in
	// the vault, for the next backup to store again (see repo's damage
	// records); RememberErr says why it could not.
	Remembered  bool      `json:"damage_remembered"`
	RememberErr error     `json:"-"`
	Problems    []Problem `json:"problems"`
}

// MarshalJSON gives the result as 'azfs check --json' prints it
// (docs/cli.md): Problems is [] when there are none.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return json.Marshal(plain(r))
}

// ErrDamaged is returned when the check found problems. It wraps
// repo.ErrDamaged, the one sentinel of damaged vault data: check's own so
// that a caller can tell a check that ran to its end and found problems from
// one that failed.
var ErrDamaged = fmt.Errorf("check found %w", repo.ErrDamaged)

type checker struct {
	v    *repo.Area
	opts Options

	// byPack groups every copy the index knows by pack, built once: what
	// each pack is supposed to hold.
	byPack map[keys.ID][]packBlob
	// read holds the packs whose bytes are read.
	read map[keys.ID]bool
	// missing holds the indexed packs the storage does not hold, true
	// once a point is found to need one of their blobs.
	missing map[keys.ID]bool

	mu sync.Mutex
	// badCopies holds the copies found missing or damaged, and why;
	// whether each is a problem depends on the blob's other copies.
	badCopies map[copyKey]error
	// badPacks holds the packs whose trailer or bytes failed.
	badPacks map[keys.ID]error
	res      Result
	// listings caches, per tree part, the problems found under it, with
	// paths relative to its directory: a listing shared by several points
	// is read once but its damaged files are named under each.
	listings map[keys.ID][]Problem
}

type packBlob struct {
	id  keys.ID
	loc index.Location
}

type copyKey struct {
	blob, pack keys.ID
}

func (c *checker) problem(what, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report(Problem{What: what, Name: name, Err: err})
}

// report records p. Called with c.mu held, or from the one goroutine.
func (c *checker) report(p Problem) {
	c.res.Problems = append(c.res.Problems, p)
	if c.opts.Problem != nil {
		c.opts.Problem(p)
	}
}

// Run checks v. It returns the result and ErrDamaged when problems were
// found; other errors mean the check itself could not run. What it finds
// missing or damaged is remembered in the vault (best effort: a
// restore-only credential may not write), so that the next backup stores
// those blobs again.
//
// Problems are reported in an order that depends only on the vault: first
// those of index files and packs, sorted, then per point (oldest first)
// the damaged listings and every file that needs a blob of which no good
// copy is left, in tree order.
func Run(ctx context.Context, v *repo.Area, opts Options) (*Result, error) {
	c := &checker{v: v, opts: opts, missing: make(map[keys.ID]bool), badCopies: make(map[copyKey]error),
		badPacks: make(map[keys.ID]error), listings: make(map[keys.ID][]Problem)}
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
	c.judgeCopies()
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
	if err := v.SaveDamage(ctx); err != nil {
		c.res.RememberErr = err // a restore-only credential, say: reported, not fatal
	} else {
		c.res.Remembered = true
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
	slices.SortFunc(indexed, func(a, b keys.ID) int { return bytes.Compare(a[:], b[:]) })
	c.res.Packs = len(indexed)
	c.byPack = make(map[keys.ID][]packBlob, len(indexed))
	c.v.Index().EachCopy(func(blob keys.ID, loc index.Location) bool {
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
	for _, id := range readable {
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
	c.v.Index().MarkPackBad(id)
}

// packDamaged records that pack id failed as a whole (its trailer, or its
// name). Its copies are not taken as damaged: those its bytes are read for
// are judged one by one, and those of a pack not read are not known to be
// damaged (a pack cut short keeps the blobs before the cut, and the listing
// finds those after it; remembered as damaged, intact copies would be named
// lost by every later check).
func (c *checker) packDamaged(id keys.ID, err error) {
	c.mu.Lock()
	c.badPacks[id] = err
	c.mu.Unlock()
}

// copyDamaged records that the copy of blob in pack is damaged.
func (c *checker) copyDamaged(blob, packID keys.ID, err error) {
	c.v.NoteBadCopy(blob, packID)
	c.mu.Lock()
	c.badCopies[copyKey{blob, packID}] = err
	c.mu.Unlock()
}

func (c *checker) pack(ctx context.Context, id keys.ID) {
	entries, _, err := c.v.PackTrailer(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		c.gone(id)
		return
	}
	if err != nil {
		c.packDamaged(id, err)
		if !c.read[id] {
			return
		}
	}
	if len(entries) > 0 {
		here := make(map[keys.ID]index.Location, len(c.byPack[id]))
		for _, b := range c.byPack[id] {
			here[b.id] = b.loc
		}
		for _, e := range entries {
			if loc, ok := here[e.ID]; ok && (loc.Offset != e.Offset || loc.Length != e.Length) {
				c.packDamaged(id, fmt.Errorf("blob %s: index and trailer disagree", e.ID.Short()))
			}
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
		c.problem("pack", id.String(), err) // could not be read: not known to be damaged
		return
	}
	c.mu.Lock()
	c.res.BytesRead += int64(len(b))
	c.mu.Unlock()
	if pack.Name(b) != id {
		c.packDamaged(id, errors.New("content does not match its name (bytes changed in storage)"))
	}
	// Authenticate every copy the index places in this pack, trailer or
	// not.
	hashers := map[keys.Kind]*keys.Hasher{
		keys.KindData: c.v.Keys().NewHasher(keys.KindData),
		keys.KindTree: c.v.Keys().NewHasher(keys.KindTree),
	}
	for _, pb := range c.byPack[id] {
		blob, loc := pb.id, pb.loc
		if uint64(loc.Offset)+uint64(loc.Length) > uint64(len(b)) {
			c.copyDamaged(blob, id, errors.New("beyond the end of the pack"))
			continue
		}
		plain, err := c.v.OpenBlob(loc.Kind, blob, append([]byte(nil), b[loc.Offset:loc.Offset+loc.Length]...))
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
			c.copyDamaged(blob, id, err)
			continue
		}
		c.mu.Lock()
		c.res.Chunks++
		c.mu.Unlock()
	}
}

// judgeCopies reports, once every pack has been looked at, the damaged
// packs and copies that lose data: those holding a blob of which no good
// copy is left (of a pack whose bytes were not read, no good copy
// elsewhere: its own copies are not known to be good). The others are
// counted as redundant.
func (c *checker) judgeCopies() {
	idx := c.v.Index()
	var found []Problem
	for id, err := range c.badPacks {
		lost := false
		for _, b := range c.byPack[id] {
			if !c.goodCopy(b.id, id) {
				lost = true
				break
			}
		}
		if lost {
			if !c.read[id] {
				err = fmt.Errorf("%w (its blobs were not read: check --read-data tells which are damaged)", err)
			}
			found = append(found, Problem{What: "pack", Name: id.String(), Err: err})
		} else {
			c.res.Redundant++
		}
	}
	for k, err := range c.badCopies {
		if _, ok := idx.Good(k.blob); ok {
			c.res.Redundant++
			continue
		}
		loc, _ := idx.Lookup(k.blob)
		what := loc.Kind.String()
		if loc.Kind == keys.KindData {
			what = "chunk"
		}
		found = append(found, Problem{What: what, Name: k.blob.String(), Err: fmt.Errorf("in pack %s: %w", k.pack.Short(), err)})
	}
	slices.SortFunc(found, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.What, b.What), strings.Compare(a.Name, b.Name), strings.Compare(a.Err.Error(), b.Err.Error()))
	})
	for _, p := range found {
		c.report(p)
	}
}

// goodCopy reports whether blob has a copy not known to be bad, counting
// one in the damaged pack packID only if its bytes were read.
func (c *checker) goodCopy(blob, packID keys.ID) bool {
	idx := c.v.Index()
	for _, loc := range idx.Locations(blob) {
		if (loc.Pack != packID || c.read[packID]) && !idx.IsBad(blob, loc.Pack) {
			return true
		}
	}
	return false
}

// points walks every point's tree: every part must load and every chunk
// have a good copy; files that need a blob without one are named, under
// every point that has them.
func (c *checker) points(ctx context.Context, points []*repo.Point) error {
	c.res.Points = len(points)
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
		found, err := c.dir(ctx, &root.Nodes[0])
		if err != nil {
			return err
		}
		for _, f := range found {
			c.report(under(p.ID.Short()+":", f))
		}
	}
	return nil
}

// under returns p, found in a listing, named from where.
func under(where string, p Problem) Problem {
	if where[len(where)-1] == ':' || p.Name == "" {
		p.Name = where + p.Name
	} else {
		p.Name = where + "/" + p.Name
	}
	return p
}

// dir returns the problems under a directory, with paths relative to it.
func (c *checker) dir(ctx context.Context, dir *tree.Node) ([]Problem, error) {
	var found []Problem
	for _, ref := range dir.Parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		inPart, err := c.listing(ctx, ref.ID)
		if err != nil {
			return nil, err
		}
		found = append(found, inPart...)
	}
	return found, nil
}

// listing returns the problems under the tree part id, with paths relative
// to its directory, reading the part the first time only.
func (c *checker) listing(ctx context.Context, id keys.ID) ([]Problem, error) {
	if found, ok := c.listings[id]; ok {
		return found, nil
	}
	c.need(id)
	var found []Problem
	part, err := c.v.Part(ctx, id)
	if err != nil {
		found = append(found, Problem{What: "tree", Name: "", Err: fmt.Errorf("listing %s: %w", id.Short(), err)})
	} else {
		c.res.Trees++
		for i := range part.Nodes {
			n := &part.Nodes[i]
			switch n.Type {
			case tree.Dir:
				sub, err := c.dir(ctx, n)
				if err != nil {
					return nil, err
				}
				for _, p := range sub {
					found = append(found, under(n.Name, p))
				}
			case tree.File:
				if err := c.file(n); err != nil {
					found = append(found, Problem{What: "file", Name: n.Name, Err: err})
				}
			}
		}
	}
	c.listings[id] = found
	return found, nil
}

// need notes that a point needs blob id, for the report of missing packs.
func (c *checker) need(id keys.ID) {
	idx := c.v.Index()
	if _, ok := idx.Good(id); ok {
		return
	}
	for _, loc := range idx.Locations(id) {
		if _, gone := c.missing[loc.Pack]; gone {
			c.missing[loc.Pack] = true
		}
	}
}

// file returns why a file cannot be read back whole, if it cannot.
func (c *checker) file(n *tree.Node) error {
	idx := c.v.Index()
	for _, e := range n.Extents {
		c.need(e.ID)
		if !idx.Has(e.ID) {
			return fmt.Errorf("chunk %s at offset %d is missing from the vault", e.ID.Short(), e.Offset)
		}
		if _, ok := idx.Good(e.ID); !ok {
			return fmt.Errorf("chunk %s at offset %d is damaged or missing in every copy", e.ID.Short(), e.Offset)
		}
	}
	return nil
}

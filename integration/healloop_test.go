package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	azkeys "github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
	"golang.org/x/sys/unix"
)

// healRounds is the number of backup rounds TestHealLoop makes in its
// short form; AZFS_HEALLOOP=N (make torture) makes N.
const healRounds = 10

// healMountEvery is how often, in rounds, TestHealLoop also reads every
// point through a real mount; the last round always does.
const healMountEvery = 4

// TestHealLoop is the trial of issue 11: backups of a changing tree (files
// added, rewritten, deleted and renamed; many unchanged for many rounds, so
// that their chunks are shared by many points; large files of several
// chunks), and between them packs lost, bytes flipped and packs truncated
// at random (data packs mostly, tree packs sometimes), with or without a
// check, a check of half the data, reads through a mount or a check
// --read-data before the next backup, sometimes without the file cache,
// sometimes with backup --verify-reused, and sometimes a prune after it.
// After every backup, prune and check --read-data, it checks that every
// file of every point whose data exists reads back exactly, and that check
// --read-data and repair name precisely the rest.
//
// What is lost is judged from the vault's bytes, not from azfs's own
// verdicts: the test opens the vault in process with the owner's keys,
// loads the index (every copy of every blob) and authenticates every copy
// itself from the pack's bytes as stored. A blob is good when one of its
// copies authenticates; a file of a point is readable when every listing
// on its path and every chunk it needs is good. The test also keeps the
// copies it damaged (all of a lost pack, those past a cut, the one a
// flipped byte lies in) and requires that exactly those fail: the judge is
// checked too. Then:
//
//   - every readable file reads back with the content the source had when
//     its point was taken, through Area.LoadBlob (every copy tried) every
//     round and through a real mount every healMountEvery rounds and in the
//     last; a blob that is not good never reads (an error, never bytes);
//   - check --read-data names every file that is not readable under every
//     point that has it (a lost listing by its directory, a lost root as the
//     point), and nothing else; it exits 0 exactly when nothing is lost; the
//     blobs and packs it names are ones with no good copy or that were
//     damaged; repair (a dry run) reports the same;
//   - a check of the structure or of a subset of the data names nothing
//     that is readable;
//   - a prune (which refuses, in one line, while points have lost data)
//     leaves every file that was readable readable;
//   - backups heal: after a backup, every file whose content was in the
//     source it read is readable, unless a listing on its path is lost or a
//     chunk it needs had its damage unknown to the backup (a flipped byte no
//     check, read or --verify-reused had found: the backup reuses such a
//     chunk by design). The test computes those chunks before each backup
//     from the index as the backup sees it (damage records applied, packs
//     gone or cut short found from the listing).
//
// The random choices come from a seed that is logged; AZFS_HEALLOOP_SEED
// replays one: the same tree changes and the same damage to packs of the
// same age (chunk boundaries and pack names depend on the vault's keys, so
// the bytes hit vary). AZFS_HEALLOOP=N makes N rounds instead of
// healRounds.
func TestHealLoop(t *testing.T) {
	requireFUSE(t)
	rounds := trialRounds(t, "AZFS_HEALLOOP", healRounds)
	seed := trialSeed(t, "AZFS_HEALLOOP_SEED")
	t.Logf("heal loop: %d rounds, seed %d (replay with AZFS_HEALLOOP_SEED=%d)", rounds, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6865616c))

	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	h := &healLoop{t: t, e: e, rng: rng, src: src, open: ownerOpener(t, e),
		damaged: make(map[copyRef]bool), touched: make(map[azkeys.ID]bool), flipped: make(map[string]bool),
		reported: make(map[string]bool), healed: make(map[string]bool)}
	tree := newSizedTree(t, src, rng, 1<<20, 4<<20)
	for r := range rounds {
		if r > 0 {
			tree.mutate()
		}
		h.backup(r)
		last := r == rounds-1
		readable := h.verify(fmt.Sprintf("round %d, after its backup", r), verifyOpts{afterBackup: true, readData: true, mount: last || (r+1)%healMountEvery == 0})
		if rng.IntN(4) == 0 {
			h.prune(r, readable)
		}
		if t.Failed() {
			t.Fatalf("stopped after round %d (replay with AZFS_HEALLOOP_SEED=%d)", r, seed)
		}
		if last {
			break
		}
		for range 1 + rng.IntN(2) {
			h.damage()
		}
		h.detect(r)
		if t.Failed() {
			t.Fatalf("stopped after round %d (replay with AZFS_HEALLOOP_SEED=%d)", r, seed)
		}
	}
	s := &h.stats
	lostNow, filesNow, healed := 0, 0, 0
	for _, p := range h.points {
		if p.lost > 0 {
			lostNow++
			filesNow += p.lost
		}
		if p.healed {
			healed++
		}
	}
	t.Logf("heal loop summary: %d rounds (seed %d); %d packs damaged: %d lost, %d flipped, %d truncated (%d of them tree packs); "+
		"%d backups (%d without the file cache, %d with --verify-reused), %d checks of the structure or half the data, %d check --read-data verifications of %d points in all, "+
		"%d mount rounds, %d prunes done and %d refused; %d points lost files or listings at some time (%d distinct ones reported lost), %d points and %d files or listings of them healed later; %d points lost some still at the end (%d files or listings)",
		rounds, seed, s.lost+s.flipped+s.truncated, s.lost, s.flipped, s.truncated, s.treePacks,
		rounds, s.noCache, s.verifyReused, s.lightChecks, s.verifications, s.pointsVerified,
		s.mounts, s.prunes, s.pruneRefused, s.everLost, len(h.reported), healed, len(h.healed), lostNow, filesNow)
}

// healLoop is the state of TestHealLoop.
type healLoop struct {
	t    *testing.T
	e    *env
	rng  *rand.Rand
	src  string
	open func() *repo.Area

	points []*healPoint
	// source holds the SHA-256 of every file the last backup read, and
	// unknown the blobs whose damage that backup could not know.
	source  map[string]bool
	unknown map[azkeys.ID]bool
	// damaged holds every copy the loop damaged, touched every pack it
	// damaged (a copy in it, or its trailer), flipped the bytes it flipped
	// (pack name and offset: flipping one twice would mend it).
	damaged map[copyRef]bool
	touched map[azkeys.ID]bool
	flipped map[string]bool
	// reported holds every point, listing and file ever found lost,
	// healed those of them found whole again later.
	reported, healed map[string]bool
	// packs is every pack the index has named, verified counts the
	// verifications.
	packs    map[azkeys.ID]*trialPack
	verified int
	stats    struct {
		lost, flipped, truncated, treePacks int
		noCache, verifyReused, lightChecks  int
		verifications, pointsVerified       int
		mounts, everLost                    int
		prunes, pruneRefused                int
	}
}

// healPoint is a point of the loop and the files its backup read.
type healPoint struct {
	id    string
	files map[string]string // SHA-256 by path relative to the source
	lost  int               // files and listings lost at the last verification
	ever  bool              // lost some at a verification
	// healed is set when the point read whole at a verification after
	// one at which it had lost some.
	healed bool
}

// copyRef names one copy of a blob.
type copyRef struct {
	blob, pack azkeys.ID
}

// trialPack is a pack as the index describes it.
type trialPack struct {
	id     azkeys.ID
	kind   azkeys.Kind
	copies []index.Location
	blobs  []azkeys.ID // parallel to copies
	gone   bool        // deleted by the loop
	born   int         // the verification that first saw it
	size   int64       // as first seen
}

// byOffset sorts a pack's copies by their offset.
type byOffset struct{ p *trialPack }

func (s byOffset) Len() int           { return len(s.p.copies) }
func (s byOffset) Less(i, j int) bool { return s.p.copies[i].Offset < s.p.copies[j].Offset }
func (s byOffset) Swap(i, j int) {
	s.p.copies[i], s.p.copies[j] = s.p.copies[j], s.p.copies[i]
	s.p.blobs[i], s.p.blobs[j] = s.p.blobs[j], s.p.blobs[i]
}

// backup snapshots the source, works out which blobs the backup cannot
// know to be damaged, and backs the source up, without its file cache or
// with --verify-reused at random.
func (h *healLoop) backup(round int) {
	t := h.t
	files := make(map[string]string)
	h.source = make(map[string]bool)
	for rel, en := range snapshot(t, h.src) {
		if en.typ == unix.S_IFREG {
			files[rel] = en.sha
			h.source[en.sha] = true
		}
	}
	h.unknown = h.unknownDamage()
	args := []string{"backup", "--json"}
	var how []string
	if h.rng.IntN(4) == 0 {
		dropFileCache(t, h.e)
		h.stats.noCache++
		how = append(how, "without the file cache")
	}
	if h.rng.IntN(4) == 0 {
		args = append(args, "--verify-reused")
		h.unknown = nil // every reused blob is read first
		h.stats.verifyReused++
		how = append(how, "--verify-reused")
	}
	r := h.e.azfs(append(args, h.src)...)
	if r.code != 0 {
		t.Fatalf("round %d: backup: exit %d\n%s", round, r.code, r)
	}
	out := parseBackup(t, r)
	h.points = append(h.points, &healPoint{id: out.Point, files: files})
	t.Logf("round %d: point %s %s: %d files, %d bytes stored; %d damaged blobs unknown to it",
		round, out.Point[:8], strings.Join(how, ", "), len(files), out.Stats.BytesStored, len(h.unknown))
}

// unknownDamage returns the damaged blobs a backup would reuse: those
// whose preferred copy not known to be bad (after the damage records and
// a pack listing, as a backup sees them) was damaged by the loop.
func (h *healLoop) unknownDamage() map[azkeys.ID]bool {
	ctx := context.Background()
	v := h.open()
	if err := v.LoadIndex(ctx); err != nil {
		h.t.Fatalf("load the index: %v", err)
	}
	if _, err := v.AdoptOrphanPacks(ctx, false); err != nil {
		h.t.Fatalf("list the packs: %v", err)
	}
	out := make(map[azkeys.ID]bool)
	idx := v.Index()
	idx.Each(func(id azkeys.ID, _ index.Location) bool {
		if loc, ok := idx.Good(id); ok && h.damaged[copyRef{id, loc.Pack}] {
			out[id] = true
		}
		return true
	})
	return out
}

// packPath returns the path of pack id in the vault.
func (h *healLoop) packPath(id azkeys.ID) string {
	s := id.String()
	return filepath.Join(h.e.area(), "data", s[:2], s)
}

// damage loses, flips a byte of or truncates one pack of the vault, a
// tree pack one time in four, and records the copies it damaged.
func (h *healLoop) damage() {
	t := h.t
	var data, trees []*trialPack
	for _, p := range h.packs {
		switch {
		case p.gone:
		case p.kind == azkeys.KindTree:
			trees = append(trees, p)
		default:
			data = append(data, p)
		}
	}
	// In an order a replay repeats as far as it can (pack names and
	// layouts depend on the vault's keys): by age, then size.
	byAge := func(ps []*trialPack) {
		sort.Slice(ps, func(i, j int) bool {
			a, b := ps[i], ps[j]
			return a.born < b.born || a.born == b.born && (a.size < b.size || a.size == b.size && a.id.String() < b.id.String())
		})
	}
	byAge(data)
	byAge(trees)
	pool := data
	if len(trees) > 0 && (len(data) == 0 || h.rng.IntN(4) == 0) {
		pool = trees
	}
	if len(pool) == 0 {
		return
	}
	p := pool[h.rng.IntN(len(pool))]
	if p.kind == azkeys.KindTree {
		h.stats.treePacks++
	}
	path := h.packPath(p.id)
	h.touched[p.id] = true
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	var what string
	switch h.rng.IntN(3) {
	case 0:
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		p.gone = true
		for _, b := range p.blobs {
			h.damaged[copyRef{b, p.id}] = true
		}
		h.stats.lost++
		what = "lost"
	case 1:
		// Within a blob mostly, else anywhere (a trailer, a footer).
		var off int64 = -1
		for range 100 {
			if h.rng.IntN(4) == 0 || size == 0 {
				off = h.rng.Int64N(max(size, 1))
			} else {
				c := p.copies[h.rng.IntN(len(p.copies))]
				off = int64(c.Offset) + h.rng.Int64N(int64(c.Length))
			}
			if off < size && !h.flipped[fmt.Sprint(p.id, off)] {
				break
			}
			off = -1
		}
		if off < 0 {
			return
		}
		h.flipped[fmt.Sprint(p.id, off)] = true
		flipByte(t, path, off)
		for i, c := range p.copies {
			if int64(c.Offset) <= off && off < int64(c.Offset)+int64(c.Length) {
				h.damaged[copyRef{p.blobs[i], p.id}] = true
			}
		}
		h.stats.flipped++
		what = fmt.Sprintf("flipped byte %d of %d in", off, size)
	default:
		cut := h.rng.Int64N(max(size, 1))
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		for i, c := range p.copies {
			if int64(c.Offset)+int64(c.Length) > cut {
				h.damaged[copyRef{p.blobs[i], p.id}] = true
			}
		}
		h.stats.truncated++
		what = fmt.Sprintf("truncated to %d of %d bytes", cut, size)
	}
	t.Logf("  %s %s pack %s (%d blobs)", what, p.kind, p.id.Short(), len(p.blobs))
}

// prune prunes the vault as tightly as it can (no margin, every unused
// byte): it may refuse while points have lost data, with one line of
// error, but what it does must leave every file that was readable
// (before, by point) readable.
func (h *healLoop) prune(round int, before map[string][]string) {
	t := h.t
	r := h.e.azfs("prune", "--safety-margin", "0", "--no-backups-running", "--max-unused", "0%")
	label := fmt.Sprintf("round %d, after a prune", round)
	if r.code != 0 {
		h.stats.pruneRefused++
		checkOneLineError(t, r, "azfs: ")
		t.Logf("round %d: prune refused: %s", round, strings.TrimSpace(r.stderr))
	} else {
		h.stats.prunes++
		t.Logf("round %d: pruned: %s", round, strings.Join(strings.Fields(r.stdout+" "+r.stderr), " "))
	}
	after := h.verify(label, verifyOpts{readData: true})
	for id, rels := range before {
		still := make(map[string]bool)
		for _, rel := range after[id] {
			still[rel] = true
		}
		for _, rel := range rels {
			if !still[rel] {
				t.Errorf("%s: point %s: %q was readable before the prune and is not after it", label, id[:8], rel)
			}
		}
	}
}

// detect runs, at random, nothing (two times in five), a check of the
// structure or of half the packs' data (which name only what is lost),
// a check of the structure and a read of every point through a mount, or
// a check --read-data, each with a whole verification, before the next
// backup: the backup knows of the damage they find (mounts remember what
// their reads find).
func (h *healLoop) detect(round int) {
	label := fmt.Sprintf("round %d, after the damage", round)
	switch h.rng.IntN(5) {
	case 0:
		h.stats.lightChecks++
		o := verifyOpts{}
		if h.rng.IntN(2) == 0 {
			o.subset = fmt.Sprintf("%d/2", 1+h.rng.IntN(2))
		}
		h.verify(label, o)
	case 1:
		h.stats.lightChecks++
		h.verify(label, verifyOpts{mount: true})
	case 2:
		h.verify(label, verifyOpts{readData: true})
	}
}

// vaultTruth is what the vault holds, judged from its bytes.
type vaultTruth struct {
	v      *repo.Area
	good   map[azkeys.ID]bool // blobs with a copy that authenticates
	points map[string]*repo.Point
	// loads remembers, per blob, whether LoadBlob returned it.
	loads map[azkeys.ID]bool
	// contents holds the SHA-256 of the files read, by their chunk list.
	contents map[string]string
}

// truth opens the vault, authenticates every indexed copy from the bytes
// of its pack and checks that the copies that fail are those the loop
// damaged.
func (h *healLoop) truth() *vaultTruth {
	t := h.t
	ctx := context.Background()
	v := h.open()
	if err := v.LoadIndex(ctx); err != nil {
		t.Fatalf("load the index: %v", err)
	}
	tr := &vaultTruth{v: v, good: make(map[azkeys.ID]bool), points: make(map[string]*repo.Point),
		loads: make(map[azkeys.ID]bool), contents: make(map[string]string)}
	h.verified++
	if h.packs == nil {
		h.packs = make(map[azkeys.ID]*trialPack)
	}
	indexed := make(map[azkeys.ID]bool)
	v.Index().EachCopy(func(id azkeys.ID, loc index.Location) bool {
		indexed[loc.Pack] = true
		p := h.packs[loc.Pack]
		if p == nil {
			p = &trialPack{id: loc.Pack, kind: loc.Kind, born: h.verified}
			h.packs[loc.Pack] = p
		}
		if p.born == h.verified {
			p.copies = append(p.copies, loc)
			p.blobs = append(p.blobs, id)
		}
		return true
	})
	for id, p := range h.packs {
		if !indexed[id] {
			delete(h.packs, id) // pruned
			continue
		}
		if p.born == h.verified {
			sort.Sort(byOffset{p})
			if fi, err := os.Stat(h.packPath(p.id)); err == nil {
				p.size = fi.Size()
			}
		}
	}
	hashers := map[azkeys.Kind]*azkeys.Hasher{
		azkeys.KindData: v.Keys().NewHasher(azkeys.KindData),
		azkeys.KindTree: v.Keys().NewHasher(azkeys.KindTree),
	}
	var wrong []string
	for _, p := range h.packs {
		b, err := v.LoadPack(ctx, p.id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		for i, loc := range p.copies {
			id := p.blobs[i]
			ok := false
			if end := int(loc.Offset) + int(loc.Length); end <= len(b) {
				plain, err := v.OpenBlob(loc.Kind, id, append([]byte(nil), b[loc.Offset:end]...))
				ok = err == nil && hashers[loc.Kind].Sum(plain) == id
			}
			if ok {
				tr.good[id] = true
			}
			if ok == h.damaged[copyRef{id, p.id}] {
				wrong = append(wrong, fmt.Sprintf("%s %s in pack %s: authenticates %v, damaged by the loop %v", loc.Kind, id.Short(), p.id.Short(), ok, !ok))
			}
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		t.Fatalf("the vault's bytes and the loop's record of its damage disagree:\n%s", strings.Join(wrong, "\n"))
	}
	points, err := v.Points(ctx)
	if err != nil {
		t.Fatalf("points: %v", err)
	}
	for _, p := range points {
		tr.points[p.ID.String()] = p
	}
	return tr
}

// load reads blob id through LoadBlob (every copy tried) and checks that
// it reads exactly when it is good.
func (tr *vaultTruth) load(t *testing.T, kind azkeys.Kind, id azkeys.ID) []byte {
	t.Helper()
	plain, err := tr.v.LoadBlob(context.Background(), kind, id)
	if _, done := tr.loads[id]; !done {
		tr.loads[id] = err == nil
		switch {
		case tr.good[id] && err != nil:
			t.Errorf("%s %s has a good copy, but LoadBlob fails: %v", kind, id.Short(), err)
		case !tr.good[id] && err == nil:
			t.Errorf("%s %s has no good copy, but LoadBlob returns %d bytes", kind, id.Short(), len(plain))
		case err != nil && !errors.Is(err, repo.ErrDamaged) && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s %s: LoadBlob fails, but not as a missing or damaged copy: %v", kind, id.Short(), err)
		}
	}
	if err != nil {
		return nil
	}
	return plain
}

// pointView is a point's tree as the vault holds it: its files' chunks by
// path (as check names them), the directories with a lost listing.
type pointView struct {
	rootLost bool
	lost     []string
	files    map[string][]tree.Extent
}

// walk reads the tree of point id.
func (tr *vaultTruth) walk(t *testing.T, id string) *pointView {
	t.Helper()
	view := &pointView{files: make(map[string][]tree.Extent)}
	p := tr.points[id]
	if p == nil {
		t.Errorf("point %s is not listed", id[:8])
		view.rootLost = true
		return view
	}
	plain := tr.load(t, azkeys.KindTree, p.Root)
	if plain == nil {
		view.rootLost = true
		return view
	}
	root, err := tree.DecodePart(plain)
	if err != nil || len(root.Nodes) != 1 || root.Nodes[0].Type != tree.Dir {
		t.Fatalf("point %s: root part: %v", id[:8], err)
	}
	tr.dir(t, "", &root.Nodes[0], view)
	return view
}

func (tr *vaultTruth) dir(t *testing.T, path string, n *tree.Node, view *pointView) {
	for _, ref := range n.Parts {
		plain := tr.load(t, azkeys.KindTree, ref.ID)
		if plain == nil {
			view.lost = append(view.lost, path)
			continue
		}
		part, err := tree.DecodePart(plain)
		if err != nil {
			t.Fatalf("tree part %s: %v", ref.ID.Short(), err)
		}
		for i := range part.Nodes {
			c := &part.Nodes[i]
			name := c.Name
			if path != "" {
				name = path + "/" + c.Name
			}
			switch c.Type {
			case tree.Dir:
				tr.dir(t, name, c, view)
			case tree.File:
				view.files[name] = c.Extents
			}
		}
	}
}

// underLost reports whether path lies below a lost listing.
func (view *pointView) underLost(path string) bool {
	if view.rootLost {
		return true
	}
	for _, d := range view.lost {
		if d == "" || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// content reads a file's chunks through LoadBlob and returns the SHA-256
// of their concatenation, once per chunk list.
func (tr *vaultTruth) content(t *testing.T, extents []tree.Extent) string {
	t.Helper()
	var key strings.Builder
	for _, x := range extents {
		key.Write(x.ID[:])
	}
	if sha, ok := tr.contents[key.String()]; ok {
		return sha
	}
	sum := sha256.New()
	for _, x := range extents {
		sum.Write(tr.load(t, azkeys.KindData, x.ID))
	}
	sha := hex.EncodeToString(sum.Sum(nil))
	tr.contents[key.String()] = sha
	return sha
}

// verifyOpts say what a verification of the loop checks.
type verifyOpts struct {
	afterBackup bool   // the promise of healing, of the backup just made
	readData    bool   // check --read-data, which must name exactly what is lost
	subset      string // else check --read-data-subset with it, not plain check
	mount       bool   // read every point through a real mount
}

// verify judges the vault from its bytes and checks reads, the heal
// promise, check (with --read-data: exactly; without: that it names
// nothing readable), repair, and every point through a real mount.
func (h *healLoop) verify(label string, o verifyOpts) (readable map[string][]string) {
	t := h.t
	tr := h.truth()
	prefix := strings.TrimPrefix(h.src, "/")
	expected := make(map[string]bool)    // problems check must name
	readable = make(map[string][]string) // by point: its readable files (relative to the source)
	for _, p := range h.points {
		view := tr.walk(t, p.id)
		id8 := p.id[:8]
		var lost []string
		if view.rootLost {
			lost = append(lost, "point "+p.id)
		}
		for _, d := range view.lost {
			lost = append(lost, "tree "+id8+":"+d)
		}
		for rel, sha := range p.files {
			full := prefix + "/" + rel
			extents, ok := view.files[full]
			if !ok {
				if !view.underLost(full) {
					t.Errorf("%s: point %s: %q is missing from its tree", label, id8, rel)
				}
				continue
			}
			whole := true
			var unknown []string
			for _, x := range extents {
				if !tr.good[x.ID] {
					whole = false
				}
				if h.unknown[x.ID] {
					unknown = append(unknown, x.ID.Short())
				}
			}
			if o.afterBackup && !whole && h.source[sha] && len(unknown) == 0 {
				t.Errorf("%s: point %s: %q was not healed: its content was in the source the backup read, and no chunk of it had damage unknown to the backup", label, id8, rel)
			}
			if !whole {
				lost = append(lost, "file "+id8+":"+full)
				tr.content(t, extents) // every chunk without a good copy must fail to load
				continue
			}
			if got := tr.content(t, extents); got != sha {
				t.Errorf("%s: point %s: %q reads back with SHA-256 %s, want %s", label, id8, rel, got, sha)
			}
			readable[p.id] = append(readable[p.id], rel)
		}
		for full := range view.files {
			if rel, ok := strings.CutPrefix(full, prefix+"/"); ok {
				if _, ok := p.files[rel]; !ok {
					t.Errorf("%s: point %s holds %q, which its source did not", label, id8, rel)
				}
			}
		}
		for _, k := range lost {
			expected[k] = true
		}
		if o.readData {
			h.stats.pointsVerified++
			switch {
			case len(lost) > 0 && !p.ever:
				p.ever = true
				h.stats.everLost++
			case len(lost) == 0 && p.lost > 0:
				p.healed = true
			}
			p.lost = len(lost)
			for _, k := range lost {
				h.reported[k] = true
			}
		}
	}

	if o.readData {
		for k := range h.reported {
			if !expected[k] {
				h.healed[k] = true
			}
		}
	}
	args := []string{"check"}
	switch {
	case o.readData:
		args = append(args, "--read-data")
		h.stats.verifications++
	case o.subset != "":
		args = append(args, "--read-data-subset", o.subset)
	}
	r := h.e.azfs(args...)
	named, blobs := checkProblems(t, r.stderrLines())
	h.judge(label, strings.Join(args, " "), named, blobs, expected, tr, o.readData)
	switch {
	case r.code != 0 && r.code != 1:
		t.Errorf("%s: %s: exit %d\n%s", label, strings.Join(args, " "), r.code, r)
	case o.readData && (r.code == 0) != (len(expected) == 0):
		t.Errorf("%s: %s exits %d, with %d files, listings or points lost\n%s", label, strings.Join(args, " "), r.code, len(expected), r)
	}
	rep := h.e.azfs("repair", "--json")
	var out struct {
		Machines []struct {
			Problems []struct {
				What string `json:"what"`
				Name string `json:"name"`
			} `json:"problems"`
		} `json:"machines"`
	}
	if err := json.Unmarshal([]byte(rep.stdout), &out); err != nil || len(out.Machines) != 1 {
		t.Fatalf("%s: repair --json: %v\n%s", label, err, rep)
	}
	var lines []string
	for _, p := range out.Machines[0].Problems {
		lines = append(lines, "damaged: "+p.What+" "+p.Name+": ")
	}
	named, blobs = checkProblems(t, lines)
	h.judge(label, "repair (dry run)", named, blobs, expected, tr, o.readData)
	if (rep.code == 0) != (len(lines) == 0) {
		t.Errorf("%s: repair (dry run) exits %d with %d problems\n%s", label, rep.code, len(lines), rep)
	}
	if o.mount {
		h.mountAll(label, readable)
	}
	t.Logf("%s: %d points, %d files, listings or points lost (check exit %d)", label, len(h.points), len(expected), r.code)
	return readable
}

// checkProblems splits the problems of check's output ("damaged: WHAT
// NAME: ERROR") into those of points (files, listings and roots, as "WHAT
// NAME") and the rest.
func checkProblems(t *testing.T, lines []string) (named map[string]bool, blobs []string) {
	named = make(map[string]bool)
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, "damaged: ")
		if !ok {
			continue
		}
		what, rest, _ := strings.Cut(rest, " ")
		name, _, ok := strings.Cut(rest, ": ")
		if quoted, err := strconv.QuotedPrefix(rest); err == nil {
			name, err = strconv.Unquote(quoted) // a file's or listing's path
			ok = err == nil
		}
		if !ok {
			t.Errorf("malformed problem %q", line)
			continue
		}
		if what == "point" || len(name) > 8 && name[8] == ':' {
			named[what+" "+name] = true
		} else {
			blobs = append(blobs, what+" "+name)
		}
	}
	return named, blobs
}

// judge compares what a check or repair named with what is lost: exactly
// (exact) or, for a check of the structure alone, only that nothing it
// names is readable. Blobs it names must have no good copy, packs must be
// ones the loop damaged.
func (h *healLoop) judge(label, what string, named map[string]bool, blobs []string, lost map[string]bool, tr *vaultTruth, exact bool) {
	t := h.t
	var extra, missing []string
	for k := range named {
		if !lost[k] {
			extra = append(extra, k)
		}
	}
	for k := range lost {
		if exact && !named[k] {
			missing = append(missing, k)
		}
	}
	for _, b := range blobs {
		what, name, _ := strings.Cut(b, " ")
		id, err := azkeys.ParseID(name)
		switch {
		case err != nil:
			extra = append(extra, b)
		case what == "pack":
			if !h.touched[id] {
				extra = append(extra, b+" (not damaged)")
			}
		case what == "chunk" || what == "tree":
			if tr.good[id] {
				extra = append(extra, b+" (has a good copy)")
			}
		default:
			extra = append(extra, b)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		t.Errorf("%s: %s names %d things that are not lost:\n%s", label, what, len(extra), strings.Join(extra, "\n"))
	}
	if len(missing) > 0 {
		t.Errorf("%s: %s does not name %d lost things:\n%s", label, what, len(missing), strings.Join(missing, "\n"))
	}
}

// mountAll mounts every point and reads every file of each: the readable
// ones must have their content, the others fail to read.
func (h *healLoop) mountAll(label string, readable map[string][]string) {
	t := h.t
	h.stats.mounts++
	rows := h.e.points()
	m := h.e.mount(mkdir(t, filepath.Join(h.e.dir, fmt.Sprintf("mnt%d", h.stats.mounts))))
	defer m.cleanup()
	for _, row := range rows {
		var p *healPoint
		for _, q := range h.points {
			if q.id == row.ID {
				p = q
			}
		}
		if p == nil {
			t.Errorf("%s: the mount shows point %s, which no backup of the loop printed", label, row.ID[:8])
			continue
		}
		ok := make(map[string]bool)
		for _, rel := range readable[p.id] {
			ok[rel] = true
		}
		dir := filepath.Join(m.dir, testMachine, pointDirName(row, rows), h.src)
		for rel, sha := range p.files {
			got, err := fileSHA(filepath.Join(dir, rel))
			switch {
			case ok[rel] && err != nil:
				t.Errorf("%s: mount: point %s: %q: %v", label, p.id[:8], rel, err)
			case ok[rel] && got != sha:
				t.Errorf("%s: mount: point %s: %q has SHA-256 %s, want %s", label, p.id[:8], rel, got, sha)
			case !ok[rel] && err == nil:
				t.Errorf("%s: mount: point %s: %q is lost, yet it reads (SHA-256 %s, want %s)", label, p.id[:8], rel, got, sha)
			}
		}
	}
}

package repo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/azfs/azfs/internal/freelist"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

// indexEvery is how many landed packs go into one index file during a run, so
// an interrupted backup leaves most of its work indexed.
const indexEvery = 64

// WriterStats counts what a Writer stored.
type WriterStats struct {
	BlobsNew   atomic.Uint64 // blobs stored
	BlobsKnown atomic.Uint64 // blobs already in the vault
	// BlobsVerified counts reused blobs authenticated (VerifyReused).
	BlobsVerified atomic.Uint64
	// BlobsStoredAgain counts blobs stored although the vault had them:
	// no copy was usable (missing, damaged, or in a pack a prune is
	// deleting).
	BlobsStoredAgain atomic.Uint64
	BytesPlain       atomic.Uint64 // plaintext bytes of stored blobs
	BytesStored      atomic.Uint64 // bytes of packs written
	Packs            atomic.Uint64 // packs written
}

// Writer stores blobs into packs: it deduplicates against the whole vault and
// against what it stored itself, compresses and seals in its callers'
// goroutines (so every core works), and uploads finished packs with bounded
// concurrency. A full upload queue blocks Save: that is the pipeline's
// backpressure. Blobs become durable, and indexed, only after Flush returns
// without error.
type Writer struct {
	v *Area

	mu      sync.Mutex
	pending map[keys.ID]struct{}
	open    map[keys.Kind]*openPack
	landed  []index.PackBlobs

	uploads chan *pack.Writer
	wg      sync.WaitGroup
	failed  chan struct{}
	errOnce sync.Once
	err     error

	// packs holds pack writers whose upload is done, for new packs to
	// reuse their 17 MiB buffers, and payloads the buffers of payloads (a
	// blob compressed, before it is sealed into its pack): free lists,
	// which keep them across garbage collections.
	packs       *freelist.List[*pack.Writer]
	payloads    *freelist.List[*[]byte]
	treeHashers sync.Pool // *keys.Hasher of tree parts, for SavePart
	guard       PackGuard // nil: reuse whatever the index holds
	compress    pack.Compression
	Stats       WriterStats

	ctx      context.Context      // the context NewWriter was given, for verifying reads
	verify   bool                 // authenticate reused blobs (VerifyReused)
	verified map[keys.ID]struct{} // reused blobs verified so far; under mu
}

// openPack is a pack that Saves seal blobs into: writers counts the Saves
// sealing into it now; once full it takes no more blobs, and its last
// writer queues it for upload.
type openPack struct {
	pw      *pack.Writer
	writers int
	full    bool
}

// PackGuard decides which packs a backup may depend on while a prune may be
// deleting the unused ones (package repo/prune implements it). A Writer with
// a guard asks it before it reuses a blob that is already stored, and
// before it uploads a pack (a pack of the same bytes may be stored already),
// so that the guard knows every pack the run's point will need.
type PackGuard interface {
	// Depend reports whether the run may depend on pack, and records that
	// it does when it may.
	Depend(pack keys.ID) bool
}

// SetGuard makes w consult g. Call it before the first Save.
func (w *Writer) SetGuard(g PackGuard) { w.guard = g }

// SetCompression sets how w compresses what it stores
// (pack.CompressFast unless set). Call it before the first Save.
func (w *Writer) SetCompression(c pack.Compression) { w.compress = c }

// reusable reports whether the vault already holds a copy of the blob not
// known to be bad, in a pack the run may depend on (and, with
// VerifyReused, one that authenticates).
func (w *Writer) reusable(id keys.ID) bool {
	loc, ok := w.v.idx.Good(id)
	if !ok {
		return false
	}
	if w.usable(id, loc) {
		return true
	}
	// Rare: the preferred copy is in a pack a prune is deleting, or does
	// not authenticate; another good copy may do.
	tried := loc.Pack
	for _, loc := range w.v.idx.Locations(id) {
		if loc.Pack != tried && !w.v.idx.IsBad(id, loc.Pack) && w.usable(id, loc) {
			return true
		}
	}
	return false
}

// usable reports whether the run may reuse the copy of blob id at loc.
func (w *Writer) usable(id keys.ID, loc index.Location) bool {
	if w.guard != nil && !w.guard.Depend(loc.Pack) {
		return false
	}
	if !w.verify {
		return true
	}
	w.mu.Lock()
	_, done := w.verified[id]
	w.mu.Unlock()
	if done {
		return true
	}
	if _, err := w.v.loadCopy(w.ctx, nil, loc.Kind, id, loc, nil); err != nil {
		switch {
		case isBadCopy(err):
			w.v.NoteBadCopy(id, loc.Pack)
		case errors.Is(err, keys.ErrOtherKey):
			// Sealed under a key this machine no longer holds (another
			// certificate's epoch): it cannot be verified, so it is
			// stored again rather than trusted.
		default:
			w.fail(fmt.Errorf("verify reused %s %s: %w", loc.Kind, id.Short(), err))
		}
		return false
	}
	w.Stats.BlobsVerified.Add(1)
	w.mu.Lock()
	w.verified[id] = struct{}{}
	w.mu.Unlock()
	return true
}

// VerifyReused makes w authenticate every blob it reuses, once, by reading
// its copy from the storage: a copy that fails is noted as bad and the
// blob stored again. It costs a read of every reused blob. Call it before
// the first Save.
func (w *Writer) VerifyReused() {
	w.verify = true
	w.verified = make(map[keys.ID]struct{})
}

// NewWriter starts a Writer with uploaders concurrent pack uploads. The index
// must be loaded first for deduplication against the vault.
func (v *Area) NewWriter(ctx context.Context, uploaders int) *Writer {
	w := &Writer{
		v:       v,
		ctx:     ctx,
		pending: make(map[keys.ID]struct{}),
		open:    make(map[keys.Kind]*openPack),
		uploads: make(chan *pack.Writer, 1), // each queued pack holds 16 MiB
		failed:  make(chan struct{}),
		// Enough for every pack a run holds at once, so that a long run
		// allocates no pack buffer after its first few: those uploading,
		// the one queued, a full one for each core's Save waiting to
		// queue it, and one filling; and a payload buffer for every
		// core's Save, with room for the tree parts saved beside them.
		packs:    freelist.New(uploaders+1+runtime.GOMAXPROCS(0)+1, pack.NewWriter),
		payloads: freelist.New(2*runtime.GOMAXPROCS(0), func() *[]byte { return new([]byte) }),
	}
	w.treeHashers.New = func() any { return v.keys.NewHasher(keys.KindTree) }
	for range uploaders {
		w.wg.Add(1)
		go w.uploader(ctx)
	}
	return w
}

func (w *Writer) fail(err error) {
	w.errOnce.Do(func() {
		w.err = err
		close(w.failed)
	})
}

// Err returns the first upload error, if any.
func (w *Writer) Err() error {
	select {
	case <-w.failed:
		return w.err
	default:
		return nil
	}
}

// Known reports whether the blob is in the vault or already saved by w.
func (w *Writer) Known(id keys.ID) bool {
	if w.reusable(id) {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.pending[id]
	return ok
}

// Save stores the blob (kind, id, plain) unless the vault already has it, and
// reports whether it stored it. It is safe for concurrent use.
func (w *Writer) Save(ctx context.Context, kind keys.Kind, id keys.ID, plain []byte) (bool, error) {
	if err := w.Err(); err != nil {
		return false, err
	}
	if w.reusable(id) {
		w.Stats.BlobsKnown.Add(1)
		return false, nil
	}
	w.mu.Lock()
	if _, ok := w.pending[id]; ok {
		w.mu.Unlock()
		w.Stats.BlobsKnown.Add(1)
		return false, nil
	}
	w.pending[id] = struct{}{}
	w.mu.Unlock()

	sealer, err := w.v.sealerFor(kind)
	if err != nil {
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
		return false, err
	}
	// The payload goes to a buffer sized for this blob (small tree parts
	// take small buffers) and is sealed from there straight into the room
	// reserved for it in its pack, under no lock.
	bp := w.payloads.Get()
	if need := len(plain) + len(plain)/16 + 64; cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	payload := pack.EncodePayload((*bp)[:0], plain, w.compress)
	op, room, retired := w.reserve(kind, id, len(payload)+keys.Overhead)
	if sealed := sealer.Seal(room[:0], kind, id, payload); len(sealed) != len(room) || &sealed[0] != &room[0] {
		panic("repo: a sealed blob did not fill the room reserved for it") // cannot happen: Overhead is exact
	}
	*bp = payload[:0]
	w.payloads.Put(bp)
	full := w.release(op)

	w.Stats.BlobsNew.Add(1)
	if w.v.idx.Has(id) {
		w.Stats.BlobsStoredAgain.Add(1)
	}
	w.Stats.BytesPlain.Add(uint64(len(plain)))
	for _, pw := range [...]*pack.Writer{retired, full} {
		if pw != nil {
			if err := w.queue(ctx, pw); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// reserve makes room for a sealed blob of n bytes in the open pack of
// kind and returns that pack, counted as written to until release. A pack
// that reaches pack.TargetSize, or has no room for a blob, takes no more
// blobs; the last Save writing to it queues it. When that is nobody (the
// blob did not fit in a pack nobody was sealing into), reserve returns
// the pack as retired, for its caller to queue.
func (w *Writer) reserve(kind keys.Kind, id keys.ID, n int) (op *openPack, room []byte, retired *pack.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op = w.open[kind]
	if op != nil {
		room = op.pw.Reserve(kind, id, n)
	}
	if room == nil {
		if op != nil {
			op.full = true
			if op.writers == 0 {
				retired = op.pw
			}
		}
		op = &openPack{pw: w.packs.Get()}
		w.open[kind] = op
		room = op.pw.Reserve(kind, id, n) // an empty pack takes any blob
	}
	op.writers++
	if op.pw.Size() >= pack.TargetSize {
		op.full = true
	}
	if op.full {
		delete(w.open, kind)
	}
	return op, room, retired
}

// release ends a Save's writing to op and returns op's pack when it is
// full and that Save was its last writer, for the caller to queue.
func (w *Writer) release(op *openPack) *pack.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	op.writers--
	if op.full && op.writers == 0 {
		return op.pw
	}
	return nil
}

// SavePart encodes and stores a tree part and returns its ID.
func (w *Writer) SavePart(ctx context.Context, p *tree.Part) (keys.ID, error) {
	plain, err := p.Encode(nil)
	if err != nil {
		return keys.ID{}, err
	}
	h := w.treeHashers.Get().(*keys.Hasher)
	id := h.Sum(plain)
	w.treeHashers.Put(h)
	_, err = w.Save(ctx, keys.KindTree, id, plain)
	return id, err
}

func (w *Writer) queue(ctx context.Context, pw *pack.Writer) error {
	select {
	case w.uploads <- pw:
		return nil
	case <-w.failed:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) uploader(ctx context.Context) {
	defer w.wg.Done()
	for pw := range w.uploads {
		if w.Err() != nil {
			continue // drain
		}
		if err := w.upload(ctx, pw); err != nil {
			w.fail(err)
		}
	}
}

func (w *Writer) upload(ctx context.Context, pw *pack.Writer) error {
	id, b, entries, err := w.v.savePack(ctx, pw, w.guard)
	if err != nil {
		return err
	}
	w.Stats.Packs.Add(1)
	w.Stats.BytesStored.Add(uint64(len(b)))
	w.mu.Lock()
	w.landed = append(w.landed, index.PackBlobs{Pack: id, Entries: entries})
	var batch []index.PackBlobs
	if len(w.landed) >= indexEvery {
		batch, w.landed = w.landed, nil
	}
	w.mu.Unlock()
	pw.Reset()
	w.packs.Put(pw)
	if batch != nil {
		return w.v.saveIndexFile(ctx, &index.File{Packs: batch})
	}
	return nil
}

// savePack finishes pw and stores it. A pack of the same bytes may exist
// already: it is relied on only when guard (nil: never) says the run may
// depend on it; otherwise the pack is made over with a gap of random bytes,
// which gives it another name.
func (v *Area) savePack(ctx context.Context, pw *pack.Writer, guard PackGuard) (keys.ID, []byte, []pack.Entry, error) {
	id, b, entries := pw.Finish(v.keys, v.meta)
	for attempt := 0; ; attempt++ {
		if guard == nil || guard.Depend(id) {
			err := v.st.Save(ctx, dataName(id), b)
			if err == nil || errors.Is(err, storage.ErrExists) && guard != nil && v.sized(ctx, dataName(id), len(b)) {
				return id, b, entries, nil // stored, or the same bytes are, and the guard keeps them
			}
			if !errors.Is(err, storage.ErrExists) || attempt == 3 {
				return id, nil, nil, fmt.Errorf("upload pack %s: %w", id.Short(), err)
			}
		}
		// A pack of the same bytes exists that the run may not rely on (a
		// prune marked it), or an object of another size holds its name (a
		// broken storage left part of an earlier attempt): the same blobs
		// under another name.
		var gap [16]byte
		if _, err := rand.Read(gap[:]); err != nil {
			return id, nil, nil, fmt.Errorf("upload pack %s: %w", id.Short(), err)
		}
		id, b, entries = pw.Regap(v.keys, v.meta, gap[:])
	}
}

// Flush uploads every open pack, waits for all uploads and writes the index
// of what landed. After Flush the Writer is finished, its buffers left to
// the garbage collector; on success every blob Save accepted is durable and
// indexed.
//
// The packs left when Flush starts, those still open and the one queued,
// upload at once beside those the uploaders have under way, each in a
// goroutine of its own, rather than one after another through the
// uploaders: the end of a run waits for their writes and fsyncs, which
// the storage serves concurrently (a disk syncs several files in about
// the time of the largest). They hold no more memory than they did.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	var rest []*pack.Writer
	for kind, op := range w.open {
		rest = append(rest, op.pw) // no Save runs with Flush: nobody writes to it
		delete(w.open, kind)
	}
	w.mu.Unlock()
	close(w.uploads) // no Save runs with Flush: nobody queues
	for range len(w.uploads) {
		w.wg.Add(1)
		go w.uploader(ctx) // the queued pack starts now, not after an upload under way
	}
	for _, pw := range rest {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if ctx.Err() != nil || w.Err() != nil {
				return // Flush returns the error
			}
			if err := w.upload(ctx, pw); err != nil {
				w.fail(err)
			}
		}()
	}
	w.wg.Wait()
	// No upload runs: the pack and payload buffers (about 17 MiB a pack)
	// go to the garbage collector, however Flush ends.
	w.packs.Clear()
	w.payloads.Clear()
	if err := w.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(w.landed) > 0 {
		if err := w.v.saveIndexFile(ctx, &index.File{Packs: w.landed}); err != nil {
			w.fail(err)
			return err
		}
		w.landed = nil
	}
	return nil
}

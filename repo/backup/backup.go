// Package backup streams directory trees into a vault and commits a recovery
// point.
//
// The pipeline: one walker goroutine lists directories in name order and
// lstats every entry; regular files go to file workers that skip unchanged
// files (the file cache), and otherwise read, chunk and hash them; new chunks
// go to sealers that compress, encrypt and pack them; full packs upload with
// bounded concurrency. Every stage hands over through a bounded channel, so a
// slow stage stalls the ones before it and memory stays bounded whatever the
// input. Each directory has a finisher that takes its children's results in
// order and writes the listing in parts as they fill. The point is committed
// only after every pack and index file it needs has landed.
package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/internal/freelist"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/chunker"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/tree"
)

// Options configure a backup run.
type Options struct {
	Paths []string // what to back up; made absolute
	// Stream, instead of Paths, is the one file the point holds, at its
	// top level: the point's paths are "/" + Stream.Name, and its set is
	// Stream.Name unless Set names one (so Stream.Name must then be a
	// valid set name). Exclude, Select, Files and Progress's totals do
	// not apply.
	Stream *Stream
	// Tags label the point (repo.Point.Tags, checked with repo.CheckTag).
	Tags     []string
	Machine  string
	Hostname string
	// Set names the backup set of the point (repo.Point.SetName, checked
	// with repo.CheckSetName); empty: the set of its paths.
	Set string
	// Files is the change-detection cache; nil reads every file.
	Files *filecache.Cache
	// FilesDone, when set, is called once the run no longer uses Files:
	// after the file workers are done and the batch of records is written
	// (or dropped), while the run may still be storing its last packs,
	// index and point, and before Run returns; not when Run fails before
	// it reads anything. The caller may close Files there (agent.Backup
	// does, closing it itself otherwise), so that the close overlaps the
	// end of the run.
	FilesDone func()
	// Workers is the number of file readers and of sealers (GOMAXPROCS when 0).
	Workers int
	// Uploads is the number of packs uploaded concurrently (2 when 0); each
	// holds up to 16 MiB. Over a network, more hide the round trips.
	Uploads int
	// Progress, when set, is updated as the run goes, and a concurrent scan
	// of the paths fills its totals for an ETA (it lists the tree a second
	// time, so leave Progress nil when nobody watches).
	Progress *Progress
	// OnError is called for each file or directory that could not be backed
	// up; the run goes on and the point is marked partial.
	OnError func(path string, err error)
	// OnChanged is called for each file that kept changing while it was
	// read (readAttempts times): the point holds what the last read saw,
	// marked changed during backup (tree.Node.Changed), and Run returns
	// ErrPartial.
	OnChanged func(path string)
	// OnVanished is called for each entry that was deleted between the
	// listing of its directory and its reading: the point rightly lacks
	// it, so it is counted (PointStats.Vanished), not an error.
	OnVanished func(path string)
	// Exclude lists paths (azfs's own vault, config and keyring, cache)
	// left out with everything below them wherever the walk meets them:
	// they are known by device and inode, so a symlinked or bind-mounted
	// way in, or another hard link, is left out too. Run refuses a named
	// path that is one of them or lies inside one.
	Exclude []string
	// Select is what the run leaves out besides Exclude (package
	// selection): excluded entries are absent from the point, not
	// reported. nil leaves out only the pseudo file systems that
	// selection.PseudoFileSystems lists.
	Select *selection.Selection
	// Guard sets how the run watches the marks of concurrent prunes
	// (package repo/prune); zero fields take the defaults.
	Guard guard.Options
	// VerifyReused reads back and authenticates every blob the run reuses
	// instead of trusting the index (repo.Writer.VerifyReused): a copy that
	// fails is remembered as damaged and the blob stored again from the
	// source. It costs a read of every reused blob.
	VerifyReused bool
	// ReadDevices stores each block device named or met in the walk as a
	// regular file holding the device's content (otherwise it is stored
	// as a device node). A named path that is a symbolic link to a block
	// device (/dev/vg0/snap, /dev/mapper/x) is read too, under its own
	// name. Devices are read whole on every run: their nodes' times do
	// not change when their content does.
	ReadDevices bool
	// OnImage, when set, is called for each file or device cut as a disk
	// image (see Image).
	OnImage func(path string, img Image)
	// Compression trades CPU for stored bytes (pack.CompressFast when
	// zero).
	Compression pack.Compression
}

// ErrVerifyWriteOnly reports VerifyReused on a machine that cannot read
// what it stores.
var ErrVerifyWriteOnly = errkind.New(errkind.Permission, "verifying reused data needs keys that read it: this machine holds only the vault's certificate")

// Progress counts a run's work; read it from another goroutine.
type Progress struct {
	Files, Dirs, Errors atomic.Uint64
	// BytesDone counts the bytes of files finished, read or unchanged,
	// and of files being read as far as they are read.
	BytesDone atomic.Uint64
	BytesRead atomic.Uint64
	// Filled by a concurrent scan for the ETA; ScanDone says it is complete.
	TotalFiles, TotalBytes atomic.Uint64
	ScanDone               atomic.Bool

	// reading maps the node of each file being read to its *fileRead:
	// what Reading reports, and what BytesDone counts of it so far.
	reading sync.Map
	// stored is the run's writer's count of pack bytes written, once the
	// run has one.
	stored atomic.Pointer[atomic.Uint64]
}

// FileRead is a file being read: its path, its size when it was looked at
// and the bytes read of it so far.
type FileRead struct {
	Path       string
	Size, Read uint64
}

// fileRead is a file being read, as the run counts it.
type fileRead struct {
	path string
	size uint64
	read atomic.Uint64
}

// Reading returns the files being read now, the largest first (at most one
// per file reader).
func (p *Progress) Reading() []FileRead {
	var out []FileRead
	p.reading.Range(func(_, v any) bool {
		r := v.(*fileRead)
		out = append(out, FileRead{Path: r.path, Size: r.size, Read: r.read.Load()})
		return true
	})
	slices.SortFunc(out, func(a, b FileRead) int { return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Path, b.Path)) })
	return out
}

// BytesStored returns the bytes of packs the run has written to the vault
// so far (new data, compressed and sealed).
func (p *Progress) BytesStored() uint64 {
	if c := p.stored.Load(); c != nil {
		return c.Load()
	}
	return 0
}

// ErrPartial is returned (wrapped) with a committed point when some files
// could not be read, or kept changing while they were read.
var ErrPartial = errkind.New(errkind.Partial, "backup is partial")

// future is a node whose backup may still be in progress.
type future struct {
	done chan struct{}
	node tree.Node
	skip bool // the entry could not be backed up and is left out
}

func resolved(n tree.Node) *future {
	f := &future{done: make(chan struct{}), node: n}
	close(f.done)
	return f
}

func skipped() *future {
	f := &future{done: make(chan struct{}), skip: true}
	close(f.done)
	return f
}

// fileJob is a regular file to back up: at in dir, whose full path is
// path. The job holds dir until it is done.
type fileJob struct {
	dir      *dir
	at, path string
	fut      *future
	device   bool // a block device read for its content
}

type sealJob struct {
	id  keys.ID
	buf *[]byte
}

type backuper struct {
	v     *repo.Area
	w     *repo.Writer
	opts  Options
	names *names
	prog  *Progress
	batch *filecache.Batch

	files chan fileJob
	seals chan sealJob

	// bufs holds chunk buffers: a free list, which keeps them across
	// garbage collections (a sync.Pool lost them at each, to be made and
	// grown again).
	bufs *freelist.List[*[]byte]

	rules *walkRules

	linksMu sync.Mutex
	links   map[[2]uint64]*future // hard-linked inodes seen: (device, inode)

	stats struct {
		files, dirs, others, new, changed, unchanged, errors, bytes, read, xattrs atomic.Uint64
		changedWhileRead                                                          atomic.Uint64 // files that kept changing while read
		vanished                                                                  atomic.Uint64 // entries deleted before they were read
		images, devices                                                           atomic.Uint64 // files cut as disk images, devices read
		cachePuts                                                                 atomic.Uint64 // records written to the file cache
	}
	failMu sync.Mutex
	fail   error // fatal error (storage), stops the run
	// batchErr stopped the file cache batch (its disk is full, or a write
	// failed); the run goes on without remembering files. Atomic: every
	// file reads it.
	batchErr atomic.Pointer[error]
}

// Run backs up opts.Paths into v and commits a recovery point. It returns the
// point with a nil error, or with an error wrapping ErrPartial when some
// entries were skipped; any other error means no point was committed.
func Run(ctx context.Context, v *repo.Area, opts Options) (*repo.Point, error) {
	start := time.Now()
	if opts.Stream != nil {
		defer opts.Stream.Data.Close() // a no-op after streamRoot's
	}
	tags, err := repo.NormalizeTags(opts.Tags)
	if err != nil {
		return nil, err
	}
	exclude := newExclusions(opts.Exclude)
	paths, err := sourcePaths(&opts, exclude)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.VerifyReused && v.Keys().WriteOnly() {
		return nil, ErrVerifyWriteOnly
	}
	watched := opts.Progress != nil
	if !watched {
		opts.Progress = &Progress{}
	}
	// A prune may be deleting unused packs meanwhile: the guard keeps the
	// run off the packs it marked, and has it keep those it depends on.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	guard, err := guard.Start(ctx, v, opts.Guard, stop)
	if err != nil {
		return nil, err
	}
	defer guard.Stop()
	if err := v.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return nil, fmt.Errorf("load index: %w", stopped(ctx, err))
		}
		// The packs a damaged index file covered are adopted below.
		if opts.OnError != nil {
			opts.OnError("(vault index)", err)
		}
	}
	_, missing, err := v.AdoptOrphanPacksExcept(ctx, true, guard.Skip)
	if err != nil {
		return nil, fmt.Errorf("index interrupted uploads: %w", stopped(ctx, err))
	}
	guard.Avoid(missing)

	rules := newWalkRules(exclude, opts.Select)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if watched && opts.Stream == nil {
		go scan(ctx, paths, rules, opts.Progress)
	}

	b := &backuper{
		v:     v,
		w:     v.NewWriter(ctx, cmp.Or(opts.Uploads, 2)),
		opts:  opts,
		names: newNames(),
		prog:  opts.Progress,
		files: make(chan fileJob, 4*opts.Workers),
		seals: make(chan sealJob, 2*opts.Workers),
		links: make(map[[2]uint64]*future),
		rules: rules,
	}
	b.w.SetGuard(guard)
	b.w.SetCompression(opts.Compression)
	opts.Progress.stored.Store(&b.w.Stats.BytesStored)
	if opts.VerifyReused {
		b.w.VerifyReused()
	}
	if opts.Files != nil {
		b.batch = opts.Files.NewBatch()
		defer b.batch.Cancel()
	}
	// Chunk buffers grow to the chunks they carry (about 1 MiB), not to the
	// 4 MiB maximum. One for each file worker and sealer, and each chunk
	// the sealers' queue holds.
	b.bufs = freelist.New(4*opts.Workers, func() *[]byte { return new([]byte) })

	var fileWG, sealWG sync.WaitGroup
	for range opts.Workers {
		fileWG.Add(1)
		go func() { defer fileWG.Done(); b.fileWorker(ctx) }()
		sealWG.Add(1)
		go func() { defer sealWG.Done(); b.sealer(ctx) }()
	}

	var rootFut *future
	if opts.Stream != nil {
		rootFut = b.streamRoot(ctx, opts.Stream, start)
	} else {
		rootFut = b.virtualRoot(ctx, paths)
	}
	close(b.files)
	fileWG.Wait()
	// Every record is put: the file cache writes them while the last
	// packs, the index and the point are stored (flushCache).
	cached := b.flushCache()
	close(b.seals)
	sealWG.Wait()
	b.bufs.Clear() // no chunk is read or sealed any more
	<-rootFut.done

	if err := b.fatal(); err != nil {
		_ = b.w.Flush(ctx)
		<-cached
		return nil, stopped(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		_ = b.w.Flush(ctx)
		<-cached
		return nil, stopped(ctx, err)
	}
	root := rootFut.node
	root.Name = repo.RootName
	rootID, err := b.w.SavePart(ctx, &tree.Part{Nodes: []tree.Node{root}})
	if err != nil {
		<-cached
		return nil, err
	}
	if err := b.w.Flush(ctx); err != nil {
		<-cached
		return nil, fmt.Errorf("store data: %w", stopped(ctx, err))
	}
	freed := returnMemory()
	p := &repo.Point{
		Machine:  opts.Machine,
		Hostname: opts.Hostname,
		Time:     start.UTC(),
		Paths:    paths,
		SetName:  opts.Set,
		Tags:     tags,
		Root:     rootID,
		Partial:  b.stats.errors.Load() > 0,
		Stats: repo.PointStats{
			Files:          b.stats.files.Load(),
			Dirs:           b.stats.dirs.Load(),
			Others:         b.stats.others.Load(),
			FilesNew:       b.stats.new.Load(),
			FilesChanged:   b.stats.changed.Load(),
			FilesUnchanged: b.stats.unchanged.Load(),
			Errors:         b.stats.errors.Load(),
			Bytes:          b.stats.bytes.Load(),
			BytesRead:      b.stats.read.Load(),
			BytesStored:    b.w.Stats.BytesStored.Load(),
			Xattrs:         b.stats.xattrs.Load(),

			ChangedWhileRead: b.stats.changedWhileRead.Load(),
			Vanished:         b.stats.vanished.Load(),
			BlobsStoredAgain: b.w.Stats.BlobsStoredAgain.Load(),
			BlobsVerified:    b.w.Stats.BlobsVerified.Load(),
			Images:           b.stats.images.Load(),
			Devices:          b.stats.devices.Load(),
		},
	}
	p.Stats.Duration = time.Since(start)
	late := guard.Commit(ctx, func(ctx context.Context) error { return v.SavePoint(ctx, p) })
	cacheErr := <-cached
	<-freed
	if p.ID.IsZero() {
		return nil, fmt.Errorf("commit point: %w", stopped(ctx, late))
	}
	if cacheErr != nil && opts.OnError != nil {
		opts.OnError("(file cache)", cacheErr)
	}
	// What the run found missing or damaged (the listing, verified
	// reuses) is remembered for readers and later runs.
	if err := v.SaveDamage(ctx); err != nil && opts.OnError != nil {
		opts.OnError("(damage record)", err)
	}
	if late != nil {
		return p, fmt.Errorf("point %s: %w", p.ID.Short(), late)
	}
	if p.Partial || p.Stats.ChangedWhileRead > 0 {
		return p, partialError(p.Stats)
	}
	return p, nil
}

// partialError says why a committed point is partial.
func partialError(s repo.PointStats) error {
	var why []string
	if s.Errors > 0 {
		why = append(why, fmt.Sprintf("%d entries could not be read", s.Errors))
	}
	if s.ChangedWhileRead > 0 {
		why = append(why, fmt.Sprintf("%d files changed while being read (stored as read)", s.ChangedWhileRead))
	}
	return fmt.Errorf("%w: %s", ErrPartial, strings.Join(why, ", "))
}

// stopped returns why the run stopped: the guard's reason when the guard
// stopped it, else err.
func stopped(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, guard.ErrLostMarks) {
		return cause
	}
	return err
}

// sourcePaths returns the point's paths: those of opts.Paths, cleaned,
// or the stream's. It checks the set name (defaulting a stream's to its
// name) and refuses paths that are or lie inside exclusions.
func sourcePaths(opts *Options, exclude exclusions) ([]string, error) {
	if s := opts.Stream; s != nil {
		if len(opts.Paths) > 0 {
			return nil, errors.New("back up either a stream or paths, not both")
		}
		set, err := StreamSet(s, opts.Set)
		if err != nil {
			return nil, err
		}
		opts.Set = set
	}
	if opts.Set != "" {
		if err := repo.CheckSetName(opts.Set); err != nil {
			return nil, err
		}
	}
	if opts.Stream != nil {
		return []string{"/" + opts.Stream.Name}, nil
	}
	paths, err := cleanPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	if err := exclude.refuseAny(paths); err != nil {
		return nil, err
	}
	return paths, nil
}

func cleanPaths(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("nothing to back up: name at least one path")
	}
	var out []string
	for _, p := range in {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if _, err := os.Lstat(abs); err != nil {
			return nil, fmt.Errorf("cannot back up %s: %w", p, err)
		}
		out = append(out, abs)
	}
	sort.Strings(out)
	// Drop paths inside another path.
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && within(p, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func (b *backuper) setFatal(err error) {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	if b.fail == nil {
		b.fail = err
	}
}

func (b *backuper) fatal() error {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	return b.w.Err()
}

// report notes that the entry at path could not be backed up, unless it is
// gone: an entry deleted since its directory was listed (or since the run
// checked the named paths) is not in the tree the point is of, so it
// vanished, and the point is not partial for it.
func (b *backuper) report(path string, err error) {
	if errors.Is(err, os.ErrNotExist) {
		b.stats.vanished.Add(1)
		if b.opts.OnVanished != nil {
			b.opts.OnVanished(path)
		}
		return
	}
	b.stats.errors.Add(1)
	b.prog.Errors.Add(1)
	if b.opts.OnError != nil {
		b.opts.OnError(path, err)
	}
}

// virtualRoot builds the point's top level: the backed-up paths at their
// absolute places, with their ancestors holding only what leads to them.
func (b *backuper) virtualRoot(ctx context.Context, paths []string) *future {
	return b.virtualDir(ctx, "/", "", paths)
}

// virtualDir backs up the directory at path, called name: fully if it is
// one of paths, otherwise only the children that lead to a path. Named
// paths and their ancestors are opened by path (they are shorter than
// PATH_MAX); below them, entries are reached by name (see dir).
func (b *backuper) virtualDir(ctx context.Context, path, name string, paths []string) *future {
	parent, at, err := openParent(path)
	if err != nil {
		b.report(path, err)
		return skipped()
	}
	defer parent.release()
	if slices.Contains(paths, path) {
		if dev, ok := b.linkedDevice(path); ok {
			devParent, devAt, err := openParent(dev)
			if err != nil {
				b.report(path, err)
				return skipped()
			}
			defer devParent.release()
			return b.entry(ctx, devParent, devAt, path, name)
		}
		return b.entry(ctx, parent, at, path, name)
	}
	node, err := b.lstat(parent, at, path, name)
	if err != nil {
		b.report(path, err)
		return skipped()
	}
	children := make(map[string][]string)
	for _, p := range paths {
		rest := strings.TrimPrefix(p, strings.TrimSuffix(path, "/")+"/")
		first, _, _ := strings.Cut(rest, "/")
		children[first] = append(children[first], p)
	}
	childNames := make([]string, 0, len(children))
	for n := range children {
		childNames = append(childNames, n)
	}
	sort.Strings(childNames)
	return b.directory(ctx, node, func(emit func(*future)) {
		for _, n := range childNames {
			emit(b.virtualDir(ctx, filepath.Join(path, n), n, children[n]))
		}
	})
}

// entry backs up, under name, the entry at in the directory parent, whose
// full path is path.
func (b *backuper) entry(ctx context.Context, parent *dir, at, path, name string) *future {
	node, err := b.lstat(parent, at, path, name)
	if err != nil {
		b.report(path, err)
		return skipped()
	}
	size := int64(-1)
	if node.Type == tree.File {
		size = int64(node.Size)
	}
	switch b.rules.decide(parent, path, node.Device, node.Inode, node.Type == tree.Dir, size) {
	case leaveOut:
		return skipped()
	case keepEmpty:
		return b.directory(ctx, node, func(func(*future)) {})
	}
	switch node.Type {
	case tree.Dir:
		return b.directory(ctx, node, func(emit func(*future)) {
			d, err := openDirAt(parent, at, path)
			if err != nil {
				b.report(path, err)
				return
			}
			defer d.release()
			d.walked, d.dev = true, node.Device
			names, err := d.names()
			if err != nil {
				b.report(path, err)
			}
			if testHookListed != nil {
				testHookListed(path)
			}
			for _, n := range b.rules.tagged(d, path, names) {
				if ctx.Err() != nil || b.fatal() != nil {
					return
				}
				emit(b.entry(ctx, d, n, filepath.Join(path, n), n))
			}
		})
	case tree.File:
		return b.file(ctx, parent, at, path, node, false)
	case tree.BlockDev:
		if b.opts.ReadDevices {
			return b.device(ctx, parent, at, path, node)
		}
	}
	b.stats.others.Add(1)
	return resolved(node)
}

// linkedDevice returns the block device the named path is a symbolic link
// to, when devices are read.
func (b *backuper) linkedDevice(path string) (string, bool) {
	if !b.opts.ReadDevices {
		return "", false
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSymlink == 0 {
		return "", false
	}
	dev, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", false
	}
	st, err := os.Stat(dev)
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return "", false
	}
	return dev, true
}

// device schedules the block device at in parent, whose node is node, to
// be read as a regular file of the device's size.
func (b *backuper) device(ctx context.Context, parent *dir, at, path string, node tree.Node) *future {
	f, err := parent.open(at, path)
	if err != nil {
		b.report(path, err)
		return skipped()
	}
	size, err := deviceSize(f)
	f.Close()
	if err != nil {
		b.report(path, err)
		return skipped()
	}
	node.Type, node.Rdev, node.Size = tree.File, 0, size
	b.stats.devices.Add(1)
	return b.file(ctx, parent, at, path, node, true)
}

// directory returns the future of a directory whose children children emits
// in name order. A finisher takes the children as they complete and writes
// the listing part by part, so neither side holds a whole huge directory.
func (b *backuper) directory(ctx context.Context, node tree.Node, children func(emit func(*future))) *future {
	b.stats.dirs.Add(1)
	b.prog.Dirs.Add(1)
	f := &future{done: make(chan struct{}), node: node}
	ch := make(chan *future, 1024)
	go func() {
		defer close(f.done)
		var part tree.Part
		var partBytes int
		flush := func() {
			if len(part.Nodes) == 0 {
				return
			}
			id, err := b.w.SavePart(ctx, &part)
			if err != nil {
				b.setFatal(fmt.Errorf("save tree: %w", err))
			}
			f.node.Parts = append(f.node.Parts, tree.PartRef{First: part.Nodes[0].Name, ID: id})
			part.Nodes, partBytes = nil, 0
		}
		for c := range ch {
			<-c.done
			if c.skip {
				continue
			}
			part.Nodes = append(part.Nodes, c.node)
			partBytes += c.node.SizeHint()
			f.node.Entries++
			if len(part.Nodes) >= tree.PartEntries || partBytes >= tree.PartBytes {
				flush()
			}
		}
		flush()
	}()
	children(func(c *future) { ch <- c })
	close(ch)
	return f
}

// file schedules the regular file (or, with device, the block device) at
// in parent. Hard links to an inode already seen share its content.
func (b *backuper) file(ctx context.Context, parent *dir, at, path string, node tree.Node, device bool) *future {
	b.stats.files.Add(1)
	b.stats.bytes.Add(node.Size)
	f := &future{done: make(chan struct{}), node: node}
	if node.Links > 1 {
		key := [2]uint64{node.Device, node.Inode}
		b.linksMu.Lock()
		first, seen := b.links[key]
		if !seen {
			b.links[key] = f
		}
		b.linksMu.Unlock()
		if seen {
			go func() {
				defer close(f.done)
				<-first.done
				if first.skip {
					f.skip = true
					return
				}
				f.node.Extents = first.node.Extents
				f.node.Size = first.node.Size
				f.node.Changed = first.node.Changed
				b.prog.Files.Add(1)
				b.prog.BytesDone.Add(node.Size)
			}()
			return f
		}
	}
	parent.hold()
	select {
	case b.files <- fileJob{dir: parent, at: at, path: path, fut: f, device: device}:
	case <-ctx.Done():
		parent.release()
		f.skip = true
		close(f.done)
	}
	return f
}

func (b *backuper) fileWorker(ctx context.Context) {
	hasher := b.v.Keys().NewHasher(keys.KindData)
	cfg := b.v.Config()
	ch := chunker.New(nil, b.v.Keys().ChunkerSeed, chunker.Params{Min: cfg.Chunker.Min, Avg: cfg.Chunker.Avg, Max: cfg.Chunker.Max})
	for job := range b.files {
		if ctx.Err() != nil || b.fatal() != nil {
			job.dir.release()
			job.fut.skip = true
			close(job.fut.done)
			continue
		}
		read := &fileRead{path: job.path, size: job.fut.node.Size}
		b.prog.reading.Store(&job.fut.node, read)
		err := b.backupFile(ctx, job, hasher, ch)
		b.prog.reading.Delete(&job.fut.node)
		job.dir.release()
		if err != nil {
			job.fut.skip = true
			b.report(job.path, err)
		}
		b.prog.Files.Add(1)
		// The file's size replaces what its reading counted (modular
		// arithmetic: a file read more than once counted more).
		b.prog.BytesDone.Add(job.fut.node.Size - read.read.Load())
		close(job.fut.done)
	}
}

// backupFile fills the job's node's extents, from the file cache when the
// file is unchanged, else by reading it.
func (b *backuper) backupFile(ctx context.Context, job fileJob, hasher *keys.Hasher, ch *chunker.Chunker) error {
	path, node := job.path, &job.fut.node
	if b.opts.Files != nil {
		if rec, ok := b.opts.Files.Get(path); ok {
			// A device's node keeps its times when its content changes:
			// it is read every time.
			if !job.device && rec.Matches(node.Size, cacheStamp(node.MTime), cacheStamp(node.CTime), node.Inode, node.Device) && b.allKnown(rec.Extents) {
				// The cache holds this very record: writing it again
				// would cost a database write per unchanged file (a
				// quarter of a second run's CPU on millions of small
				// files) for nothing.
				node.Extents = treeExtents(rec.Extents)
				b.stats.unchanged.Add(1)
				return nil
			}
			b.stats.changed.Add(1)
		} else {
			b.stats.new.Add(1)
		}
	} else {
		b.stats.new.Add(1)
	}
	if err := b.readFile(ctx, job, hasher, ch); err != nil {
		return err
	}
	if node.Changed {
		return nil // no record: the next run reads it again
	}
	return b.remember(path, node)
}

func (b *backuper) allKnown(extents []filecache.Extent) bool {
	for _, e := range extents {
		if !b.w.Known(e.ID) {
			return false
		}
	}
	return true
}

// treeExtents converts the file cache's extents to a node's.
func treeExtents(es []filecache.Extent) []tree.Extent {
	out := make([]tree.Extent, len(es))
	for i, e := range es {
		out[i] = tree.Extent(e)
	}
	return out
}

// cacheExtents converts a node's extents to the file cache's.
func cacheExtents(es []tree.Extent) []filecache.Extent {
	out := make([]filecache.Extent, len(es))
	for i, e := range es {
		out[i] = filecache.Extent(e)
	}
	return out
}

func (b *backuper) remember(path string, node *tree.Node) error {
	if b.batch == nil {
		return nil
	}
	if b.cacheErr() != nil {
		return nil
	}
	rec := &filecache.Record{Size: node.Size, MTime: cacheStamp(node.MTime), CTime: cacheStamp(node.CTime), Inode: node.Inode, Device: node.Device, Extents: cacheExtents(node.Extents)}
	b.stats.cachePuts.Add(1)
	if err := b.batch.Put(path, rec); err != nil {
		// A cache that cannot be written (its disk is full) costs the next
		// run speed, never this run: stop remembering, drop the batch's
		// unwritten updates (the deferred Cancel) and report it at the end.
		b.batchErr.CompareAndSwap(nil, &err)
	}
	return nil
}

// returnMemory returns the memory the run's buffers held (pack, payload and
// chunk buffers: about 150 MiB at the defaults, garbage once the Writer is
// flushed) to the operating system, in a goroutine of its own, and returns
// what is closed when it is done. It runs while the point is stored, when
// the cores wait for fsyncs: otherwise the kernel frees those pages when
// the process exits (60-80 ms of wall at the end of every backup, measured
// in docs/performance.md §2.4), or, in a long-running agent, the runtime
// keeps them until its scavenger gives them back.
func returnMemory() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		debug.FreeOSMemory()
		close(done)
	}()
	return done
}

// flushCache writes the file cache batch's records, unless a failed write
// stopped it, in a goroutine of its own, and returns where its error (or
// nil) will be sent: the caller receives it before it returns, whether the
// run commits a point or not. The records go in while the run stores its
// last packs, index and point, not after them: a record is used only when
// every chunk it names is in the vault's index (allKnown), so one written
// by a run that then fails to store its data costs the next run a read of
// the file, never a wrong extent.
//
// Then it calls Options.FilesDone: the batch is finished first (Cancel
// after Flush only releases it), so that the caller may close the cache.
func (b *backuper) flushCache() <-chan error {
	done := make(chan error, 1)
	go func() {
		var err error
		if b.batch != nil {
			err = b.cacheErr()
			if err == nil {
				err = b.batch.Flush()
			}
			b.batch.Cancel()
		}
		if b.opts.FilesDone != nil {
			b.opts.FilesDone()
		}
		done <- err
	}()
	return done
}

// cacheErr returns the error that stopped the file cache batch, if any.
func (b *backuper) cacheErr() error {
	if p := b.batchErr.Load(); p != nil {
		return *p
	}
	return nil
}

// readAttempts is how many times readFile reads a file that changes while
// it is read before it keeps what the last read saw: a file that changes
// once (a log rotated, a file rewritten) settles on the second read.
const readAttempts = 3

// testHookChunk, when set (by tests), is called after each chunk a read
// takes from path, with the attempt (from 1) and the offset the chunk ends
// at.
var testHookChunk func(path string, attempt int, end uint64)

// testHookListed, when set (by tests), is called after the walk listed the
// directory at path and before it reads the entries.
var testHookListed func(path string)

// readFile reads the file of job (or the block device, with job.device)
// into its node; holes of sparse files are skipped, all-zero chunks and
// image blocks kept as holes. A file that changes while it is read (its
// size, mtime or ctime differ after the read, or it ends before the size
// it had) is read again, up to readAttempts times; after that the node
// keeps what the last read saw, up to where that read ended, and is
// marked Changed (never a tail of zeros the file did not hold).
func (b *backuper) readFile(ctx context.Context, job fileJob, hasher *keys.Hasher, ch *chunker.Chunker) error {
	path, node := job.path, &job.fut.node
	f, err := job.dir.open(job.at, path)
	if err != nil {
		return err
	}
	defer f.Close()
	for attempt := 1; ; attempt++ {
		changed, err := b.readOnce(ctx, f, path, attempt, job.device, node, hasher, ch)
		if err != nil || !changed {
			return err
		}
		if attempt == readAttempts {
			node.Changed = true
			b.stats.changedWhileRead.Add(1)
			if b.opts.OnChanged != nil {
				b.opts.OnChanged(path)
			}
			return nil
		}
	}
}

// readOnce reads the open file f once into node (its extents, size and
// times) and reports whether the file changed meanwhile. A file that
// looks like a disk image, and a device, is cut into blocks (readImage),
// any other file into content-defined chunks (readChunks).
func (b *backuper) readOnce(ctx context.Context, f *os.File, path string, attempt int, device bool, node *tree.Node, hasher *keys.Hasher, ch *chunker.Chunker) (changed bool, err error) {
	before, err := fstat(f, path)
	if err != nil {
		return false, err
	}
	kind := uint32(unix.S_IFREG)
	if device {
		kind = unix.S_IFBLK
	}
	if before.Ino != node.Inode || before.Mode&unix.S_IFMT != kind {
		return false, &os.PathError{Op: "read", Path: path, Err: errors.New("replaced during backup")}
	}
	size := uint64(before.Size)
	if device {
		if size, err = deviceSize(f); err != nil {
			return false, err
		}
	}
	regions := []region{{0, size}}
	if !device && uint64(before.Blocks)*512 < size {
		if r, err := dataRegions(f, size); err == nil {
			regions = r
		}
	}
	img, isImage, err := recognise(f, size, device, b.v.Config().Chunker.Max)
	if err != nil {
		return false, &os.PathError{Op: "read", Path: path, Err: err}
	}
	node.Extents = node.Extents[:0]
	var end uint64
	if isImage {
		end, err = b.readImage(ctx, f, path, attempt, img, regions, node, hasher)
	} else {
		end, err = b.readChunks(ctx, f, path, attempt, size, regions, node, hasher, ch)
	}
	if err != nil {
		return false, err
	}
	if isImage && attempt == 1 {
		b.stats.images.Add(1)
		if b.opts.OnImage != nil {
			b.opts.OnImage(path, img)
		}
	}
	after, err := fstat(f, path)
	if err != nil {
		return false, err
	}
	resized := after.Size != before.Size
	if device {
		sz, err := deviceSize(f)
		resized = err != nil || sz != size
	}
	// The file ended early (it was truncated): what lies beyond end is
	// not in the file any more.
	short := end < size
	node.Size = min(size, end)
	node.MTime, node.CTime = treeTime(before.Mtim), treeTime(before.Ctim)
	changed = short || resized || after.Mtim != before.Mtim || after.Ctim != before.Ctim
	return changed, nil
}

// readChunks cuts the regions of f into content-defined chunks; a chunk of
// zeros is left a hole. It returns where the read ended: the file's size,
// or less if the file ended early.
func (b *backuper) readChunks(ctx context.Context, f *os.File, path string, attempt int, size uint64, regions []region, node *tree.Node, hasher *keys.Hasher, ch *chunker.Chunker) (end uint64, err error) {
	for _, r := range regions {
		ch.Reset(io.NewSectionReader(f, int64(r.off), int64(r.len)))
		end, err := b.chunkInto(ctx, ch, r.off, path, attempt, node, hasher)
		if err != nil {
			return 0, err
		}
		if end < r.off+r.len {
			return end, nil
		}
	}
	return size, nil
}

// readImage cuts f, recognised as img, into blocks aligned to img.Block
// from offset 0, and a fixed VHD's footer into an extent of its own. A
// block that lies wholly in a hole is not read; one of zeros is left a
// hole. It returns where the read ended: img.Size, or less if the file
// ended early.
func (b *backuper) readImage(ctx context.Context, f *os.File, path string, attempt int, img Image, regions []region, node *tree.Node, hasher *keys.Hasher) (end uint64, err error) {
	next := 0 // the first region that does not end before off
	for off := uint64(0); off < img.Size; {
		n := min(img.Block, img.DataSize-off)
		if off >= img.DataSize {
			n = img.Size - off // the VHD footer
		}
		for next < len(regions) && regions[next].off+regions[next].len <= off {
			next++
		}
		if next == len(regions) {
			break // only a hole remains
		}
		if regions[next].off >= off+n {
			off += n // a hole
			continue
		}
		bp := b.bufs.Get()
		block, err := readBlock(f, *bp, off, n)
		*bp = block
		if err != nil {
			b.bufs.Put(bp)
			return 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if err := b.keep(ctx, path, attempt, node, hasher, off, bp); err != nil {
			return 0, err
		}
		if uint64(len(block)) < n {
			return off + uint64(len(block)), nil
		}
		off += n
	}
	return img.Size, nil
}

// keep makes the piece of content *bp, which starts at off in the file at
// path, an extent of node and sends it to the sealers unless the vault has
// it; a piece of zeros stays a hole. keep owns bp.
func (b *backuper) keep(ctx context.Context, path string, attempt int, node *tree.Node, hasher *keys.Hasher, off uint64, bp *[]byte) error {
	piece := *bp
	b.stats.read.Add(uint64(len(piece)))
	b.prog.BytesRead.Add(uint64(len(piece)))
	if read, ok := b.prog.reading.Load(node); ok {
		read.(*fileRead).read.Add(uint64(len(piece)))
		b.prog.BytesDone.Add(uint64(len(piece)))
	}
	defer func() {
		if testHookChunk != nil {
			testHookChunk(path, attempt, off+uint64(len(piece)))
		}
	}()
	if allZero(piece) {
		b.bufs.Put(bp)
		return nil
	}
	id := hasher.Sum(piece)
	node.Extents = append(node.Extents, tree.Extent{Offset: off, Length: uint32(len(piece)), ID: id})
	if b.w.Known(id) {
		b.bufs.Put(bp)
		return nil
	}
	select {
	case b.seals <- sealJob{id: id, buf: bp}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chunkInto reads ch to its end, appending to node's extents the chunks
// it cuts from offset off on (a chunk of zeros stays a hole), and hands
// new chunks to the sealers; it returns the offset where the input ended.
// path names the input in errors and in testHookChunk, with attempt.
func (b *backuper) chunkInto(ctx context.Context, ch *chunker.Chunker, off uint64, path string, attempt int, node *tree.Node, hasher *keys.Hasher) (uint64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		bp := b.bufs.Get()
		chunk, err := ch.Next((*bp)[:0])
		if err == io.EOF {
			b.bufs.Put(bp)
			return off, nil
		}
		if err != nil {
			b.bufs.Put(bp)
			return off, &os.PathError{Op: "read", Path: path, Err: err}
		}
		*bp = chunk
		if err := b.keep(ctx, path, attempt, node, hasher, off, bp); err != nil {
			return off, err
		}
		off += uint64(len(chunk))
	}
}

// fstat returns the status of the open file f, whose path is path.
func fstat(f *os.File, path string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return &st, nil
}

func (b *backuper) sealer(ctx context.Context) {
	for job := range b.seals {
		if b.fatal() == nil {
			if _, err := b.w.Save(ctx, keys.KindData, job.id, *job.buf); err != nil {
				b.setFatal(fmt.Errorf("store data: %w", err))
			}
		}
		*job.buf = (*job.buf)[:0]
		b.bufs.Put(job.buf)
	}
}

type region struct{ off, len uint64 }

// dataRegions lists the parts of a sparse file that hold data.
func dataRegions(f *os.File, size uint64) ([]region, error) {
	fd := int(f.Fd())
	var out []region
	var off int64
	for uint64(off) < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if uint64(hole) > size {
			hole = int64(size)
		}
		if hole > data {
			out = append(out, region{uint64(data), uint64(hole - data)})
		}
		off = hole
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	return out, nil
}

// scan counts files and bytes ahead of the backup for the progress ETA. It
// runs ahead of the walker, so it lists directories as the walker does:
// by name in their parent, without touching their atimes, leaving out what
// rules do.
func scan(ctx context.Context, paths []string, rules *walkRules, p *Progress) {
	var walk func(parent *dir, at, path string)
	walk = func(parent *dir, at, path string) {
		if ctx.Err() != nil {
			return
		}
		var st unix.Stat_t
		if unix.Fstatat(parent.fd, at, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return
		}
		mode := st.Mode & unix.S_IFMT
		size := int64(-1)
		if mode == unix.S_IFREG {
			size = st.Size
		}
		if rules.decide(parent, path, st.Dev, st.Ino, mode == unix.S_IFDIR, size) != keep {
			return
		}
		switch mode {
		case unix.S_IFREG:
			p.TotalFiles.Add(1)
			p.TotalBytes.Add(uint64(st.Size))
		case unix.S_IFDIR:
			d, err := openDirAt(parent, at, path)
			if err != nil {
				return
			}
			defer d.release()
			d.walked, d.dev = true, st.Dev
			names, _ := d.names()
			for _, n := range rules.tagged(d, path, names) {
				walk(d, n, filepath.Join(path, n))
			}
		}
	}
	for _, root := range paths {
		if parent, at, err := openParent(root); err == nil {
			walk(parent, at, root)
			parent.release()
		}
	}
	p.ScanDone.Store(ctx.Err() == nil)
}

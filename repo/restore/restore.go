// Package restore writes a recovery point, or a part of it, back to a
// directory without mounting it: in parallel, holes left as holes, with its
// metadata exactly (type, mode, owner, times to the nanosecond, symlink
// targets, hard links, xattrs, devices, FIFOs, sockets), and resumable: a
// file already there is compared chunk by chunk with the point through the
// vault's keyed chunk IDs, and only chunks that differ are fetched, so a
// second run after an interruption fetches nothing that is already right.
//
// It reads the point's tree with package browse (the readers ls, find and
// dump use), and chunks by pack span, as restic restores pack by pack: the
// chunks that lie next to each other in a pack are loaded with one request
// and each is opened once for all the extents that need it (fetch.go). It
// never holds a whole directory (one tree part per level being walked), a
// whole file, or the whole plan (at most maxBatched extents wait for a
// fetch, and each fetch worker holds one span of at most 4 MiB).
package restore

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/tree"
)

// Source supplies a point's tree parts and chunks (*repo.Area is one) and
// the key set whose keyed hashes name its chunks, with which content
// already on disk is compared.
type Source interface {
	browse.ContentSource
	Keys() *keys.KeySet
	// The pack reads chunks are fetched by (see fetch.go): where a chunk
	// is, a span of a pack, a chunk opened out of it into a reused
	// buffer, and a copy found bad there, for Chunk to try the others.
	Index() *index.Index
	LoadPackRange(ctx context.Context, pack keys.ID, off, length int64) ([]byte, error)
	OpenBlobInto(dst []byte, kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error)
	NoteBadCopy(blob, pack keys.ID)
}

// Overwrite says what happens to an entry that already exists in the target.
type Overwrite uint8

const (
	// Always replaces every existing entry with the point's. A regular
	// file is compared chunk by chunk first (keyed hash of its bytes
	// against the chunk ID), and only chunks that differ are fetched.
	Always Overwrite = iota
	// IfChanged leaves a regular file whose size and mtime (to the
	// nanosecond) are the point's without reading it; other entries as
	// Always.
	IfChanged
	// Never leaves every existing entry as it is (a directory is still
	// entered, and what is missing below it restored).
	Never
)

// ErrOverwrite reports an --overwrite value that is none of the three.
var ErrOverwrite = errkind.New(errkind.Invalid, "invalid overwrite mode")

// ParseOverwrite reads "always", "if-changed" or "never".
func ParseOverwrite(s string) (Overwrite, error) {
	switch s {
	case "always":
		return Always, nil
	case "if-changed":
		return IfChanged, nil
	case "never":
		return Never, nil
	}
	return 0, fmt.Errorf("%w %q: use always, if-changed or never", ErrOverwrite, s)
}

// Select sets o's Include and Exclude from patterns as restore's flags
// give them (restic's syntax; the i variants ignore case). An include
// pattern may not re-include ("!"): that is what exclude patterns do.
func (o *Options) Select(include, iinclude, exclude, iexclude []string) error {
	for _, l := range []struct {
		texts []string
		fold  bool
	}{{include, false}, {iinclude, true}} {
		for _, s := range l.texts {
			p, err := selection.ParsePattern(s, l.fold)
			if err != nil {
				return err
			}
			if p.Negated() {
				return fmt.Errorf("%w %q: --include takes no re-include (!); use --exclude", selection.ErrBadPattern, s)
			}
			o.Include = append(o.Include, p)
		}
	}
	for _, l := range []struct {
		texts []string
		fold  bool
	}{{exclude, false}, {iexclude, true}} {
		for _, s := range l.texts {
			if err := o.Exclude.Add(s, l.fold); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o Overwrite) String() string {
	return [...]string{"always", "if-changed", "never"}[o]
}

// Options tune a restore.
type Options struct {
	// Include, when it holds patterns, restores only the entries one of
	// them matches, with everything below them and the directories above
	// them (restic's --include); Exclude leaves out what it matches, with
	// everything below (restic's --exclude, re-includes "!" too).
	// Patterns have restic's syntax (package selection) and are matched
	// against the path below the restored directory, starting with "/"
	// ("/home/alice/report.odt" when the whole point is restored).
	Include   []selection.Pattern
	Exclude   selection.Patterns
	Overwrite Overwrite
	// Verify reads every restored file back and compares it with the
	// point (chunk IDs, holes read as zeros).
	Verify bool
	// Workers is how many pack spans are fetched and written at once,
	// and how many extents over existing files are compared at once
	// (default 4 × GOMAXPROCS).
	Workers int
	// Progress, when set, is updated as the run goes; a concurrent walk of
	// the tree fills its totals for an ETA.
	Progress *Progress
	// OnError is called for each entry that could not be restored; the
	// run goes on and returns ErrIncomplete.
	OnError func(path string, err error)
}

// Progress counts a run's work; read it from another goroutine.
type Progress struct {
	Files, Dirs, Others, Errors atomic.Uint64
	BytesDone                   atomic.Uint64 // of file content restored or found right
	BytesFetched                atomic.Uint64 // content fetched from the vault
	// Filled by a concurrent walk for the ETA; ScanDone says it is complete.
	TotalFiles, TotalBytes atomic.Uint64
	ScanDone               atomic.Bool
	// Current is the path of a file being written (nil when none).
	Current atomic.Pointer[string]
}

// Result sums up a run.
type Result struct {
	Files          uint64 `json:"files"`
	Dirs           uint64 `json:"dirs"`
	Others         uint64 `json:"others"` // symlinks, devices, FIFOs, sockets
	Bytes          uint64 `json:"bytes"`  // logical size of the restored files
	FilesUnchanged uint64 `json:"files_unchanged"`
	Skipped        uint64 `json:"skipped"` // existing entries left alone (--overwrite never)
	ChunksFetched  uint64 `json:"chunks_fetched"`
	ChunksKept     uint64 `json:"chunks_kept"` // already right on disk
	BytesFetched   uint64 `json:"bytes_fetched"`
	FilesVerified  uint64 `json:"files_verified,omitempty"`
	Errors         uint64 `json:"errors"`
}

// ErrIncomplete is returned (wrapped) when some entries could not be
// restored; each was reported through Options.OnError.
var ErrIncomplete = errkind.New(errkind.Partial, "restore is incomplete")

// ErrVerify reports a restored file whose bytes are not the point's.
var ErrVerify = errkind.New(errkind.Damaged, "restored file differs from the point")

// Run restores the entry at path p of the point whose root part is root
// into target: a directory's contents go into target (created if missing),
// a single entry to target/<its name>. The whole point is p "" or "/".
func Run(ctx context.Context, src Source, root keys.ID, p string, target string, opts Options) (Result, error) {
	node, err := browse.Lookup(ctx, src, root, p)
	if err != nil {
		return Result{}, fmt.Errorf("restore %q: %w", p, err)
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return Result{}, fmt.Errorf("restore into %q: %w", target, err)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	r := &run{src: src, opts: opts, target: abs, links: make(map[linkKey]string)}
	if r.prog = opts.Progress; r.prog == nil {
		r.prog = new(Progress)
	}
	_, statErr := os.Lstat(abs)
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return Result{}, fmt.Errorf("restore into %q: %w", target, err)
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("restore into %q: %w", target, &os.PathError{Op: "open", Path: abs, Err: err})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Progress != nil {
		go r.scan(ctx, node)
	}
	// Files are opened (created, or compared with what is there) by file
	// openers; the extents of a file that was there are compared with
	// the point by checkers; the extents to fetch are gathered by the
	// batcher into pack spans, which fetchers load, open and write. Each
	// stage waits only on the ones after it, never the other way round.
	// Creating files in one directory from many threads only contends
	// for the directory's lock: one opener per core.
	r.opens = make(chan *fileTask, opts.Workers)
	r.checks = make(chan checkJob, 2*opts.Workers)
	r.fetches = make(chan fetchJob, opts.Workers)
	r.spans = make(chan *span)
	var openers, checkers, fetchers sync.WaitGroup
	for range min(opts.Workers, runtime.GOMAXPROCS(0)) {
		openers.Go(func() { r.openFiles(ctx) })
	}
	for range opts.Workers {
		checkers.Go(func() { r.checkChunks(ctx) })
		fetchers.Go(func() { r.fetchSpans(ctx) })
	}
	fetchers.Go(func() { r.batchFetches(ctx) })
	// The target directory is the restored directory itself; a single
	// entry goes below it.
	top := &dirTask{run: r, fd: fd, rel: ".", name: abs, made: true, existed: statErr == nil}
	top.pending.Store(1)
	if node.Type == tree.Dir {
		top.node = node // its metadata is the restored directory's
		r.walkDir(ctx, top, "")
	} else {
		r.entry(ctx, top, node, "/"+node.Name, false)
	}
	top.done()
	close(r.opens)
	openers.Wait()
	close(r.checks)
	checkers.Wait()
	close(r.fetches)
	fetchers.Wait()
	res := r.result()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("%w: %d entries could not be restored", ErrIncomplete, res.Errors)
	}
	return res, nil
}

// run is one restore.
type run struct {
	src     Source
	opts    Options
	target  string
	prog    *Progress
	opens   chan *fileTask
	checks  chan checkJob
	fetches chan fetchJob
	spans   chan *span

	mu    sync.Mutex
	links map[linkKey]string // hard-linked inodes restored: their first path below target

	files, dirs, others, bytes, unchanged, skipped atomic.Uint64
	fetched, kept, bytesFetched, verified, errs    atomic.Uint64
}

// linkKey names an inode of the backed-up file system.
type linkKey struct{ dev, ino uint64 }

func (r *run) result() Result {
	return Result{
		Files: r.files.Load(), Dirs: r.dirs.Load(), Others: r.others.Load(), Bytes: r.bytes.Load(),
		FilesUnchanged: r.unchanged.Load(), Skipped: r.skipped.Load(),
		ChunksFetched: r.fetched.Load(), ChunksKept: r.kept.Load(), BytesFetched: r.bytesFetched.Load(),
		FilesVerified: r.verified.Load(), Errors: r.errs.Load(),
	}
}

// fail reports that the entry at rel (below the target) could not be
// restored.
func (r *run) fail(rel string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	r.errs.Add(1)
	r.prog.Errors.Add(1)
	if r.opts.OnError != nil {
		r.opts.OnError(rel, err)
	}
}

// scan walks the tree once more, without reading content, for the totals
// of the progress.
func (r *run) scan(ctx context.Context, node *tree.Node) {
	err := browse.Walk(ctx, r.src, "/", node, func(p string, n *tree.Node) error {
		if n.Type == tree.Dir && p != "/" && r.opts.Exclude.ExcludedPath(p) {
			return iofs.SkipDir
		}
		if n.Type == tree.File && !r.opts.Exclude.ExcludedPath(p) && r.included(p, false) {
			r.prog.TotalFiles.Add(1)
			r.prog.TotalBytes.Add(n.Size)
		}
		return ctx.Err()
	})
	if err == nil {
		r.prog.ScanDone.Store(true)
	}
}

// dirTask is a directory being restored. Its metadata is set once the walk
// has left it and every file below it is finished (pending reaches zero),
// since creating entries in it changes its times.
type dirTask struct {
	run    *run
	parent *dirTask
	node   *tree.Node // nil for the target holding a single restored entry
	rel    string     // path below the target, "." for the target
	name   string     // name in the parent
	fd     int        // open once made
	made   bool       // exists on disk (walker only)
	// existed: it was there before the run, so entries may be in the way
	// in it, and Never leaves its metadata alone.
	existed bool
	pending atomic.Int64
}

// make creates the directory and those above it that the walk has not
// made yet: with Include, a directory is made only when something below it
// is restored.
func (d *dirTask) make() error {
	if d.made {
		return nil
	}
	if err := d.parent.make(); err != nil {
		return err
	}
	err := unix.Mkdirat(d.parent.fd, d.name, 0o700)
	d.existed = err != nil && errors.Is(err, unix.EEXIST)
	if err != nil && !d.existed {
		return &os.PathError{Op: "mkdir", Path: d.rel, Err: err}
	}
	fd, err := unix.Openat(d.parent.fd, d.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			err = fmt.Errorf("exists and is not a directory (left alone): %w", iofs.ErrExist)
		}
		return &os.PathError{Op: "open", Path: d.rel, Err: err}
	}
	d.fd, d.made = fd, true
	d.parent.pending.Add(1)
	d.run.dirs.Add(1)
	d.run.prog.Dirs.Add(1)
	return nil
}

// done notes that the walk of d, or one file below it, is finished; the
// last one sets d's metadata and closes it.
func (d *dirTask) done() {
	if d.pending.Add(-1) != 0 {
		return
	}
	r := d.run
	if d.node != nil && (!d.existed || r.opts.Overwrite != Never) {
		if err := r.setMeta(d.parentFD(), d.name, d.node, d.existed); err != nil {
			r.fail(d.rel, err)
		}
	}
	unix.Close(d.fd)
	if d.parent != nil {
		d.parent.done()
	}
}

// parentFD returns the descriptor d's name is relative to: its parent's,
// or for the target itself the current directory (d.name is then the
// target's absolute path). A parent stays open until all it holds is done.
func (d *dirTask) parentFD() int {
	if d.parent == nil {
		return unix.AT_FDCWD
	}
	return d.parent.fd
}

// walkDir restores what directory d holds; sel is the path matched
// against the patterns ("" for the restored directory, then "/a/b").
// selected says that an ancestor matched Include.
func (r *run) walkDir(ctx context.Context, d *dirTask, sel string) {
	r.walkEntries(ctx, d, sel, len(r.opts.Include) == 0)
}

// included reports whether the entry at p is restored as far as Include
// says, given whether an ancestor was (selected).
func (r *run) included(p string, selected bool) bool {
	if selected || len(r.opts.Include) == 0 {
		return true
	}
	for _, pat := range r.opts.Include {
		if pat.Match(p) {
			return true
		}
	}
	return false
}

func (r *run) walkEntries(ctx context.Context, d *dirTask, sel string, selected bool) {
	for n, err := range browse.Entries(ctx, r.src, d.node) {
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.fail(d.rel, err)
			return
		}
		r.entry(ctx, d, n, sel+"/"+n.Name, selected)
	}
}

// entry restores n, an entry of directory d; p is its path for the
// patterns.
func (r *run) entry(ctx context.Context, d *dirTask, n *tree.Node, p string, selected bool) {
	if r.opts.Exclude.ExcludedPath(p) {
		return
	}
	selected = r.included(p, selected)
	rel := path.Join(d.rel, n.Name)
	if n.Type == tree.Dir {
		child := &dirTask{run: r, parent: d, node: n, rel: rel, name: n.Name}
		child.pending.Store(1)
		if selected {
			if err := child.make(); err != nil {
				r.fail(rel, err)
				return
			}
		}
		r.walkEntries(ctx, child, p, selected)
		if child.made {
			child.done()
		}
		return
	}
	if !selected {
		return
	}
	if err := d.make(); err != nil {
		r.fail(rel, err)
		return
	}
	if n.Type == tree.File {
		r.file(ctx, d, n, rel)
		return
	}
	if err := r.special(d, n, rel); err != nil {
		r.fail(rel, err)
	}
}

// special restores a symlink, device, FIFO or socket, or a further name of
// a hard-linked one.
func (r *run) special(d *dirTask, n *tree.Node, rel string) error {
	if linked, err := r.hardLink(d, n, rel); linked || err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if r.opts.Overwrite == Never {
			r.skipped.Add(1)
			return nil
		}
		if sameSpecial(&st, n) {
			return r.doneSpecial(d, n, true)
		}
		if err := remove(d.fd, n.Name, &st); err != nil {
			return &os.PathError{Op: "replace", Path: rel, Err: err}
		}
	}
	var err error
	switch n.Type {
	case tree.Symlink:
		err = unix.Symlinkat(n.Target, d.fd, n.Name)
	case tree.CharDev:
		err = unix.Mknodat(d.fd, n.Name, unix.S_IFCHR|0o600, int(n.Rdev))
	case tree.BlockDev:
		err = unix.Mknodat(d.fd, n.Name, unix.S_IFBLK|0o600, int(n.Rdev))
	case tree.FIFO:
		err = unix.Mknodat(d.fd, n.Name, unix.S_IFIFO|0o600, 0)
	case tree.Socket:
		err = unix.Mknodat(d.fd, n.Name, unix.S_IFSOCK|0o600, 0)
	default:
		err = fmt.Errorf("%w: unknown type %s", repo.ErrDamaged, n.Type)
	}
	if err != nil {
		return &os.PathError{Op: "create " + n.Type.String(), Path: rel, Err: err}
	}
	r.noteFirstLink(n, rel)
	return r.doneSpecial(d, n, false)
}

// doneSpecial sets the metadata of the special entry n in d.
func (r *run) doneSpecial(d *dirTask, n *tree.Node, existed bool) error {
	if err := r.setMeta(d.fd, n.Name, n, existed); err != nil {
		return err
	}
	r.others.Add(1)
	r.prog.Others.Add(1)
	return nil
}

// sameSpecial reports whether st, an existing entry, already is the
// special entry n but for its metadata. A symlink is always made again.
func sameSpecial(st *unix.Stat_t, n *tree.Node) bool {
	if st.Mode&unix.S_IFMT != n.Type.StatType() || st.Nlink > 1 {
		return false
	}
	switch n.Type {
	case tree.CharDev, tree.BlockDev:
		return st.Rdev == n.Rdev
	case tree.Symlink:
		return false // cheap to make again, and its target must be read to compare
	}
	return true
}

// remove deletes the non-directory entry name of directory dirfd, and
// refuses a directory: restore never deletes a tree that is in the way.
func remove(dirfd int, name string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("a directory is in the way (left alone): %w", iofs.ErrExist)
	}
	return unix.Unlinkat(dirfd, name, 0)
}

// hardLink links rel to the first restored name of n's inode, when n is a
// further name of a hard-linked inode; linked reports that it was.
func (r *run) hardLink(d *dirTask, n *tree.Node, rel string) (linked bool, err error) {
	if n.Links < 2 {
		return false, nil
	}
	r.mu.Lock()
	first, ok := r.links[linkKey{n.Device, n.Inode}]
	r.mu.Unlock()
	if !ok {
		return false, nil
	}
	firstPath := filepath.Join(r.target, first)
	var want, st unix.Stat_t
	if err := unix.Lstat(firstPath, &want); err != nil {
		return true, &os.PathError{Op: "hard link to " + strconv.Quote(first), Path: rel, Err: err}
	}
	if err := unix.Fstatat(d.fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Dev == want.Dev && st.Ino == want.Ino {
			return true, nil
		}
		if r.opts.Overwrite == Never {
			r.skipped.Add(1)
			return true, nil
		}
		if err := remove(d.fd, n.Name, &st); err != nil {
			return true, &os.PathError{Op: "replace", Path: rel, Err: err}
		}
	}
	if err := unix.Linkat(unix.AT_FDCWD, firstPath, d.fd, n.Name, 0); err != nil {
		return true, &os.PathError{Op: "hard link to " + strconv.Quote(first), Path: rel, Err: err}
	}
	return true, nil
}

// noteFirstLink remembers rel as the first restored name of n's inode when
// the inode has further names.
func (r *run) noteFirstLink(n *tree.Node, rel string) {
	if n.Links < 2 {
		return
	}
	r.mu.Lock()
	r.links[linkKey{n.Device, n.Inode}] = rel
	r.mu.Unlock()
}

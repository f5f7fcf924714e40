package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// fileTask is a regular file being written: its extents are chunk jobs the
// workers do in any order; the last one to end finishes the file.
type fileTask struct {
	run  *run
	dir  *dirTask
	node tree.Node
	rel  string
	fd   int
	// existed: the file was there before the run (xattrs it has and the
	// point does not are removed).
	existed bool
	pending atomic.Int64 // chunk jobs not done, plus one while they are queued

	mu  sync.Mutex
	err error // the first failure
}

// checkJob is one extent of a file that was there before the run: the
// file's bytes there are read first and kept when their keyed hash is the
// chunk's ID, else the extent is fetched.
type checkJob struct {
	f   *fileTask
	ext tree.Extent
}

// file restores the regular file n into d: a further name of a hard-linked
// file is linked here; the first name of one is opened here, so that the
// links the walk meets later find it; any other file is handed to the file
// workers.
func (r *run) file(ctx context.Context, d *dirTask, n *tree.Node, rel string) {
	if linked, err := r.hardLink(d, n, rel); linked || err != nil {
		if err != nil {
			r.fail(rel, err)
		}
		return
	}
	f := &fileTask{run: r, dir: d, node: *n, rel: rel}
	d.pending.Add(1)
	if n.Links > 1 {
		f.start(ctx)
		return
	}
	select {
	case r.opens <- f:
	case <-ctx.Done():
		d.done()
	}
}

// openFiles starts the files the walk hands on until it ends.
func (r *run) openFiles(ctx context.Context) {
	for f := range r.opens {
		f.start(ctx)
	}
}

// start opens f and hands its extents on: those over what was on disk to
// the checkers, the others to the batcher, which fetches them by pack span.
func (f *fileTask) start(ctx context.Context) {
	r, n := f.run, &f.node
	r.prog.Current.Store(&f.rel)
	checkBelow, err := f.open()
	if err != nil || f.fd < 0 {
		if err != nil {
			r.fail(f.rel, err)
		}
		f.dir.done()
		return
	}
	r.noteFirstLink(n, f.rel)
	r.prog.BytesDone.Add(n.Size - n.StoredBytes()) // holes
	f.pending.Store(1)
	for _, e := range n.Extents {
		f.pending.Add(1)
		var err error
		if e.Offset < checkBelow {
			err = send(ctx, r.checks, checkJob{f: f, ext: e})
		} else {
			err = send(ctx, r.fetches, fetchJob{f: f, ext: e})
		}
		if err != nil {
			f.extentDone(err)
		}
	}
	f.extentDone(nil)
}

// send puts v on ch unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// open opens or creates the file for writing. An existing file is reused
// (Always, IfChanged): it is cut or extended to the point's size, data where
// the point has holes is punched out, and checkBelow is its old size: the
// extents starting below it are compared before they are fetched. An
// unchanged file (IfChanged) or one left alone (Never) is finished here and
// f.fd is -1.
func (f *fileTask) open() (checkBelow uint64, err error) {
	r, d, n := f.run, f.dir, &f.node
	f.fd = -1
	if r.opts.Overwrite == Always && !d.existed {
		// In a directory this run made, nothing is in the way.
		return 0, f.create()
	}
	var st unix.Stat_t
	err = unix.Fstatat(d.fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return 0, f.create()
	case err != nil:
		return 0, &os.PathError{Op: "stat", Path: f.rel, Err: err}
	case r.opts.Overwrite == Never:
		r.noteFirstLink(n, f.rel)
		r.skipped.Add(1)
		return 0, nil
	case st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink > 1 && n.Links < 2:
		// Not a file, or a file with other names the point does not
		// give it: replaced, not written through.
		if err := remove(d.fd, n.Name, &st); err != nil {
			return 0, &os.PathError{Op: "replace", Path: f.rel, Err: err}
		}
		return 0, f.create()
	}
	f.existed = true
	if r.opts.Overwrite == IfChanged && uint64(st.Size) == n.Size && st.Mtim.Sec == n.MTime.Sec && st.Mtim.Nsec == int64(n.MTime.Nsec) {
		r.noteFirstLink(n, f.rel)
		if err := r.setMeta(d.fd, n.Name, n, true); err != nil {
			return 0, err
		}
		r.unchanged.Add(1)
		r.countFile(n)
		r.prog.BytesDone.Add(n.Size)
		return 0, nil
	}
	fd, err := unix.Openat(d.fd, n.Name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: f.rel, Err: err}
	}
	if uint64(st.Size) != n.Size {
		if err := unix.Ftruncate(fd, int64(n.Size)); err != nil {
			unix.Close(fd)
			return 0, &os.PathError{Op: "truncate", Path: f.rel, Err: err}
		}
	}
	if err := punchGaps(fd, n); err != nil {
		unix.Close(fd)
		return 0, &os.PathError{Op: "punch holes", Path: f.rel, Err: err}
	}
	f.fd = fd
	return min(uint64(st.Size), n.Size), nil
}

// create makes the file anew at the point's size: all holes until its
// chunks are written. (A file whose last chunk ends at its end gets its
// size from that write.)
func (f *fileTask) create() error {
	fd, err := unix.Openat(f.dir.fd, f.node.Name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: f.rel, Err: err}
	}
	n := &f.node
	if k := len(n.Extents); k == 0 && n.Size > 0 || k > 0 && n.Extents[k-1].Offset+uint64(n.Extents[k-1].Length) < n.Size {
		if err := unix.Ftruncate(fd, int64(n.Size)); err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "truncate", Path: f.rel, Err: err}
		}
	}
	f.fd = fd
	return nil
}

// punchGaps makes every range of the open file fd that n has no extent for
// a hole, where it holds data.
func punchGaps(fd int, n *tree.Node) error {
	var pos uint64
	for i := 0; i <= len(n.Extents); i++ {
		end := n.Size
		if i < len(n.Extents) {
			end = n.Extents[i].Offset
		}
		if end > pos {
			data, err := unix.Seek(fd, int64(pos), unix.SEEK_DATA)
			if err == nil && uint64(data) < end {
				if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(pos), int64(end-pos)); err != nil {
					return err
				}
			} else if err != nil && !errors.Is(err, unix.ENXIO) {
				return err
			}
		}
		if i < len(n.Extents) {
			pos = n.Extents[i].Offset + uint64(n.Extents[i].Length)
		}
	}
	return nil
}

// extentDone notes the end of one chunk job (or of queueing them); the last
// finishes the file.
func (f *fileTask) extentDone(err error) {
	if err != nil {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
	}
	if f.pending.Add(-1) == 0 {
		f.finish()
	}
}

// finish verifies the file if asked, sets its metadata (times last, so an
// interrupted file never looks finished to IfChanged) and closes it.
func (f *fileTask) finish() {
	r := f.run
	err := f.err
	if err == nil && r.opts.Verify {
		if err = verify(f.fd, &f.node, r.src.Keys()); err == nil {
			r.verified.Add(1)
		}
	}
	if err == nil {
		err = r.setMeta(f.dir.fd, f.node.Name, &f.node, f.existed)
	}
	if cerr := unix.Close(f.fd); cerr != nil && err == nil {
		err = &os.PathError{Op: "close", Path: f.rel, Err: cerr}
	}
	if err != nil {
		r.fail(f.rel, err)
	} else {
		r.countFile(&f.node)
	}
	f.dir.done()
}

// countFile counts a restored file.
func (r *run) countFile(n *tree.Node) {
	r.files.Add(1)
	r.bytes.Add(n.Size)
	r.prog.Files.Add(1)
}

// checkChunks does check jobs until the queue closes: an extent whose
// bytes on disk are the chunk's is kept, the others are fetched.
func (r *run) checkChunks(ctx context.Context) {
	h := r.src.Keys().NewHasher(keys.KindData)
	var buf []byte
	for j := range r.checks {
		if err := ctx.Err(); err != nil {
			j.f.extentDone(err)
			continue
		}
		e := j.ext
		if cap(buf) < int(e.Length) {
			buf = make([]byte, e.Length)
		}
		b := buf[:e.Length]
		if n, err := unix.Pread(j.f.fd, b, int64(e.Offset)); err == nil && n == len(b) && h.Sum(b) == e.ID {
			r.kept.Add(1)
			r.prog.BytesDone.Add(uint64(e.Length))
			j.f.extentDone(nil)
			continue
		}
		if err := send(ctx, r.fetches, fetchJob(j)); err != nil {
			j.f.extentDone(err)
		}
	}
}

// verify reads the open file fd back and compares it with n: every extent's
// keyed hash with its chunk ID, and the data in its holes with zeros.
func verify(fd int, n *tree.Node, ks *keys.KeySet) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if uint64(st.Size) != n.Size {
		return fmt.Errorf("%w: size %d, the point's is %d", ErrVerify, st.Size, n.Size)
	}
	h := ks.NewHasher(keys.KindData)
	var buf []byte
	var pos uint64
	for i := 0; i <= len(n.Extents); i++ {
		end := n.Size
		if i < len(n.Extents) {
			end = n.Extents[i].Offset
		}
		if err := verifyZeros(fd, pos, end); err != nil {
			return err
		}
		if i == len(n.Extents) {
			break
		}
		e := n.Extents[i]
		if cap(buf) < int(e.Length) {
			buf = make([]byte, e.Length)
		}
		b := buf[:e.Length]
		k, err := unix.Pread(fd, b, int64(e.Offset))
		if err != nil {
			return err
		}
		if k != len(b) || h.Sum(b) != e.ID {
			return fmt.Errorf("%w: bytes %d to %d", ErrVerify, e.Offset, e.Offset+uint64(e.Length))
		}
		pos = e.Offset + uint64(e.Length)
	}
	return nil
}

// verifyZeros checks that [pos, end) of fd reads as zeros, reading only the
// data the file system holds there (SEEK_DATA).
func verifyZeros(fd int, pos, end uint64) error {
	var buf []byte
	for pos < end {
		data, err := unix.Seek(fd, int64(pos), unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || err == nil && uint64(data) >= end {
			return nil
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		stop := min(uint64(hole), end)
		for off := uint64(data); off < stop; {
			k := min(stop-off, 1<<20)
			if uint64(cap(buf)) < k {
				buf = make([]byte, k)
			}
			b := buf[:k]
			if _, err := unix.Pread(fd, b, int64(off)); err != nil {
				return err
			}
			for _, c := range b {
				if c != 0 {
					return fmt.Errorf("%w: data in a hole at %d", ErrVerify, off)
				}
			}
			off += k
		}
		pos = stop
	}
	return nil
}

var _ Source = (*repo.Area)(nil)

package restore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/tree"
)

// Chunks are fetched by pack span, as restic restores pack by pack: the
// extents files need are gathered in a batch (in the walk's order, which is
// the order the backup wrote them in), grouped by the pack their chunk is
// in, and the chunks that lie next to each other in a pack are loaded with
// one request (a span). Each chunk is opened once per batch however many
// extents need it, and written to all of them. Only the chunks needed are
// loaded: a span never covers a byte of a chunk no extent asked for, so a
// second run after an interruption fetches nothing that is already right.
const (
	// maxSpan bounds the bytes one request loads (a single larger chunk
	// is loaded alone).
	maxSpan = 4 << 20
	// maxBatched bounds the extents waiting in the batcher: each holds its
	// file open.
	maxBatched = 512
)

// fetchJob is one extent of an open file to fetch and write.
type fetchJob struct {
	f   *fileTask
	ext tree.Extent
}

// span is a run of chunks lying next to each other in one pack, loaded
// with one request; a span whose chunk the index does not locate as data
// (alone) is fetched through Source.Chunk, which reports why.
type span struct {
	pack   keys.ID
	off    int64
	length int64
	alone  bool
	chunks []*spanChunk // in pack order
}

// spanChunk is one chunk of a span and the extents it is written to.
type spanChunk struct {
	id   keys.ID
	loc  index.Location
	jobs []fetchJob
}

// batchFetches gathers the extents the openers and checkers hand on into
// spans, and hands the spans to the fetch workers: while every worker is
// busy, extents accumulate (up to maxBatched), and a worker that is free
// takes what is planned, so batches grow with the load and no extent
// waits for a batch to fill.
func (r *run) batchFetches(ctx context.Context) {
	defer close(r.spans)
	in := r.fetches
	var pending []fetchJob
	var ready []*span
	queued := 0 // extents in pending and ready
	for in != nil || len(pending) > 0 || len(ready) > 0 {
		if len(ready) == 0 && len(pending) > 0 {
			ready = r.plan(pending)
			pending = nil
		}
		recv := in
		if queued >= maxBatched {
			recv = nil
		}
		var out chan<- *span
		var next *span
		if len(ready) > 0 {
			out, next = r.spans, ready[0]
		}
		select {
		case j, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			pending = append(pending, j)
			queued++
		case out <- next:
			ready[0] = nil
			ready = ready[1:]
			for _, c := range next.chunks {
				queued -= len(c.jobs)
			}
		}
	}
}

// plan groups jobs by chunk, and the chunks into spans: by pack, in pack
// order, those that touch merged while the span stays within maxSpan.
func (r *run) plan(jobs []fetchJob) []*span {
	idx := r.src.Index()
	byID := make(map[keys.ID]*spanChunk, len(jobs))
	var located []*spanChunk
	var spans []*span
	for _, j := range jobs {
		if c := byID[j.ext.ID]; c != nil {
			c.jobs = append(c.jobs, j)
			continue
		}
		c := &spanChunk{id: j.ext.ID, jobs: []fetchJob{j}}
		byID[c.id] = c
		loc, ok := idx.Lookup(c.id)
		if !ok || loc.Kind != keys.KindData {
			spans = append(spans, &span{alone: true, chunks: []*spanChunk{c}})
			continue
		}
		c.loc = loc
		located = append(located, c)
	}
	slices.SortFunc(located, func(a, b *spanChunk) int {
		if c := bytes.Compare(a.loc.Pack[:], b.loc.Pack[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.loc.Offset, b.loc.Offset)
	})
	var cur *span
	for _, c := range located {
		off, length := int64(c.loc.Offset), int64(c.loc.Length)
		if cur != nil && cur.pack == c.loc.Pack && cur.off+cur.length == off && cur.length+length <= maxSpan {
			cur.length += length
			cur.chunks = append(cur.chunks, c)
			continue
		}
		cur = &span{pack: c.loc.Pack, off: off, length: length, chunks: []*spanChunk{c}}
		spans = append(spans, cur)
	}
	return spans
}

// fetchSpans loads the spans the batcher hands on, opens their chunks and
// writes each to every extent that needs it, until the batcher is done.
func (r *run) fetchSpans(ctx context.Context) {
	// The plaintext, reused chunk after chunk. Never nil: OpenBlobInto
	// with a nil dst would return a raw chunk as a slice of the span,
	// which the next chunk would then be decoded over.
	buf := make([]byte, 0, 256<<10)
	for s := range r.spans {
		buf = r.fetchSpan(ctx, s, buf)
	}
}

// fetchSpan does one span and returns buf, grown, for the next one. A span
// that cannot be loaded, or a chunk in it that does not authenticate, is
// fetched chunk by chunk through Source.Chunk, which tries the chunk's
// other copies and notes the bad one: only the files that need a chunk no
// copy of which can be had fail.
func (r *run) fetchSpan(ctx context.Context, s *span, buf []byte) []byte {
	var data []byte
	var err error
	if err = ctx.Err(); err == nil && !s.alone {
		data, err = r.src.LoadPackRange(ctx, s.pack, s.off, s.length)
	}
	for _, c := range s.chunks {
		var plain []byte
		var cerr error
		switch {
		case ctx.Err() != nil:
			cerr = ctx.Err()
		case err == nil && !s.alone:
			rel := int64(c.loc.Offset) - s.off
			plain, cerr = r.src.OpenBlobInto(buf[:0], keys.KindData, c.id, data[rel:rel+int64(c.loc.Length)])
			if cerr == nil {
				buf = plain
				break
			}
			if !errors.Is(cerr, repo.ErrDamaged) {
				break
			}
			r.src.NoteBadCopy(c.id, s.pack)
			fallthrough
		default:
			plain, cerr = r.src.Chunk(ctx, c.id)
		}
		if cerr == nil {
			r.fetched.Add(1)
			r.bytesFetched.Add(uint64(len(plain)))
			r.prog.BytesFetched.Add(uint64(len(plain)))
		}
		for _, j := range c.jobs {
			werr := cerr
			if werr == nil {
				werr = r.writeChunk(j, plain)
			} else {
				werr = fmt.Errorf("chunk %s at offset %d: %w", c.id.Short(), j.ext.Offset, werr)
			}
			j.f.extentDone(werr)
		}
	}
	return buf
}

// writeChunk writes plain, the chunk of job j, at its offset in its file.
func (r *run) writeChunk(j fetchJob, plain []byte) error {
	if len(plain) != int(j.ext.Length) {
		return fmt.Errorf("chunk %s: %w: %d bytes, extent has %d", j.ext.ID.Short(), repo.ErrDamaged, len(plain), j.ext.Length)
	}
	for off := 0; off < len(plain); {
		n, err := unix.Pwrite(j.f.fd, plain[off:], int64(j.ext.Offset)+int64(off))
		if err != nil {
			return &os.PathError{Op: "write", Path: j.f.rel, Err: err}
		}
		off += n
	}
	r.prog.BytesDone.Add(uint64(j.ext.Length))
	return nil
}

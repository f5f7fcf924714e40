package browse

import (
	"context"
	"fmt"
	"io"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// readAhead is how many chunks a Reader fetches ahead of the one it reads.
const readAhead = 4

// Reader reads a file's content from the vault in order: holes as zeros,
// each chunk fetched ahead in parallel with the next few. It holds at most
// readAhead+1 chunks.
type Reader struct {
	ctx    context.Context
	cancel context.CancelFunc
	src    ContentSource
	n      *tree.Node
	pos    uint64        // offset of the next byte to return
	next   int           // index of the next extent to start fetching
	ahead  []*chunkFetch // fetches started, in extent order
	cur    []byte        // the current chunk's bytes not yet returned
}

// chunkFetch is one chunk being fetched; done closes when it ends.
type chunkFetch struct {
	ext  tree.Extent
	done chan struct{}
	data []byte
	err  error
}

// NewReader returns a reader of file n's content. Close it to stop the
// fetches ahead.
func NewReader(ctx context.Context, src ContentSource, n *tree.Node) *Reader {
	ctx, cancel := context.WithCancel(ctx)
	return &Reader{ctx: ctx, cancel: cancel, src: src, n: n}
}

// Close stops the fetches ahead.
func (r *Reader) Close() error {
	r.cancel()
	return nil
}

// fill starts fetches until readAhead are in flight or every extent has
// one.
func (r *Reader) fill() {
	for len(r.ahead) < readAhead && r.next < len(r.n.Extents) {
		f := &chunkFetch{ext: r.n.Extents[r.next], done: make(chan struct{})}
		r.next++
		r.ahead = append(r.ahead, f)
		go func() {
			defer close(f.done)
			f.data, f.err = r.src.Chunk(r.ctx, f.ext.ID)
			if f.err == nil && len(f.data) != int(f.ext.Length) {
				f.err = fmt.Errorf("chunk %s: %w: %d bytes, extent has %d", f.ext.ID.Short(), repo.ErrDamaged, len(f.data), f.ext.Length)
			}
		}()
	}
}

// Read reads the next bytes of the file.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.n.Size {
		return 0, io.EOF
	}
	if len(r.cur) == 0 {
		r.fill()
		if len(r.ahead) > 0 && r.ahead[0].ext.Offset <= r.pos {
			f := r.ahead[0]
			r.ahead = r.ahead[1:]
			select {
			case <-f.done:
			case <-r.ctx.Done():
				return 0, r.ctx.Err()
			}
			if f.err != nil {
				return 0, fmt.Errorf("read at %d: %w", r.pos, f.err)
			}
			r.cur = f.data[r.pos-f.ext.Offset:]
			r.fill()
		}
	}
	if len(r.cur) > 0 {
		k := copy(p, r.cur)
		r.cur = r.cur[k:]
		r.pos += uint64(k)
		return k, nil
	}
	// A hole up to the next extent or the end.
	end := r.n.Size
	if len(r.ahead) > 0 {
		end = r.ahead[0].ext.Offset
	}
	k := int(min(uint64(len(p)), end-r.pos))
	clear(p[:k])
	r.pos += uint64(k)
	return k, nil
}

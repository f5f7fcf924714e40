package fs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// readReply reads len(dest) bytes at off of node through Read and returns
// the reply unfinished (not Done), as go-fuse holds it until it is written.
func readReply(t testing.TB, node *fileNode, off int64, dest []byte) fuse.ReadResult {
	t.Helper()
	res, errno := node.Read(context.Background(), nil, dest, off)
	if errno != 0 {
		t.Errorf("read %d bytes at %d: %v", len(dest), off, errno)
		return nil
	}
	return res
}

// replyBytes returns what go-fuse writes of res: its slices, joined.
func replyBytes(t testing.TB, res fuse.ReadResult) []byte {
	t.Helper()
	vec, st := res.(interface {
		Slices() ([][]byte, fuse.Status)
	}).Slices()
	if !st.Ok() {
		t.Fatalf("reply slices: %v", st)
	}
	return bytes.Join(vec, nil)
}

// TestRecycledBuffersUnderConcurrentReadsAndEvictions: readers of a cache
// far too small for the files evict and recycle chunk buffers all the
// time; a reply not yet written (not Done) still holds its chunks' bytes,
// whatever the other readers load meanwhile (run with -race: a buffer
// reused under a reply is also a race between the decoder and the writer),
// also when the source opens a chunk in place after its sealed header
// (before, such a buffer went back to the free list at once).
func TestRecycledBuffersUnderConcurrentReadsAndEvictions(t *testing.T) {
	// Chunks loaded whole, and handed out as they are decoded.
	for _, steps := range []bool{false, true} {
		t.Run(fmt.Sprintf("steps=%v", steps), func(t *testing.T) { recycledBuffersUnderConcurrentReads(t, steps) })
	}
}

func recycledBuffersUnderConcurrentReads(t *testing.T, steps bool) {
	src := newFakeSource()
	src.steps = steps
	const chunkSize = 60 << 10 // not a size class: room for the source to open it in place
	var files []tree.Node
	var datas [][]byte
	for i := range 4 {
		data := randomBytes(2*mib, uint64(100+i))
		datas = append(datas, data)
		files = append(files, src.file(fmt.Sprintf("f%d", i), data, chunkSize))
	}
	// About 20 chunks cached, 7 kept for reuse, of 128.
	root := newTestRoot(t, src, src.point("m", fixtureTime, files), Options{CacheBytes: 2 * mib})
	var nodes []*fileNode
	for i := range files {
		n, _ := lookup(t, root, fmt.Sprintf("f%d", i))
		nodes = append(nodes, n.(*fileNode))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var held []fuse.ReadResult
			var want [][]byte
			for range 200 {
				f := rng.IntN(len(nodes))
				size := 1 + rng.IntN(3*chunkSize)
				off := rng.Int64N(int64(len(datas[f]) - size))
				res := readReply(t, nodes[f], off, make([]byte, size))
				if res == nil {
					return
				}
				held, want = append(held, res), append(want, datas[f][off:off+int64(size)])
				// Replies are written a while after Read returned,
				// while other reads load chunks.
				if len(held) == 4 || rng.IntN(4) == 0 {
					for i, r := range held {
						if got := replyBytes(t, r); !bytes.Equal(got, want[i]) {
							t.Errorf("a reply changed before it was written (%d bytes)", len(got))
						}
						r.Done()
					}
					held, want = held[:0], want[:0]
				}
			}
			for _, r := range held {
				r.Done()
			}
		})
	}
	wg.Wait()
	v := nodes[0].pt.v
	if v.free.kept() == 0 {
		t.Error("no evicted chunk buffer was kept for reuse")
	}
	// With every reply written, the buffers mapped are those cached and
	// kept: the others were unmapped (a read of one would have faulted).
	if mapped, held := v.free.mappedBytes(), v.chunks.Bytes()+v.free.kept(); chunkBuffersOffHeap && mapped != held {
		t.Errorf("%d bytes of chunk buffers mapped, want %d: those cached and kept", mapped, held)
	}
}

// TestReadsRecycleChunkBuffers: reading a file many times the size of the
// chunk cache allocates a small fraction of the bytes read: chunks are
// decoded into the buffers of evicted ones (before, a fresh buffer per
// chunk: as many bytes allocated as read).
func TestReadsRecycleChunkBuffers(t *testing.T) {
	src := newFakeSource()
	data := randomBytes(24*mib, 5)
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{src.file("f", data, 256<<10)}), Options{CacheBytes: 8 * mib})
	node, _ := lookup(t, root, "f")
	fn := node.(*fileNode)
	dest := make([]byte, 128<<10) // go-fuse's, which the reply does not use
	pass := func() {
		for off := int64(0); off < int64(len(data)); off += int64(len(dest)) {
			res := readReply(t, fn, off, dest)
			if res == nil {
				t.FailNow()
			}
			res.Done()
		}
		waitFor(t, "read-ahead to end", func() bool { return fn.pt.v.chunks.Loads() == 0 })
	}
	pass() // fills the cache and the kept buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const passes = 3
	for range passes {
		pass()
	}
	runtime.ReadMemStats(&after)
	read := uint64(passes * len(data))
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > read/8 {
		t.Errorf("reading %d MiB allocated %d MiB, want at most an eighth", read>>20, alloc>>20)
	}
}

// TestKeptBuffersMakeRoomAcrossClasses: with the bound reached, a buffer of
// a class with few kept displaces one of the class holding the most bytes,
// so that every size loaded finds some to reuse; one of that class itself
// is dropped.
func TestKeptBuffersMakeRoomAcrossClasses(t *testing.T) {
	const big, small = 1 << 20, 64 << 10
	b := newBuffers(3 * big)
	var bigs [][]byte
	for range 4 {
		bigs = append(bigs, b.get(big-sealedRoom))
	}
	smallBuf := b.get(small - sealedRoom)
	for _, buf := range bigs {
		b.put(buf)
	}
	if b.kept() != 3*big {
		t.Fatalf("kept %d bytes, want %d", b.kept(), 3*big)
	}
	b.put(smallBuf)
	if got := len(b.free[small]); got != 1 {
		t.Errorf("%d buffers of %d bytes kept, want 1", got, small)
	}
	if got := len(b.free[big]); got != 2 {
		t.Errorf("%d buffers of %d bytes kept, want 2", got, big)
	}
	if b.kept() > 3*big {
		t.Errorf("kept %d bytes, over the bound %d", b.kept(), 3*big)
	}
	if buf := b.get(small - 1000); cap(buf) != small {
		t.Errorf("get of %d bytes: capacity %d, want the kept %d", small-1000, cap(buf), small)
	}
	if got, want := b.mappedBytes(), b.kept()+small; got != want {
		t.Errorf("%d bytes mapped, want %d: the kept and the one taken, the dropped unmapped", got, want)
	}
}

// TestBuffersResizeKeptOfOtherClass: a get whose classes have none kept
// takes a kept buffer of another class, resized, rather than mapping a
// new one (whose pages would fault in again).
func TestBuffersResizeKeptOfOtherClass(t *testing.T) {
	if !chunkBuffersOffHeap {
		t.Skip("chunk buffers on the Go heap on this system: none resized")
	}
	const big, small = 1 << 20, 64 << 10
	b := newBuffers(4 * big)
	buf := b.get(big - sealedRoom)
	copy(buf[:big], "kept")
	b.put(buf)
	got := b.get(small - sealedRoom)
	if cap(got) != small {
		t.Fatalf("get of %d bytes: capacity %d, want %d", small-sealedRoom, cap(got), small)
	}
	if string(got[:4]) != "kept" {
		t.Error("get mapped a new buffer, want the kept one resized")
	}
	if b.kept() != 0 || b.mappedBytes() != small {
		t.Errorf("kept %d, mapped %d bytes; want 0 and %d", b.kept(), b.mappedBytes(), small)
	}
}

// TestPinCachedChunkAllocatesNothing: taking a chunk the cache holds (what
// most READs of a copy do, their chunks loaded ahead) allocates nothing. It
// made the chunk's loader, a closure, for every READ before, hit or miss.
func TestPinCachedChunkAllocatesNothing(t *testing.T) {
	src := newFakeSource()
	n := src.file("f", randomBytes(100<<10, 7), 64<<10)
	v := newVault(src, Options{})
	ctx := context.Background()
	pin := func() {
		for _, e := range n.Extents {
			c, err := v.pinChunk(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			c.unpin(v.free)
		}
	}
	pin()
	if allocs := testing.AllocsPerRun(100, pin); allocs != 0 {
		t.Errorf("pinning %d cached chunks allocated %.1f objects, want 0", len(n.Extents), allocs)
	}
	if loads := src.chunkLoads(); loads != len(n.Extents) {
		t.Errorf("%d chunk loads, want %d", loads, len(n.Extents))
	}
}

// TestChunkFailingAfterFirstStep: a chunk handed out after its first
// decoded step whose decoding then fails (a frame broken behind a good
// tag) serves the bytes that were decoded, fails reads of the rest with
// EIO, and is not kept: once the source is sound again, the next read
// loads it again and gets the bytes.
func TestChunkFailingAfterFirstStep(t *testing.T) {
	src := newFakeSource()
	src.steps = true
	src.failAfterStep = fmt.Errorf("open chunk: %w", keys.ErrAuth)
	src.stepGate = make(chan struct{})
	// Not whole sectors: no image detection loads the chunk on lookup.
	data := randomBytes(256<<10+100, 5)
	f := src.file("f", data, len(data))
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{f}), Options{ReadAhead: -1})
	n, _ := lookup(t, root, "f")
	if got, errno := readNode(t, n, 0, 4096); errno != 0 || !bytes.Equal(got, data[:4096]) {
		t.Fatalf("read of the decoded half while the rest decodes: %d bytes, %v", len(got), errno)
	}
	end := int64(len(data) - 4096)
	eio := make(chan syscall.Errno, 1)
	go func() {
		_, errno := readNode(t, n, end, 4096)
		eio <- errno
	}()
	close(src.stepGate)
	if errno := <-eio; errno != syscall.EIO {
		t.Fatalf("read beyond the decoded half: %v; want EIO", errno)
	}
	src.mu.Lock()
	src.failAfterStep, src.stepGate = nil, nil
	src.mu.Unlock()
	loads := src.chunkLoads()
	if got, errno := readNode(t, n, end, 4096); errno != 0 || !bytes.Equal(got, data[end:]) {
		t.Fatalf("read after the source recovered: %d bytes, %v", len(got), errno)
	}
	if src.chunkLoads() != loads+1 {
		t.Errorf("%d loads for the read after the failure, want 1: the failed chunk was kept", src.chunkLoads()-loads)
	}
}

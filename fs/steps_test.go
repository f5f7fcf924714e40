package fs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

// gatedSource is a vault whose first chunk load stops after its first
// decoded step until gate is closed, as a chunk still being decoded.
type gatedSource struct {
	*repo.Area
	once sync.Once
	// stepped receives the gated chunk's length once its first step is
	// handed out.
	stepped chan int
	gate    chan struct{}
}

func (g *gatedSource) ChunkIntoSteps(ctx context.Context, dst []byte, id keys.ID, decoded func(prefix []byte)) ([]byte, error) {
	if decoded == nil {
		return g.Area.ChunkIntoSteps(ctx, dst, id, nil)
	}
	gated := false
	g.once.Do(func() { gated = true })
	length := 0
	if gated {
		whole, err := g.Area.ChunkInto(ctx, nil, id)
		if err != nil {
			return nil, err
		}
		length = len(whole)
	}
	first := true
	return g.Area.ChunkIntoSteps(ctx, dst, id, func(prefix []byte) {
		decoded(prefix)
		if gated && first {
			first = false
			g.stepped <- length
			<-g.gate
		}
	})
}

// compressibleText returns n bytes of words drawn from a small
// vocabulary: data zstd compresses, in several blocks per chunk.
func compressibleText(n int) []byte {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango")
	rnd := testfiles.RandomBytes(n/4+1, 9)
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[int(rnd[i%len(rnd)])%len(words)])
		b.WriteByte(" \n"[rnd[(i+1)%len(rnd)]&1])
	}
	return b.Bytes()[:n]
}

// preadRandom reads n bytes at off of path with its pages dropped and no
// read-ahead of the kernel's (POSIX_FADV_RANDOM): one READ of n bytes.
func preadRandom(path string, off int64, n int) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	for _, advice := range []int{unix.FADV_DONTNEED, unix.FADV_RANDOM} {
		if err := unix.Fadvise(int(file.Fd()), 0, 0, advice); err != nil {
			return nil, fmt.Errorf("fadvise: %w", err)
		}
	}
	buf := make([]byte, n)
	k, err := file.ReadAt(buf, off)
	return buf[:k], err
}

// TestMountedReadAnsweredBeforeChunkDecoded: through a real FUSE mount of a
// real vault, a 4 KiB read at the start of a compressed chunk is answered
// once the chunk is authenticated and its first block decoded, while the
// rest of the chunk is still being decoded; a read at the chunk's end
// waits until its bytes are decoded, and both are the file's bytes. Before,
// a read waited for the whole chunk (1 MiB, ~2 ms of zstd here): the first
// read would only have returned once the gate opened.
func TestMountedReadAnsweredBeforeChunkDecoded(t *testing.T) {
	testfiles.RequireFUSE(t)
	ctx := context.Background()
	src := t.TempDir()
	// Not whole sectors: no image detection reads the file on lookup.
	content := compressibleText(3*mib + 123)
	if err := os.WriteFile(filepath.Join(src, "text"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, v, pt := backUpInMemory(t, src)
	rv, err := repo.Open(ctx, raw, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	g := &gatedSource{Area: rv, stepped: make(chan int, 1), gate: make(chan struct{})}
	defer func() {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
	}()
	// No read-ahead of the mount's: the one chunk loaded is the one read.
	opts := Options{CacheBytes: 64 * mib, ReadAhead: -1, Logger: slog.New(slog.DiscardHandler)}
	root, err := NewPointRoot(g, pt, opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mountTest(t, root, opts), src, "text")

	type result struct {
		b   []byte
		err error
	}
	read := func(off int64) chan result {
		ch := make(chan result, 1)
		go func() {
			b, err := preadRandom(path, off, 4096)
			ch <- result{b, err}
		}()
		return ch
	}
	check := func(what string, ch chan result, off int64) {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil || !bytes.Equal(r.b, content[off:off+4096]) {
				t.Fatalf("%s: read %d bytes at %d, %v; want the file's", what, len(r.b), off, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the read at %d was not answered", what, off)
		}
	}

	start := read(0)
	var length int
	select {
	case length = <-g.stepped:
	case <-time.After(20 * time.Second):
		t.Fatal("the chunk was not decoded by steps")
	}
	check("while the rest of the chunk is decoded", start, 0)
	if length < 256<<10 {
		t.Fatalf("first chunk of %d bytes: want one of several blocks", length)
	}
	endOff := int64(length - 4096)
	end := read(endOff)
	// The end's bytes are not decoded yet: its read must wait.
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-end:
		t.Fatalf("a read of bytes not yet decoded was answered: %d bytes, %v", len(r.b), r.err)
	default:
	}
	close(g.gate)
	check("after the chunk was decoded", end, endOff)
}

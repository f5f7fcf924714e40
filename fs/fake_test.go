package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// errUnreachable is what fakeSource returns for an object marked failing.
var errUnreachable = errors.New("storage unreachable")

// fakeSource is an in-memory Source. It counts loads per object, and can
// mark objects damaged (errors wrapping keys.ErrAuth) or failing.
type fakeSource struct {
	mu      sync.Mutex
	parts   map[keys.ID]*tree.Part
	chunks  map[keys.ID][]byte
	damaged map[keys.ID]bool
	failing map[keys.ID]bool
	loads   map[keys.ID]int
	delay   time.Duration // added to every chunk load
	nextID  uint64
	// inflight counts chunk loads in progress; maxInflight is its peak.
	inflight, maxInflight int
	// partCalls counts the calls of Part, before they take mu.
	partCalls atomic.Int32
	// steps makes chunks decode into an empty dst with room for them in
	// two steps, handing decoded the first half in between, as a real
	// source decodes a compressed chunk (repo.Area.ChunkIntoSteps).
	steps bool
	// failAfterStep makes chunk loads fail: with steps, after the
	// first, once stepGate (if set) is closed, as a frame broken behind a
	// good tag does.
	failAfterStep error
	stepGate      chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		parts:   make(map[keys.ID]*tree.Part),
		chunks:  make(map[keys.ID][]byte),
		damaged: make(map[keys.ID]bool),
		failing: make(map[keys.ID]bool),
		loads:   make(map[keys.ID]int),
	}
}

func (f *fakeSource) Part(ctx context.Context, id keys.ID) (*tree.Part, error) {
	f.partCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads[id]++
	p, ok := f.parts[id]
	switch {
	case f.damaged[id]:
		return nil, fmt.Errorf("open tree %s: %w", id.Short(), keys.ErrAuth)
	case f.failing[id]:
		return nil, errUnreachable
	case !ok:
		return nil, fmt.Errorf("no part %s", id.Short())
	}
	return p, nil
}

func (f *fakeSource) ChunkIntoSteps(ctx context.Context, dst []byte, id keys.ID, decoded func(prefix []byte)) ([]byte, error) {
	f.mu.Lock()
	f.loads[id]++
	data, ok := f.chunks[id]
	damaged, failing, delay := f.damaged[id], f.failing[id], f.delay
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch {
	case damaged:
		return nil, fmt.Errorf("open chunk %s: %w", id.Short(), keys.ErrAuth)
	case failing:
		return nil, errUnreachable
	case !ok:
		return nil, fmt.Errorf("no chunk %s", id.Short())
	}
	if f.steps && decoded != nil && len(dst) == 0 && cap(dst) >= len(data) {
		half := append(dst, data[:len(data)/2]...)
		decoded(half)
		f.mu.Lock()
		fail, gate := f.failAfterStep, f.stepGate
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if fail != nil {
			return nil, fail
		}
		return append(half, data[len(data)/2:]...), nil
	}
	f.mu.Lock()
	fail := f.failAfterStep
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	// A real Source decodes into dst's room, and opens an uncompressed
	// chunk in place where it read its sealed bytes: after their header.
	const header = 33
	if len(dst) == 0 && cap(dst) >= header+len(data) {
		return append(dst[:header], data...)[header:], nil
	}
	return append(dst, data...), nil
}

// loadCount returns how many times id was loaded.
func (f *fakeSource) loadCount(id keys.ID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads[id]
}

// chunkLoads returns how many chunk loads there were.
func (f *fakeSource) chunkLoads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id, c := range f.loads {
		if _, ok := f.chunks[id]; ok {
			n += c
		}
	}
	return n
}

// newID returns a fresh ID.
func (f *fakeSource) newID() keys.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	return keys.ID(sha256.Sum256(fmt.Appendf(nil, "id %d", f.nextID)))
}

// addChunk stores data as a chunk and returns its ID.
func (f *fakeSource) addChunk(data []byte) keys.ID {
	id := f.newID()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunks[id] = data
	return id
}

// addPart stores a part and returns its ID.
func (f *fakeSource) addPart(nodes []tree.Node) keys.ID {
	id := f.newID()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[id] = &tree.Part{Nodes: nodes}
	return id
}

// file returns a file node holding data in chunks of chunkSize bytes.
func (f *fakeSource) file(name string, data []byte, chunkSize int) tree.Node {
	n := tree.Node{Name: name, Type: tree.File, Mode: 0o644, Size: uint64(len(data)), Links: 1}
	for off := 0; off < len(data); off += chunkSize {
		c := data[off:min(off+chunkSize, len(data))]
		n.Extents = append(n.Extents, tree.Extent{Offset: uint64(off), Length: uint32(len(c)), ID: f.addChunk(c)})
	}
	return n
}

// dir returns a directory node listing entries in parts of at most perPart
// nodes.
func (f *fakeSource) dir(name string, entries []tree.Node, perPart int) tree.Node {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b tree.Node) int { return strings.Compare(a.Name, b.Name) })
	n := tree.Node{Name: name, Type: tree.Dir, Mode: 0o755, Links: 2, Entries: uint64(len(entries))}
	for len(entries) > 0 {
		k := min(perPart, len(entries))
		n.Parts = append(n.Parts, tree.PartRef{First: entries[0].Name, ID: f.addPart(entries[:k])})
		entries = entries[k:]
	}
	return n
}

// point returns a point whose top level lists entries.
func (f *fakeSource) point(machine string, t time.Time, entries []tree.Node) Point {
	root := f.dir("root", entries, tree.PartEntries)
	return Point{ID: f.newID(), Machine: machine, Time: t, Root: f.addPart([]tree.Node{root})}
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(b)
	return b
}

// sparseData returns the content of a file of size bytes whose extents
// hold the given data at the given offsets.
func sparseData(size int, parts map[int][]byte) []byte {
	b := make([]byte, size)
	for off, d := range parts {
		copy(b[off:], d)
	}
	return b
}

// logBuffer collects slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

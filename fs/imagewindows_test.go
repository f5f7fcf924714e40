package fs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

// packLoads records the loads of pack ranges of a storage, and can flip a
// byte of one pack however it is read.
type packLoads struct {
	storage.Storage
	mu    sync.Mutex
	sizes []int // of each load of a pack range
	// flip, when set, is a byte of pack flipAt read back changed.
	flip   bool
	pack   keys.ID
	flipAt int64
}

func (s *packLoads) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	b, err := s.Storage.Load(ctx, name, off, length)
	if err != nil || !strings.HasPrefix(name, "data/") {
		return b, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(b))
	if s.flip && strings.Contains(name, s.pack.String()) && off <= s.flipAt && s.flipAt < off+int64(len(b)) {
		b[s.flipAt-off] ^= 0x40
	}
	return b, nil
}

// loads returns the sizes of the pack loads so far, and forgets them.
func (s *packLoads) loads() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sizes := s.sizes
	s.sizes = nil
	return sizes
}

// backedUpImage is a GPT disk image, made by sfdisk, whose one partition
// holds random bytes, backed up by package backup (in 16 KiB blocks) into
// a vault in memory whose pack loads are recorded.
type backedUpImage struct {
	area  *repo.Area
	st    *packLoads
	point Point
	node  *tree.Node
	disk  []byte
	// path is the image's path in the point.
	path string
	// part is where the partition lies in the disk.
	partStart, partSize int
}

func backUpImage(t *testing.T, partMiB int) *backedUpImage {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	testfiles.WriteFile(t, content, testfiles.RandomBytes(partMiB<<20, 16))
	src := filepath.Join(dir, "src")
	testfiles.Must(t, os.Mkdir(src, 0o755))
	imagetest.GPT(t, filepath.Join(src, "disk.img"), []imagetest.Partition{{Name: "data", Content: content}})
	disk, err := os.ReadFile(filepath.Join(src, "disk.img"))
	testfiles.Must(t, err)
	st := &packLoads{Storage: mem.New()}
	v, err := repo.Create(ctx, st, "correct horse battery staple", keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1})
	testfiles.Must(t, err)
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m", Hostname: "h", Workers: 2})
	testfiles.Must(t, err)
	v, err = repo.Open(ctx, st, v.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, v.LoadIndex(ctx))
	n, err := browse.Lookup(ctx, v, p.Root, src+"/disk.img")
	testfiles.Must(t, err)
	if len(n.Extents) < partMiB<<20/(16<<10) {
		t.Fatalf("the image is stored in %d chunks, want its 16 KiB blocks", len(n.Extents))
	}
	st.loads()
	return &backedUpImage{area: v, st: st, point: Point{ID: p.ID, Machine: "m", Time: p.Time, Root: p.Root}, node: n,
		disk: disk, path: src + "/disk.img", partStart: 1 << 20, partSize: partMiB << 20}
}

// TestImageWindowsLoadSpans: a sequential read of an image stored in 16
// KiB blocks loads its blocks by spans of adjacent blobs, each no larger
// than a window, far fewer loads than blocks, and reads them right.
func TestImageWindowsLoadSpans(t *testing.T) {
	b := backUpImage(t, 6)
	f := &pointFile{v: newVault(b.area, Options{}), node: b.node, path: "disk.img"}
	readSequentially(t, f, b.disk)
	loads := b.st.loads()
	blocks := len(b.node.Extents)
	t.Logf("%d pack loads for %d blocks", len(loads), blocks)
	if len(loads) == 0 || len(loads) > blocks/16 {
		t.Errorf("%d pack loads for %d blocks, want at most %d", len(loads), blocks, blocks/16)
	}
	loaded := 0
	for _, n := range loads {
		loaded += n
		if n > maxSpan {
			t.Errorf("a load of %d bytes, want at most %d", n, maxSpan)
		}
	}
	// Blocks opened in place count once, in their span's buffer (the
	// few compressed ones, of the partition table's sectors, beside it).
	if held := f.v.images.windows.Bytes(); held > int64(loaded)*21/20 {
		t.Errorf("the windows count %d bytes, for %d loaded", held, loaded)
	}
}

// TestImageWindowsAllocs: reading an image's blocks allocates far less
// than one object per block beyond what opening a blob costs (its cipher):
// no buffer, cache entry or load of its own per block.
func TestImageWindowsAllocs(t *testing.T) {
	b := backUpImage(t, 8)
	p := make([]byte, b.partSize)
	read := func() {
		f := &pointFile{v: newVault(b.area, Options{ReadAhead: -1}), node: b.node, path: "disk.img"}
		if _, err := f.ReadAt(p, int64(b.partStart)); err != nil {
			t.Fatal(err)
		}
	}
	read()
	// Opening a blob alone allocates what its cipher needs; the bound
	// is what a block may add to that.
	var sealed []byte
	id := b.node.Extents[len(b.node.Extents)/2].ID
	loc, _ := b.area.Index().Lookup(id)
	data, err := b.area.LoadPackRange(context.Background(), loc.Pack, int64(loc.Offset), int64(loc.Length))
	testfiles.Must(t, err)
	mallocs := func(runs int, f func()) float64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / float64(runs)
	}
	perOpen := mallocs(200, func() {
		sealed = append(sealed[:0], data...)
		if _, err := b.area.OpenBlobInto(nil, keys.KindData, id, sealed); err != nil {
			t.Fatal(err)
		}
	})
	// The fewest of a few reads: the counts are the process's.
	blocks := float64(b.partSize / (16 << 10))
	perBlock := math.Inf(1)
	for range 5 {
		perBlock = min(perBlock, mallocs(1, read)/blocks-perOpen)
	}
	t.Logf("%.2f allocations per block beyond the %.2f of opening it", perBlock, perOpen)
	if perBlock > 1 {
		t.Errorf("%.2f allocations per block beyond opening it, want at most 1", perBlock)
	}
}

// TestImageWindowsDamagedBlock: in a real mount, a block that does not
// authenticate in its span fails only the reads that need it (EIO); the
// blocks beside it in its span read right, and its copy is noted as bad.
func TestImageWindowsDamagedBlock(t *testing.T) {
	b := backUpImage(t, 4)
	k := (b.partStart + 2<<20 + 5*16<<10) / (16 << 10) // a block in the middle of a window
	bad := b.node.Extents[b.node.FindExtent(uint64(k*16<<10))]
	loc, ok := b.area.Index().Lookup(bad.ID)
	if !ok {
		t.Fatal("the block is not indexed")
	}
	b.st.mu.Lock()
	b.st.flip, b.st.pack, b.st.flipAt = true, loc.Pack, int64(loc.Offset)+int64(loc.Length)/2
	b.st.mu.Unlock()
	var logs logBuffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	root, err := NewPointRoot(b.area, b.point, opts)
	testfiles.Must(t, err)
	mnt := mountTest(t, root, opts)
	var disk string
	testfiles.Must(t, filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "/disk.img") {
			disk = p
		}
		return err
	}))
	if disk == "" {
		t.Fatal("no disk.img in the mount")
	}
	badOff := int64(bad.Offset)
	// The image's partition (read by pointFile) and the image itself
	// (fileNode).
	for _, file := range []struct {
		path  string
		start int64
	}{{disk + ".contents/p1", int64(b.partStart)}, {disk, 0}} {
		f, err := os.Open(file.path)
		testfiles.Must(t, err)
		defer f.Close()
		// No read-ahead: each read asks the mount for its own bytes only.
		testfiles.Must(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM))
		readAt := func(off int64, n int) ([]byte, error) {
			buf := make([]byte, n)
			got, err := f.ReadAt(buf, off-file.start)
			return buf[:got], err
		}
		for _, off := range []int64{badOff - 16<<10, badOff + 16<<10, badOff - 64<<10} {
			got, err := readAt(off, 16<<10)
			if err != nil || !bytes.Equal(got, b.disk[off:off+16<<10]) {
				t.Fatalf("%s: read of a block beside the damaged one, at %d: %v", file.path, off, err)
			}
		}
		if _, err := readAt(badOff+100, 100); !errors.Is(err, syscall.EIO) {
			t.Fatalf("%s: read of the damaged block: %v, want EIO", file.path, err)
		}
	}
	if !slices.ContainsFunc(b.st.loads(), func(n int) bool { return n > 4*int(loc.Length) }) {
		t.Error("the blocks were not loaded by spans")
	}
	if !b.area.Index().IsBad(bad.ID, loc.Pack) {
		t.Error("the damaged copy is not noted as bad")
	}
	if !strings.Contains(logs.String(), "damaged chunk") {
		t.Errorf("the damage is not logged:\n%s", logs.String())
	}
}

// TestImageFileReadsByWindows: the image file itself, read through a real
// mount, loads its blocks by spans too, far fewer loads than blocks, and
// reads right; a file in ordinary chunks is read as before.
func TestImageFileReadsByWindows(t *testing.T) {
	b := backUpImage(t, 6)
	root, err := NewPointRoot(b.area, b.point, Options{})
	testfiles.Must(t, err)
	mnt := mountTest(t, root, Options{})
	got, err := os.ReadFile(filepath.Join(mnt, b.path))
	testfiles.Must(t, err)
	if !bytes.Equal(got, b.disk) {
		t.Fatal("the image read through the mount differs from the source")
	}
	loads, blocks := b.st.loads(), len(b.node.Extents)
	t.Logf("%d pack loads for %d blocks", len(loads), blocks)
	if len(loads) > blocks/16 {
		t.Errorf("%d pack loads for %d blocks, want at most %d", len(loads), blocks, blocks/16)
	}
	if (&blockFile{}).reader(nil, &tree.Node{Size: 8 << 20, Extents: []tree.Extent{{Length: 4 << 20}, {Offset: 4 << 20, Length: 4 << 20}}}, "f") != nil {
		t.Error("a file in ordinary chunks is read by windows")
	}
}

// TestImageWindowsReadAheadFitsTheCache: with a cache of windows too small
// for the read-ahead, a sequential read still loads each window once: no
// window loaded ahead is evicted before its read comes.
func TestImageWindowsReadAheadFitsTheCache(t *testing.T) {
	b := backUpImage(t, 6)
	f := &pointFile{v: newVault(b.area, Options{CacheBytes: 16 << 20}), node: b.node, path: "disk.img"}
	readSequentially(t, f, b.disk)
	loaded := 0
	for _, n := range b.st.loads() {
		loaded += n
	}
	if loaded > len(b.disk)*11/10 {
		t.Errorf("%d bytes of packs loaded for an image of %d", loaded, len(b.disk))
	}
}

// TestImageWindowsRecycledUnderConcurrentReads: readers of a cache of
// windows far too small for the image, on a local vault (which reads into
// the recycled span buffers), evict and recycle span buffers all the time;
// every read still gets its bytes (run with -race).
func TestImageWindowsRecycledUnderConcurrentReads(t *testing.T) {
	ctx := context.Background()
	b := backUpImage(t, 6)
	// The same vault on a local directory, which loads into a caller's
	// buffer.
	dir := t.TempDir()
	st, err := local.Open(dir)
	testfiles.Must(t, err)
	testfiles.Must(t, b.st.Storage.List(ctx, "", func(fi storage.Info) error {
		data, err := b.st.Storage.Load(ctx, fi.Name, 0, -1)
		if err != nil {
			return err
		}
		return st.Save(ctx, fi.Name, data)
	}))
	v, err := repo.Open(ctx, st, b.area.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, v.LoadIndex(ctx))
	// About 6 MiB for windows: 4.7 MiB cached (4 windows), 1 buffer kept.
	vt := newVault(v, Options{CacheBytes: 56 << 20})
	if vt.images.spans.max == 0 {
		t.Fatal("no span buffer is kept for reuse")
	}
	// The first window holds only the partition table's few blocks: a
	// span of them takes a buffer of its size, not a recycled one.
	head := &pointFile{v: newVault(v, Options{CacheBytes: 56 << 20, ReadAhead: -1}), node: b.node, path: "disk.img"}
	if _, err := head.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
	if held := head.v.images.windows.Bytes(); held >= spanBufferCap/2 {
		t.Fatalf("the partition table's window holds %d bytes", held)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			f := &pointFile{v: vt, node: b.node, path: "disk.img"}
			rng := rand.New(rand.NewPCG(uint64(g), 16))
			for range 60 {
				size := 1 + rng.IntN(3<<20)
				off := rng.IntN(len(b.disk) - size)
				got := make([]byte, size)
				if _, err := f.ReadAt(got, int64(off)); err != nil {
					t.Errorf("read of %d at %d: %v", size, off, err)
					return
				}
				if !bytes.Equal(got, b.disk[off:off+size]) {
					t.Errorf("read of %d at %d differs from the image", size, off)
					return
				}
			}
		})
	}
	wg.Wait()
	vt.images.spans.mu.Lock()
	kept := len(vt.images.spans.free)
	vt.images.spans.mu.Unlock()
	if kept == 0 {
		t.Error("no evicted window's span buffer was kept for reuse")
	}
}

// readSequentially reads f from start to end in 128 KiB reads, as the
// kernel's read-ahead asks, checks it holds want, and waits for the
// read-ahead it started to finish.
func readSequentially(t *testing.T, f *pointFile, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	for off := 0; off < len(got); off += 128 << 10 {
		if _, err := f.ReadAt(got[off:min(off+128<<10, len(got))], int64(off)); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the image read differs from the source")
	}
	waitFor(t, "read-ahead to finish", func() bool { return f.v.images.windows.Loads() == 0 })
}

package backup_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/internal/loopdev/loopdevtest"
	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

// mbr is a first sector that marks a file as a disk image: the boot
// signature of an MBR.
func mbr(seed uint64) []byte {
	b := testfiles.RandomBytes(512, seed)
	b[510], b[511] = 0x55, 0xaa
	return b
}

// writeAt writes data at off in the file at path, which it creates (of
// size bytes, sparse) if it is missing.
func writeAt(t *testing.T, path string, size int64, writes map[int64][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size > 0 {
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	}
	for off, b := range writes {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// sameAsFile checks that node's extents hold the bytes of the file at
// path at their offsets and that the holes between them are zeros there,
// reading the file region by region (it may be huge and sparse).
func sameAsFile(t *testing.T, v *repo.Area, n tree.Node, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n.Size != uint64(size) {
		t.Fatalf("%s: node size %d, file size %d", path, n.Size, size)
	}
	buf := make([]byte, 4<<20)
	checkZeros := func(from, to uint64) {
		for off := from; off < to; {
			// Skip the file's own holes.
			data, err := unix.Seek(int(f.Fd()), int64(off), unix.SEEK_DATA)
			if err != nil || uint64(data) >= to {
				return
			}
			n := min(uint64(len(buf)), to-uint64(data))
			got := buf[:n]
			if _, err := f.ReadAt(got, data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, make([]byte, len(got))) {
				t.Fatalf("%s: bytes in [%d, %d) are not all zero but lie in a hole of the node", path, data, uint64(data)+n)
			}
			off = uint64(data) + n
		}
	}
	var end uint64
	for i, e := range n.Extents {
		if e.Offset < end {
			t.Fatalf("%s: extent %d at %d overlaps the one before", path, i, e.Offset)
		}
		checkZeros(end, e.Offset)
		chunk, err := v.Chunk(context.Background(), e.ID)
		if err != nil {
			t.Fatalf("%s: chunk %d: %v", path, i, err)
		}
		want := make([]byte, e.Length)
		if _, err := f.ReadAt(want, int64(e.Offset)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(chunk, want) {
			t.Fatalf("%s: extent %d (%d+%d) differs from the file", path, i, e.Offset, e.Length)
		}
		end = e.Offset + uint64(e.Length)
	}
	checkZeros(end, n.Size)
}

// imageRun backs up paths into v and returns the point.
func imageRun(t *testing.T, v *repo.Area, opts backup.Options) *repo.Point {
	t.Helper()
	opts.Machine = "m"
	p, err := backup.Run(context.Background(), reopen(t, v), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return p
}

// TestZeroRunsAreHoles: zeros written out in a file that is not sparse are
// not stored: all-zero chunks of a plain file, all-zero blocks of an image.
func TestZeroRunsAreHoles(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	testfiles.WriteFile(t, plain, slices.Concat(testfiles.RandomBytes(4<<20, 1), make([]byte, 16<<20), testfiles.RandomBytes(4<<20, 2)))
	img := filepath.Join(dir, "disk.img")
	testfiles.WriteFile(t, img, slices.Concat(mbr(3), testfiles.RandomBytes(1<<20-512, 4), make([]byte, 8<<20), testfiles.RandomBytes(1<<20, 5), make([]byte, 3<<20)))
	for _, path := range []string{plain, img} {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 < st.Size {
			t.Fatalf("%s is sparse (%d blocks of %d bytes): the test needs zeros written out", path, st.Blocks, st.Size)
		}
	}

	v := newVault(t, mem.New())
	p := imageRun(t, v, backup.Options{Paths: []string{dir}})
	r := loaded(t, v)
	plainNode, imgNode := lookup(t, r, p, plain), lookup(t, r, p, img)
	sameAsFile(t, r, plainNode, plain)
	sameAsFile(t, r, imgNode, img)
	// The plain file's chunks may reach into the zeros (at most one
	// maximum chunk, 4 MiB, on each side of the run); the image's blocks
	// hold its data exactly.
	if got := plainNode.StoredBytes(); got > 16<<20 {
		t.Errorf("plain file: extents cover %d bytes of 8 MiB of data and 16 MiB of zeros; all-zero chunks must be holes", got)
	}
	if got := imgNode.StoredBytes(); got != 2<<20 {
		t.Errorf("image: extents cover %d bytes, want its 2 MiB of data", got)
	}
	if s := p.Stats; s.BytesRead != 24<<20+13<<20 || s.Images != 1 {
		t.Errorf("read %d bytes, %d images; want every byte of both files read (%d), one image", s.BytesRead, s.Images, 24<<20+13<<20)
	}
	if s := p.Stats; s.BytesStored > plainNode.StoredBytes()+imgNode.StoredBytes()+1<<20 {
		t.Errorf("stored %d bytes for %d bytes of extents", s.BytesStored, plainNode.StoredBytes()+imgNode.StoredBytes())
	}
}

// changeBlocks writes count random pieces of run bytes at random offsets,
// multiples of align, in [from, to) of the file at path; it returns the
// bytes changed.
func changeBlocks(t *testing.T, path string, from, to, run, align int64, count int, seed uint64) int64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	offs := map[int64][]byte{}
	for len(offs) < count {
		offs[from+rng.Int64N((to-from-run)/align)*align] = testfiles.RandomBytes(int(run), rng.Uint64())
	}
	writeAt(t, path, 0, offs)
	return run * int64(count)
}

// TestSparseImage: a 100 GiB sparse image holding 200 MiB of data is read
// where it holds data only, and a rerun after 1% of the data changed, in
// writes of 1 MiB at 4 KiB-aligned offsets, stores about 1%: the image is
// cut in blocks of 128 KiB (a 100 GiB image in at most 2^20 blocks), so
// each write costs its 1 MiB and at most one block more.
func TestSparseImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const size, region, regions = 100 << 30, 25 << 20, 8 // 8 × 25 MiB = 200 MiB
	writes := map[int64][]byte{}
	for i := range int64(regions) {
		writes[i*12<<30] = testfiles.RandomBytes(region, uint64(10+i))
	}
	copy(writes[0], mbr(9))
	writeAt(t, img, size, writes)

	v := newVault(t, mem.New())
	first := imageRun(t, v, backup.Options{Paths: []string{img}})
	if s := first.Stats; s.BytesRead != regions*region || s.Images != 1 {
		t.Errorf("first run read %d bytes of a 100 GiB image with %d of data, %d images; want only its data read, as an image", s.BytesRead, regions*region, s.Images)
	}
	sameAsFile(t, loaded(t, v), lookup(t, loaded(t, v), first, img), img)

	var changed int64
	for _, i := range []int64{2, 5} {
		changed += changeBlocks(t, img, i*12<<30, i*12<<30+region, 1<<20, 4<<10, 1, uint64(100+i))
	}
	second := imageRun(t, v, backup.Options{Paths: []string{img}})
	sameAsFile(t, loaded(t, v), lookup(t, loaded(t, v), second, img), img)
	stored := second.Stats.BytesStored
	t.Logf("changed %d bytes (%.2f%% of the data), stored %d (%.2f%%)", changed, 100*float64(changed)/(regions*region), stored, 100*float64(stored)/(regions*region))
	if stored > uint64(changed)*5/4 {
		t.Errorf("rerun stored %d bytes after %d changed; want about as many (at most 1.25 times)", stored, changed)
	}
}

// TestImageScatteredWrites: a rerun after 1% of an image was rewritten
// stores about 1% of it when the writes come in runs, and about 4% when
// they are 4 KiB writes scattered at random, each costing the 16 KiB block
// it falls in (see minImageBlock); FastCDC stores most of the image then.
func TestImageScatteredWrites(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const size = 32 << 20
	data := testfiles.RandomBytes(size, 20)
	copy(data, mbr(21))
	testfiles.WriteFile(t, img, data)
	v := newVault(t, mem.New())
	imageRun(t, v, backup.Options{Paths: []string{img}})
	for _, c := range []struct {
		name       string
		run, count int64
		bound      float64 // stored, in % of the image
	}{
		{"scattered 4 KiB blocks", 4 << 10, size / 100 / (4 << 10), 5},
		{"contiguous runs of 160 KiB", 160 << 10, 2, 1.5},
	} {
		changed := changeBlocks(t, img, 4096, size, c.run, 4<<10, int(c.count), uint64(c.run))
		p := imageRun(t, v, backup.Options{Paths: []string{img}})
		sameAsFile(t, loaded(t, v), lookup(t, loaded(t, v), p, img), img)
		stored := 100 * float64(p.Stats.BytesStored) / size
		t.Logf("%s: changed %.2f%%, stored %.2f%%", c.name, 100*float64(changed)/size, stored)
		if stored > c.bound {
			t.Errorf("%s: stored %.2f%% of the image after %.2f%% changed; want at most %g%%", c.name, stored, 100*float64(changed)/size, c.bound)
		}
	}
}

// TestFixedVHD: a fixed VHD made by qemu-img is cut in blocks from its
// start with its footer apart, so a new footer (qemu writes a new time and
// UUID on every conversion) and a changed block cost only themselves.
func TestFixedVHD(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		missingPrerequisite(t, "qemu-img (Debian qemu-utils) is needed to make a fixed VHD")
	}
	dir := t.TempDir()
	raw, vhdPath := filepath.Join(t.TempDir(), "disk.raw"), filepath.Join(dir, "disk.vhd")
	writeAt(t, raw, 16<<20, map[int64][]byte{0: slices.Concat(mbr(30), testfiles.RandomBytes(12<<20-512, 31))})
	convert := func() {
		t.Helper()
		os.Remove(vhdPath)
		out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", raw, vhdPath).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img convert: %v: %s", err, out)
		}
	}
	convert()
	st, err := os.Stat(vhdPath)
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(st.Size())

	v := newVault(t, mem.New())
	var seen []backup.Image
	opts := backup.Options{Paths: []string{dir}, OnImage: func(path string, img backup.Image) {
		if path != vhdPath {
			t.Errorf("OnImage(%q), want %q", path, vhdPath)
		}
		seen = append(seen, img)
	}}
	first := imageRun(t, v, opts)
	if len(seen) != 1 || !seen[0].VHD || seen[0].DataSize != size-512 || seen[0].Size != size {
		t.Fatalf("OnImage saw %+v; want one fixed VHD of %d bytes with %d of disk", seen, size, size-512)
	}
	n := lookup(t, loaded(t, v), first, vhdPath)
	sameAsFile(t, loaded(t, v), n, vhdPath)
	block := seen[0].Block
	for i, e := range n.Extents[:len(n.Extents)-1] {
		if e.Offset%block != 0 || e.Offset+uint64(e.Length) > size-512 {
			t.Fatalf("extent %d (%d+%d) is not a block of %d bytes of the disk", i, e.Offset, e.Length, block)
		}
	}
	if last := n.Extents[len(n.Extents)-1]; last.Offset != size-512 || last.Length != 512 {
		t.Fatalf("last extent %d+%d; want the footer, %d+512", last.Offset, last.Length, size-512)
	}

	writeAt(t, raw, 0, map[int64][]byte{8 << 20: testfiles.RandomBytes(4096, 32)})
	convert()
	second := imageRun(t, v, opts)
	sameAsFile(t, loaded(t, v), lookup(t, loaded(t, v), second, vhdPath), vhdPath)
	// A block, the footer, and the image's list of 1,026 extents (~36 KB).
	if got := second.Stats.BytesStored; got > 96<<10 {
		t.Errorf("rerun after one 4 KiB write and a new footer stored %d bytes; want the block, the footer and the list of blocks (~56 KB)", got)
	}
}

// TestReadDevices: with ReadDevices a block device, named, named through a
// symbolic link, or met in the walk, is stored as a file of its content,
// read again on every run although its node's times stay; without it, as
// a device node.
func TestReadDevices(t *testing.T) {
	imgDir := t.TempDir()
	img := filepath.Join(imgDir, "disk.img")
	data := slices.Concat(mbr(40), testfiles.RandomBytes(6<<20-512, 41), make([]byte, 2<<20))
	testfiles.WriteFile(t, img, data)
	dev := loopdevtest.Attach(t, img)
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(dev, filepath.Join(dir, "snap")); err != nil {
		t.Fatal(err)
	}
	walked := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(walked, 0o755); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(walked, "sdz")
	if err := unix.Mknod(node, unix.S_IFBLK|0o640, int(st.Rdev)); err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(dir, "snap")

	cache, err := filecache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	v := newVault(t, mem.New())
	opts := backup.Options{Paths: []string{dev, named, walked}, ReadDevices: true, Files: cache}
	check := func(p *repo.Point, want []byte) {
		t.Helper()
		r := loaded(t, v)
		for _, path := range []string{dev, named, node} {
			n := lookup(t, r, p, path)
			if n.Type != tree.File || n.Size != uint64(len(want)) || n.Rdev != 0 {
				t.Fatalf("%s: a %s of %d bytes (rdev %d); want a file of the device's %d bytes", path, n.Type, n.Size, n.Rdev, len(want))
			}
			if got := content(t, r, n); !bytes.Equal(got, want) {
				t.Fatalf("%s: content differs from the device's", path)
			}
		}
		if got := lookup(t, r, p, node).Mode; got != 0o640 {
			t.Errorf("%s: mode %o, want the node's 640", node, got)
		}
		if s := p.Stats; s.Devices != 3 || s.Images != 3 || s.BytesRead != 3*8<<20 {
			t.Errorf("devices %d, images %d, read %d; want 3, 3 and each device's 8 MiB (zeros too: a device has no holes to skip)", s.Devices, s.Images, s.BytesRead)
		}
	}
	check(imageRun(t, v, opts), data)

	// Written through the device: its node's times stay.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{7}, 4096), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[1<<20:], bytes.Repeat([]byte{7}, 4096))
	check(imageRun(t, v, opts), data)

	p := imageRun(t, v, backup.Options{Paths: []string{dev, walked}})
	for _, path := range []string{dev, node} {
		if n := lookup(t, loaded(t, v), p, path); n.Type != tree.BlockDev || n.Rdev != st.Rdev {
			t.Errorf("%s without ReadDevices: a %s (rdev %d), want the block device node %d", path, n.Type, n.Rdev, st.Rdev)
		}
	}
}

package fs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// testDisk is imagetest's disk image, read into memory.
type testDisk struct {
	*imagetest.Disk
	image, ext4Image []byte
}

func newTestDisk(t *testing.T) *testDisk {
	t.Helper()
	d := &testDisk{Disk: imagetest.NewDisk(t, t.TempDir(), 50)}
	var err error
	if d.image, err = os.ReadFile(d.Path); err != nil {
		t.Fatal(err)
	}
	if d.ext4Image, err = os.ReadFile(d.Ext4Image); err != nil {
		t.Fatal(err)
	}
	return d
}

// mountImages mounts a point holding the disk image as "disk.img" (in
// chunks of 1 MiB), the bare ext4 image as "plain.ext4" and a file of
// random bytes, with opts.
func mountImages(t *testing.T, d *testDisk, opts Options) (string, *fakeSource, tree.Node) {
	t.Helper()
	src := newFakeSource()
	disk := src.file("disk.img", d.image, mib)
	pt := src.point("m", fixtureTime, []tree.Node{
		disk,
		src.file("plain.ext4", d.ext4Image, mib),
		src.file("random", randomBytes(mib, 7), mib),
	})
	root, err := NewPointRoot(src, pt, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mountTest(t, root, opts), src, disk
}

// dirNames lists dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestImageContents browses a GPT disk image in a mount: its partitions as
// files, named GPT partitions by label, the ext4 and FAT file systems and
// the LUKS2 volume's ext4, decrypted with the second of two passphrases,
// compared file by file with their sources.
func TestImageContents(t *testing.T) {
	d := newTestDisk(t)
	var logs logBuffer
	opts := Options{LUKSKeys: [][]byte{[]byte("wrong"), []byte(imagetest.Passphrase)}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	mnt, _, _ := mountImages(t, d, opts)
	p := func(rel string) string { return filepath.Join(mnt, rel) }

	if got, want := dirNames(t, mnt), []string{"disk.img", "disk.img.contents", "plain.ext4", "plain.ext4.contents", "random"}; !slices.Equal(got, want) {
		t.Fatalf("top level lists %q, want %q", got, want)
	}
	if _, err := os.Stat(p("random.contents")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("random.contents: %v, want not found", err)
	}
	want := []string{"by-partlabel", "p1", "p1.contents", "p2", "p2.contents", "p3", "p3.contents"}
	if got := dirNames(t, p("disk.img.contents")); !slices.Equal(got, want) {
		t.Fatalf("disk.img.contents lists %q, want %q", got, want)
	}
	if target, err := os.Readlink(p("disk.img.contents/by-partlabel/secret")); err != nil || target != "../p3" {
		t.Fatalf("by-partlabel/secret -> %q, %v", target, err)
	}
	p1, err := os.ReadFile(p("disk.img.contents/by-partlabel/root"))
	if err != nil || !bytes.Equal(p1[:len(d.ext4Image)], d.ext4Image) {
		t.Fatalf("p1 does not hold the ext4 image (%v)", err)
	}
	ext4 := imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9}
	imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(p("disk.img.contents/p1.contents")), ext4)
	imagetest.CompareTree(t, d.FAT, imagetest.NewDir(p("disk.img.contents/p2.contents")), imagetest.Compare{MtimeGranularity: 2e9})
	imagetest.CompareTree(t, d.LUKS, imagetest.NewDir(p("disk.img.contents/p3.contents/decrypted.contents")), ext4)
	imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(p("plain.ext4.contents")), ext4)
	if fi, err := os.Stat(p("disk.img.contents/p3.contents/decrypted")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("decrypted: %v, %v; want mode 0400", fi, err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", logs.String())
	}
}

// TestImageContentsOfFixedVHD: a fixed VHD made by qemu-img shows the same
// contents as its raw disk.
func TestImageContentsOfFixedVHD(t *testing.T) {
	d := newTestDisk(t)
	vhdPath := filepath.Join(t.TempDir(), "disk.vhd")
	imagetest.VHD(t, d.Path, vhdPath)
	data, err := os.ReadFile(vhdPath)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	pt := src.point("m", fixtureTime, []tree.Node{src.file("disk.vhd", data, mib)})
	opts := Options{LUKSKeys: [][]byte{[]byte(imagetest.Passphrase)}}
	root, err := NewPointRoot(src, pt, opts)
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, opts)
	c := filepath.Join(mnt, "disk.vhd.contents")
	ext4 := imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9}
	imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(filepath.Join(c, "p1.contents")), ext4)
	imagetest.CompareTree(t, d.FAT, imagetest.NewDir(filepath.Join(c, "p2.contents")), imagetest.Compare{MtimeGranularity: 2e9})
	imagetest.CompareTree(t, d.LUKS, imagetest.NewDir(filepath.Join(c, "p3.contents/decrypted.contents")), ext4)
}

// TestImageContentsWrongPassphrase: a LUKS volume no given key opens is
// reported in one line naming it and stays locked; the rest of the image
// is browsable.
func TestImageContentsWrongPassphrase(t *testing.T) {
	d := newTestDisk(t)
	var logs logBuffer
	mnt, _, _ := mountImages(t, d, Options{LUKSKeys: [][]byte{[]byte("wrong")}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if got := dirNames(t, filepath.Join(mnt, "disk.img.contents/p3.contents")); len(got) != 0 {
		t.Fatalf("a locked volume's contents list %q", got)
	}
	dirNames(t, filepath.Join(mnt, "disk.img.contents/p3.contents"))
	imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(filepath.Join(mnt, "disk.img.contents/p1.contents")), imagetest.Compare{Modes: true, MtimeGranularity: 1e9})
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "LUKS volume not unlocked") || !strings.Contains(lines[0], `path=/disk.img.contents/p3`) {
		t.Fatalf("want one line naming the volume, got:\n%s", logs.String())
	}
}

// TestImageContentsDamagedChunk: a damaged chunk of the image gives EIO to
// the file inside it that needs it, and to no other.
func TestImageContentsDamagedChunk(t *testing.T) {
	d := newTestDisk(t)
	mnt, src, disk := mountImages(t, d, Options{})
	// Damage a chunk that holds nothing but part of random.bin's data.
	random, err := os.ReadFile(filepath.Join(d.Ext4, "dir/sub/deeper/random.bin"))
	if err != nil {
		t.Fatal(err)
	}
	k := slices.IndexFunc(disk.Extents, func(e tree.Extent) bool {
		return bytes.Contains(random, d.image[e.Offset:e.Offset+uint64(e.Length)])
	})
	if k < 0 {
		t.Fatal("no chunk of the image holds random.bin's data alone")
	}
	src.mu.Lock() // the mount's read-ahead reads the map meanwhile
	src.damaged[disk.Extents[k].ID] = true
	src.mu.Unlock()
	_, err = os.ReadFile(filepath.Join(mnt, "disk.img.contents/p1.contents/dir/sub/deeper/random.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a file over a damaged chunk: %v, want EIO", err)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "disk.img.contents/p1.contents/hello.txt")); err != nil || string(data) != "hello, world\n" {
		t.Fatalf("hello.txt: %q, %v", data, err)
	}
}

// TestNoImageContents: the option hides the contents directories.
func TestNoImageContents(t *testing.T) {
	d := newTestDisk(t)
	mnt, _, _ := mountImages(t, d, Options{NoImageContents: true})
	if got, want := dirNames(t, mnt), []string{"disk.img", "plain.ext4", "random"}; !slices.Equal(got, want) {
		t.Fatalf("top level lists %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(mnt, "disk.img.contents")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("disk.img.contents: %v, want not found", err)
	}
}

// TestPointFileWindows: a point file reads in windows of many chunks; a
// damaged chunk fails only the reads that need it, not the others of its
// window; a window is loaded once however many reads want it.
func TestPointFileWindows(t *testing.T) {
	src := newFakeSource()
	data := randomBytes(3*mib+5000, 3)
	n := src.file("img", data, 16<<10)
	f := &pointFile{v: newVault(src, Options{ReadAhead: -1}), node: &n, path: "img"}
	read := func(off, length int) ([]byte, error) {
		buf := make([]byte, length)
		got, err := f.ReadAt(buf, int64(off))
		return buf[:got], err
	}
	// Across two windows and to the end.
	for _, r := range [][2]int{{mib - 100, 300}, {0, len(data)}, {3*mib + 10, 4990}} {
		got, err := read(r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("read of %d at %d: %d bytes, %v", r[1], r[0], len(got), err)
		}
	}
	if got := src.loadCount(n.Extents[70].ID); got != 1 {
		t.Fatalf("a chunk loaded %d times, want once", got)
	}

	f = &pointFile{v: newVault(src, Options{ReadAhead: -1}), node: &n, path: "img"}
	bad := n.Extents[70] // in the second window
	src.mu.Lock()
	src.damaged[bad.ID] = true
	src.mu.Unlock()
	if _, err := read(int(bad.Offset)+100, 100); !errors.Is(err, keys.ErrAuth) {
		t.Fatalf("read of the damaged chunk: %v, want ErrAuth", err)
	}
	before := int(n.Extents[69].Offset)
	if got, err := read(before, 16<<10); err != nil || !bytes.Equal(got, data[before:before+16<<10]) {
		t.Fatalf("read of the chunk before it in its window: %v", err)
	}
}

// TestImageContentsUnreadExt4: an ext4 file system with a feature azfs does
// not read (meta_bg) is one error line naming the image and the feature
// and pointing at the kernel's path; its contents directory cannot be
// opened.
func TestImageContentsUnreadExt4(t *testing.T) {
	imagetest.Require(t, "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "fs.img")
	imagetest.Run(t, "", "mkfs.ext4", "-q", "-F", "-O", "meta_bg,^resize_inode", img, "16M")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	pt := src.point("m", fixtureTime, []tree.Node{src.file("meta.ext4", data, mib)})
	var logs logBuffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	root, err := NewPointRoot(src, pt, opts)
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, opts)
	for range 2 {
		if _, err := os.ReadDir(filepath.Join(mnt, "meta.ext4.contents")); err == nil {
			t.Fatal("the contents of an ext4 with meta_bg list")
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "path=/meta.ext4") || !strings.Contains(lines[0], "meta_bg") || !strings.Contains(lines[0], "azfs image mount") {
		t.Fatalf("want one line naming the image, the feature and azfs image mount, got:\n%s", logs.String())
	}
}

// TestImageContentsMBRLogical: a logical partition of an MBR extended
// partition (sfdisk's dos label) is p5, and its ext4 file system is
// browsable; the extended partition itself is not listed.
func TestImageContentsMBRLogical(t *testing.T) {
	imagetest.Require(t, "sfdisk", "dd")
	dir := t.TempDir()
	files, ext4, disk := filepath.Join(dir, "files"), filepath.Join(dir, "ext4"), filepath.Join(dir, "disk.img")
	imagetest.Source(t, files, false, 10)
	imagetest.Ext4(t, ext4, files, 24)
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 28<<20); err != nil {
		t.Fatal(err)
	}
	imagetest.Run(t, "label: dos\nsize=1MiB, type=83\ntype=5\nsize=24MiB, type=83\n", "sfdisk", "-q", disk)
	var start string
	for _, line := range strings.Split(imagetest.Run(t, "", "sfdisk", "-d", disk), "\n") {
		if rest, ok := strings.CutPrefix(line, disk+"5 : start="); ok {
			start, _, _ = strings.Cut(strings.TrimSpace(rest), ",")
		}
	}
	if start == "" {
		t.Fatal("sfdisk -d lists no partition 5")
	}
	imagetest.Run(t, "", "dd", "if="+ext4, "of="+disk, "bs=512", "seek="+start, "conv=notrunc", "status=none")
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	pt := src.point("m", fixtureTime, []tree.Node{src.file("disk.img", data, 16<<10)})
	root, err := NewPointRoot(src, pt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountTest(t, root, Options{})
	if got, want := dirNames(t, filepath.Join(mnt, "disk.img.contents")), []string{"p1", "p5", "p5.contents"}; !slices.Equal(got, want) {
		t.Fatalf("disk.img.contents lists %q, want %q", got, want)
	}
	imagetest.CompareTree(t, files, imagetest.NewDir(filepath.Join(mnt, "disk.img.contents/p5.contents")), imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9})
}

// vectorResult is what go-fuse writes with writev: its readResultVector.
type vectorResult interface {
	Slices() ([][]byte, fuse.Status)
}

// TestReadResultIsVector: a read inside an image answers with a vector,
// which go-fuse writes with writev; it would try to splice plain data,
// and fail and log a line for every 1 MiB read (the pipe holds 1 MiB, not
// the read and its header).
func TestReadResultIsVector(t *testing.T) {
	dest := make([]byte, 1<<20)
	res, errno := readResult(nil, func(p []byte, _ int64) (int, error) { return len(p), nil }, "x", dest, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if _, ok := res.(vectorResult); !ok || res.Size() != len(dest) {
		t.Fatalf("read result %T of %d bytes, want a vector of %d", res, res.Size(), len(dest))
	}
}

// TestListingDetectsImagesFromTheFirstChunk: listing a directory detects
// whether each file that could be a disk image is one by reading its first
// chunk alone, through the chunk cache: nothing is read ahead for the
// detection, and a copy that then reads the file finds the chunk cached.
func TestListingDetectsImagesFromTheFirstChunk(t *testing.T) {
	src := newFakeSource()
	data := randomBytes(8*mib, 12) // a candidate: a multiple of 512 bytes
	f := src.file("f.bin", data, mib)
	root := newTestRoot(t, src, src.point("m", fixtureTime, []tree.Node{f}), Options{})
	ds, errno := root.Readdir(context.Background())
	if errno != 0 {
		t.Fatal(errno)
	}
	var names []string
	for ds.HasNext() {
		e, errno := ds.Next()
		if errno != 0 {
			t.Fatal(errno)
		}
		names = append(names, e.Name)
	}
	ds.Close()
	if !slices.Equal(names, []string{"f.bin"}) {
		t.Fatalf("listed %q", names)
	}
	time.Sleep(20 * time.Millisecond)
	waitFor(t, "loads to end", func() bool { return root.pt.v.chunks.Loads() == 0 && root.pt.v.images.windows.Loads() == 0 })
	if n := src.chunkLoads(); n != 1 {
		t.Errorf("listing loaded %d chunks, want 1 (the first chunk of f.bin)", n)
	}
	fn, _ := lookup(t, root, "f.bin")
	if got, errno := readNode(t, fn, 0, 4096); errno != 0 || !bytes.Equal(got, data[:4096]) {
		t.Fatalf("read: errno %v", errno)
	}
	if n := src.loadCount(f.Extents[0].ID); n != 1 {
		t.Errorf("the first chunk was loaded %d times, want once: the read after the listing should find it cached", n)
	}
}

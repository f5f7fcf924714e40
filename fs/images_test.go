package fs

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/repo/tree"
)

// testDisk is a GPT disk image made by sfdisk holding an ext4 partition
// ("root"), a FAT partition ("EFI") and a LUKS2 partition ("secret")
// holding ext4, and the source directories of their file systems.
type testDisk struct {
	image                 []byte
	ext4, fat, luks       string // source directories
	ext4Image             []byte // the ext4 partition's content
	plainExt4, plainExt4S string // a bare ext4 image and its source
}

func newTestDisk(t *testing.T) *testDisk {
	t.Helper()
	dir := t.TempDir()
	d := &testDisk{ext4: filepath.Join(dir, "ext4"), fat: filepath.Join(dir, "fat"), luks: filepath.Join(dir, "luks")}
	imagetest.Source(t, d.ext4, false, 50)
	imagetest.Source(t, d.fat, true, 50)
	imagetest.Source(t, d.luks, false, 20)
	p := func(name string) string { return filepath.Join(dir, name) }
	imagetest.Ext4(t, p("p1"), d.ext4, 24)
	imagetest.FAT(t, p("p2"), d.fat, 16, 0)
	// LUKS's offline encryption moves the data up by 8 MiB: the file
	// system leaves that much free at the end of the file.
	imagetest.Ext4(t, p("p3"), d.luks, 24)
	if err := os.Truncate(p("p3"), 32<<20); err != nil {
		t.Fatal(err)
	}
	imagetest.LUKS(t, p("p3"), imagetest.LUKSOptions{})
	imagetest.GPT(t, p("disk.img"), []imagetest.Partition{
		{Name: "root", Content: p("p1")},
		{Name: "EFI", Type: "uefi", Content: p("p2")},
		{Name: "secret", Content: p("p3")},
	})
	var err error
	if d.image, err = os.ReadFile(p("disk.img")); err != nil {
		t.Fatal(err)
	}
	if d.ext4Image, err = os.ReadFile(p("p1")); err != nil {
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
	imagetest.CompareTree(t, d.ext4, imagetest.NewDir(p("disk.img.contents/p1.contents")), ext4)
	imagetest.CompareTree(t, d.fat, imagetest.NewDir(p("disk.img.contents/p2.contents")), imagetest.Compare{MtimeGranularity: 2e9})
	imagetest.CompareTree(t, d.luks, imagetest.NewDir(p("disk.img.contents/p3.contents/decrypted.contents")), ext4)
	imagetest.CompareTree(t, d.ext4, imagetest.NewDir(p("plain.ext4.contents")), ext4)
	if fi, err := os.Stat(p("disk.img.contents/p3.contents/decrypted")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("decrypted: %v, %v; want mode 0400", fi, err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", logs.String())
	}
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
	imagetest.CompareTree(t, d.ext4, imagetest.NewDir(filepath.Join(mnt, "disk.img.contents/p1.contents")), imagetest.Compare{Modes: true, MtimeGranularity: 1e9})
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
	random, err := os.ReadFile(filepath.Join(d.ext4, "dir/sub/deeper/random.bin"))
	if err != nil {
		t.Fatal(err)
	}
	k := slices.IndexFunc(disk.Extents, func(e tree.Extent) bool {
		return bytes.Contains(random, d.image[e.Offset:e.Offset+uint64(e.Length)])
	})
	if k < 0 {
		t.Fatal("no chunk of the image holds random.bin's data alone")
	}
	src.damaged[disk.Extents[k].ID] = true
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

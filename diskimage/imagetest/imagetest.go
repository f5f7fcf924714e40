// Package imagetest makes disk images for tests with the real tools users
// make them with: sfdisk, mkfs.ext4, mkfs.vfat and mtools, cryptsetup. No
// byte of an image is written by azfs code. A test whose tool is missing
// is skipped, except under CI=true, where it fails.
package imagetest

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azfs/azfs/diskimage"
)

// Passphrase is the passphrase of the LUKS volumes LUKS makes.
const Passphrase = "correct horse battery staple"

// Require skips t, or fails it under CI=true, unless every tool is on the
// PATH (or in /sbin, /usr/sbin).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := lookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing: .ci/run installs it", tool)
			}
			t.Skipf("%s is missing (apt-get install fdisk e2fsprogs dosfstools mtools cryptsetup-bin)", tool)
		}
	}
}

// lookPath finds tool on the PATH or in the sbin directories, which a
// non-root PATH may lack.
func lookPath(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, tool)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath(tool)
}

// Run runs a tool, failing t with its output if it fails.
func Run(t testing.TB, stdin string, tool string, args ...string) string {
	t.Helper()
	path, err := lookPath(tool)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	// FAT keeps local times: mtools writes them in UTC, as fat reads them.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ext4 makes an ext4 file system of sizeMiB MiB holding a copy of dir
// (mkfs.ext4 -d, with mkfs.ext4's default features) in a new file at path.
func Ext4(t testing.TB, path, dir string, sizeMiB int) {
	t.Helper()
	Require(t, "mkfs.ext4")
	Run(t, "", "mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", dir, path, itoa(sizeMiB)+"M")
}

// FAT makes a FAT file system of sizeMiB MiB (mkfs.vfat chooses FAT12,
// 16 or 32 by size unless fatBits is non-zero) in a new file at path and
// copies dir's entries into it with mcopy, keeping modification times.
func FAT(t testing.TB, path, dir string, sizeMiB, fatBits int) {
	t.Helper()
	Require(t, "mkfs.vfat", "mcopy")
	args := []string{"-C"}
	if fatBits != 0 {
		args = append(args, "-F", itoa(fatBits))
	}
	Run(t, "", "mkfs.vfat", append(args, path, itoa(sizeMiB*1024))...)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		Run(t, "", "mcopy", "-s", "-m", "-i", path, filepath.Join(dir, e.Name()), "::/"+e.Name())
	}
}

// LUKSOptions choose how LUKS encrypts a file.
type LUKSOptions struct {
	// Type is "luks1" or "luks2" (the default). Offline encryption makes
	// LUKS2 only (LUKS1's needs device-mapper): a LUKS1 volume is made
	// as LUKS2 with PBKDF2 and converted by cryptsetup convert.
	Type string
	// PBKDF is "argon2id" (the default), "argon2i" or "pbkdf2".
	PBKDF string
	// SectorSize is the LUKS2 data sector size (default 512).
	SectorSize int
	// KeyFile, if set, is the key file to use instead of Passphrase.
	KeyFile string
}

// LUKS encrypts the file at path in place with cryptsetup's offline
// encryption (cryptsetup reencrypt --encrypt --reduce-device-size), which
// needs no device-mapper: the last 8 MiB of the file's content must be
// free (the data moves up by the header's size). The key slot costs are
// set low, for speed.
func LUKS(t testing.TB, path string, o LUKSOptions) {
	t.Helper()
	Require(t, "cryptsetup")
	keyFile := o.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(t.TempDir(), "pass")
		if err := os.WriteFile(keyFile, []byte(Passphrase), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	typ, pbkdf := o.Type, o.PBKDF
	if typ == "" {
		typ = "luks2"
	}
	if pbkdf == "" {
		pbkdf = "argon2id"
	}
	if typ == "luks1" {
		pbkdf = "pbkdf2"
	}
	args := []string{"reencrypt", "--encrypt", "--batch-mode", "--type", "luks2", "--reduce-device-size", "8M",
		"--cipher", "aes-xts-plain64", "--key-size", "512", "--pbkdf", pbkdf, "--key-file", keyFile}
	if pbkdf == "pbkdf2" {
		args = append(args, "--pbkdf-force-iterations", "1000", "--hash", "sha256")
	} else {
		args = append(args, "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32768", "--pbkdf-parallel", "1")
	}
	if o.SectorSize != 0 {
		args = append(args, "--sector-size", itoa(o.SectorSize))
	}
	Run(t, "", "cryptsetup", append(args, path)...)
	if typ == "luks1" {
		Run(t, "", "cryptsetup", "convert", "--batch-mode", "--type", "luks1", path)
	}
}

// Partition is one partition GPT makes.
type Partition struct {
	// Name is the GPT partition name.
	Name string
	// Type is sfdisk's type (for example "linux", "uefi"); default linux.
	Type string
	// Content is the file whose bytes fill the partition; the partition
	// is its size rounded up to MiB.
	Content string
}

// GPT makes a disk image at path with a GPT partition table written by
// sfdisk holding parts in order, each starting on a MiB boundary, and
// copies each partition's content into place with dd.
func GPT(t testing.TB, path string, parts []Partition) {
	t.Helper()
	Require(t, "sfdisk", "dd")
	script := "label: gpt\n"
	totalMiB := 2 // the primary table before, the backup after
	for _, p := range parts {
		st, err := os.Stat(p.Content)
		if err != nil {
			t.Fatal(err)
		}
		mib := int((st.Size() + 1<<20 - 1) >> 20)
		typ := p.Type
		if typ == "" {
			typ = "linux"
		}
		script += "size=" + itoa(mib) + "MiB, type=" + typ + ", name=\"" + p.Name + "\"\n"
		totalMiB += mib
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(totalMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	Run(t, script, "sfdisk", "-q", path)
	out := Run(t, "", "sfdisk", "-d", path)
	i := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, path) {
			continue
		}
		start := field(line, "start=")
		Run(t, "", "dd", "if="+parts[i].Content, "of="+path, "bs=512", "seek="+start, "conv=notrunc,sparse", "status=none")
		i++
	}
	if i != len(parts) {
		t.Fatalf("sfdisk -d lists %d partitions, want %d:\n%s", i, len(parts), out)
	}
}

// field returns the value after key in an sfdisk -d line.
func field(line, key string) string {
	i := strings.Index(line, key)
	if i < 0 {
		return ""
	}
	v := strings.TrimSpace(line[i+len(key):])
	if j := strings.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	return strings.TrimSpace(v)
}

func itoa(n int) string { return strconv.Itoa(n) }

// Tree is a file system read from an image, as the diskimage readers
// (ext4.FS, fat.FS) serve it.
type Tree interface {
	Root() (diskimage.Node, error)
	ReadDir(dir *diskimage.Node, cursor int64, fn func(n diskimage.Node, next int64) bool) error
	ReadAt(f *diskimage.Node, p []byte, off int64) (int, error)
	Readlink(l *diskimage.Node) (string, error)
}

// Source makes the standard source tree the image tests copy into file
// systems, in dir: regular files of several sizes (empty, small, a few MiB
// of random bytes, one with a hole), nested directories, a directory of
// many files, and, unless fatOnly, modes, symlinks and nanosecond times,
// which FAT cannot hold.
func Source(t testing.TB, dir string, fatOnly bool, many int) {
	t.Helper()
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	random := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	write("empty", nil, 0o644)
	write("hello.txt", []byte("hello, world\n"), 0o644)
	write("Long File Name With Spaces.data", random[:70000], 0o644)
	write("dir/sub/deeper/random.bin", random, 0o600)
	for i := range many {
		write("many/file-"+strconv.Itoa(i), []byte(strconv.Itoa(i)), 0o644)
	}
	if !fatOnly {
		write("script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
		write("setuid", []byte("x"), 0o4755)
		if err := os.Symlink("hello.txt", filepath.Join(dir, "short-link")); err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("a-long-symlink-target/", 8) + "end"
		if err := os.Symlink(long, filepath.Join(dir, "dir/long-link")); err != nil {
			t.Fatal(err)
		}
		// A file with a 1 MiB hole in the middle.
		f, err := os.Create(filepath.Join(dir, "sparse"))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("start"))
		f.WriteAt([]byte("end"), 1<<20+5)
		f.Close()
	}
	// Times: nanoseconds where the file system keeps them, even seconds
	// for FAT's 2-second stamps.
	var when time.Time
	if fatOnly {
		when = time.Date(2021, 3, 4, 5, 6, 8, 0, time.UTC)
	} else {
		when = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	}
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type()&iofs.ModeSymlink == 0 {
			os.Chtimes(p, when, when)
		}
		return err
	})
}

// Compare says what CompareTree checks beyond names, types and content.
type Compare struct {
	// Modes checks permission bits; Owners, UIDs and GIDs.
	Modes, Owners bool
	// MtimeGranularity is the file system's resolution of modification
	// times (0: nanoseconds); directories' times are not compared (mkfs
	// sets them when it writes entries).
	MtimeGranularity time.Duration
}

// CompareTree checks that tree holds exactly what directory src holds:
// the same names, types, file contents and symlink targets, and what c
// asks for.
func CompareTree(t testing.TB, src string, tree Tree, c Compare) {
	t.Helper()
	root, err := tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	compareDir(t, src, "", tree, &root, c)
}

func compareDir(t testing.TB, src, rel string, tree Tree, dir *diskimage.Node, c Compare) {
	t.Helper()
	want, err := os.ReadDir(filepath.Join(src, rel))
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]diskimage.Node)
	err = tree.ReadDir(dir, 0, func(n diskimage.Node, _ int64) bool {
		if n.Name != "lost+found" || rel != "" {
			got[n.Name] = n
		}
		return true
	})
	if err != nil {
		t.Fatalf("read directory %q: %v", rel, err)
	}
	if len(got) != len(want) {
		t.Errorf("directory %q: %d entries, want %d", rel, len(got), len(want))
	}
	for _, e := range want {
		p := filepath.Join(rel, e.Name())
		n, ok := got[e.Name()]
		if !ok {
			t.Errorf("%q is missing", p)
			continue
		}
		st, err := os.Lstat(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if n.Mode&syscall.S_IFMT != sys.Mode&syscall.S_IFMT {
			t.Errorf("%q: mode %o, want %o", p, n.Mode, sys.Mode)
			continue
		}
		if c.Modes && n.Mode != sys.Mode {
			t.Errorf("%q: mode %o, want %o", p, n.Mode, sys.Mode)
		}
		if c.Owners && (n.UID != sys.Uid || n.GID != sys.Gid) {
			t.Errorf("%q: owner %d:%d, want %d:%d", p, n.UID, n.GID, sys.Uid, sys.Gid)
		}
		switch {
		case e.IsDir():
			compareDir(t, src, p, tree, &n, c)
			continue
		case e.Type()&iofs.ModeSymlink != 0:
			target, err := tree.Readlink(&n)
			wantTarget, _ := os.Readlink(filepath.Join(src, p))
			if err != nil || target != wantTarget {
				t.Errorf("%q: symlink to %q (%v), want %q", p, target, err, wantTarget)
			}
			continue
		}
		mtime := time.Unix(n.Mtime.Sec, int64(n.Mtime.Nsec))
		if g := max(c.MtimeGranularity, 1); !mtime.Equal(st.ModTime().Truncate(g)) {
			t.Errorf("%q: mtime %v, want %v", p, mtime.UTC(), st.ModTime().UTC())
		}
		wantData, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		if n.Size != uint64(len(wantData)) {
			t.Errorf("%q: %d bytes, want %d", p, n.Size, len(wantData))
			continue
		}
		gotData := make([]byte, len(wantData))
		if k, err := tree.ReadAt(&n, gotData, 0); k != len(gotData) || (err != nil && err != io.EOF) {
			t.Errorf("%q: read %d bytes: %v", p, k, err)
		}
		if !bytes.Equal(gotData, wantData) {
			t.Errorf("%q: content differs", p)
		}
	}
}

// Padded is an image whose first bytes are b and the rest, up to Len,
// zeros: how fuzz tests keep their seeds small.
type Padded struct {
	B   []byte
	Len int64
}

// ReadAt reads the image.
func (p Padded) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= p.Len {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.Len-off))
	clear(b[:n])
	if off < int64(len(p.B)) {
		copy(b[:n], p.B[off:])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// Walk reads everything in tree, as a fuzz test does: every directory,
// the first bytes of every file, every symlink, at most limit nodes. It
// returns the first error, after which it stops.
func Walk(tree Tree, limit int) error {
	root, err := tree.Root()
	if err != nil {
		return err
	}
	queue := []diskimage.Node{root}
	seen := 0
	buf := make([]byte, 64<<10)
	for len(queue) > 0 && seen < limit {
		dir := queue[0]
		queue = queue[1:]
		var walkErr error
		err := tree.ReadDir(&dir, 0, func(n diskimage.Node, _ int64) bool {
			seen++
			switch n.Mode & syscall.S_IFMT {
			case syscall.S_IFDIR:
				queue = append(queue, n)
			case syscall.S_IFLNK:
				_, walkErr = tree.Readlink(&n)
			case syscall.S_IFREG:
				if k, err := tree.ReadAt(&n, buf, 0); err != nil && err != io.EOF {
					walkErr = err
				} else if k > len(buf) {
					walkErr = errors.New("read more than asked")
				}
			}
			return walkErr == nil && seen < limit
		})
		if err != nil {
			return err
		}
		if walkErr != nil {
			return walkErr
		}
	}
	return nil
}

// FuzzTree is the fuzz test of a file system reader: it opens arbitrary
// bytes as an image (b followed by zeros up to size bytes) with open and
// walks all of it. Every error must wrap one of allowed; a panic or a
// loop fails.
func FuzzTree(f *testing.F, open func(r io.ReaderAt, size int64) (Tree, error), allowed ...error) {
	f.Add([]byte{}, int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if size < 0 || size > 1<<30 {
			return
		}
		tree, err := open(Padded{B: b, Len: size}, size)
		if err == nil {
			err = Walk(tree, 1000)
		}
		if err == nil {
			return
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return
			}
		}
		t.Fatalf("error %v wraps none of %v", err, allowed)
	})
}

// Dir is a directory of the machine's file system as a Tree, so that
// CompareTree compares a mounted tree (a FUSE mount) with its source.
type Dir struct {
	root  string
	mu    sync.Mutex
	paths []string // by Node.ID
}

// NewDir returns the tree under root.
func NewDir(root string) *Dir {
	return &Dir{root: root, paths: []string{root}}
}

func (d *Dir) node(path, name string) (diskimage.Node, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return diskimage.Node{}, err
	}
	sys := st.Sys().(*syscall.Stat_t)
	d.mu.Lock()
	d.paths = append(d.paths, path)
	id := uint64(len(d.paths) - 1)
	d.mu.Unlock()
	return diskimage.Node{Name: name, ID: id, Mode: sys.Mode, UID: sys.Uid, GID: sys.Gid, Size: uint64(sys.Size),
		Links: uint32(sys.Nlink), Mtime: diskimage.Time{Sec: sys.Mtim.Sec, Nsec: uint32(sys.Mtim.Nsec)}}, nil
}

func (d *Dir) path(n *diskimage.Node) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paths[n.ID]
}

// Root returns the root directory.
func (d *Dir) Root() (diskimage.Node, error) {
	n, err := d.node(d.root, "")
	n.ID = 0
	return n, err
}

// ReadDir lists directory dir (cursor is ignored).
func (d *Dir) ReadDir(dir *diskimage.Node, _ int64, fn func(n diskimage.Node, next int64) bool) error {
	p := d.path(dir)
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for i, e := range entries {
		n, err := d.node(filepath.Join(p, e.Name()), e.Name())
		if err != nil {
			return err
		}
		if !fn(n, int64(i+1)) {
			return nil
		}
	}
	return nil
}

// ReadAt reads file f.
func (d *Dir) ReadAt(f *diskimage.Node, p []byte, off int64) (int, error) {
	file, err := os.Open(d.path(f))
	if err != nil {
		return 0, err
	}
	defer file.Close()
	return file.ReadAt(p, off)
}

// Readlink reads symlink l.
func (d *Dir) Readlink(l *diskimage.Node) (string, error) {
	return os.Readlink(d.path(l))
}

// Disk is a GPT disk image made by sfdisk holding an ext4 partition named
// "root" (mkfs.ext4 -d), a FAT partition "EFI" (mkfs.vfat + mcopy) and a
// LUKS2 partition "secret" holding ext4 (cryptsetup reencrypt --encrypt,
// with Passphrase), and the sources of their file systems.
type Disk struct {
	// Path is the disk image; Ext4Image the root partition's content.
	Path, Ext4Image string
	// Ext4, FAT and LUKS are the source directories of the partitions'
	// file systems.
	Ext4, FAT, LUKS string
}

// NewDisk makes a Disk in dir; the ext4 partition's directory of many
// files holds many of them.
func NewDisk(t testing.TB, dir string, many int) *Disk {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	d := &Disk{Path: p("disk.img"), Ext4Image: p("p1"), Ext4: p("ext4"), FAT: p("fat"), LUKS: p("luks")}
	Source(t, d.Ext4, false, many)
	Source(t, d.FAT, true, 50)
	Source(t, d.LUKS, false, 20)
	Ext4(t, p("p1"), d.Ext4, 24+many/200)
	FAT(t, p("p2"), d.FAT, 16, 0)
	// LUKS's offline encryption moves the data up by 8 MiB: the file
	// system leaves that much free at the end of the file.
	Ext4(t, p("p3"), d.LUKS, 24)
	if err := os.Truncate(p("p3"), 32<<20); err != nil {
		t.Fatal(err)
	}
	LUKS(t, p("p3"), LUKSOptions{})
	GPT(t, d.Path, []Partition{
		{Name: "root", Content: p("p1")},
		{Name: "EFI", Type: "uefi", Content: p("p2")},
		{Name: "secret", Content: p("p3")},
	})
	return d
}

// VHD converts the raw disk image raw into a fixed VHD at path with
// qemu-img (the format Azure exports: the raw disk, rounded up to a CHS
// geometry, then a 512-byte footer).
func VHD(t testing.TB, raw, path string) {
	t.Helper()
	Require(t, "qemu-img")
	Run(t, "", "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", raw, path)
}

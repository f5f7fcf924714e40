package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/loopdev/loopdevtest"
)

// TestBackupDevicesAndImages: `azfs backup --read-devices` of a loop device,
// named and through a symbolic link, and of a fixed VHD that qemu-img made,
// mounted with azmount: each reads back byte for byte as a regular file.
// Without the flag the device is a device node in the mount.
func TestBackupDevicesAndImages(t *testing.T) {
	requireRoot(t)
	requireFUSE(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		unavailable(t, "qemu-img (Debian qemu-utils) is needed to make a fixed VHD")
	}
	e := newEnv(t)
	e.createVault()
	work := t.TempDir()

	// A disk: an MBR, data, a run of zeros, data.
	img := filepath.Join(work, "disk.img")
	first := randomBytes(12<<20, 60)
	first[510], first[511] = 0x55, 0xaa
	writeFile(t, img, slices.Concat(first, make([]byte, 8<<20), randomBytes(4<<20, 61)), 0o644)
	imgSHA, err := fileSHA(img)
	if err != nil {
		t.Fatal(err)
	}
	dev := loopdevtest.Attach(t, img)
	src := mkdir(t, filepath.Join(work, "src"))
	link := filepath.Join(src, "snap")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	vhdPath := filepath.Join(src, "disk.vhd")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", img, vhdPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	vhdSHA, err := fileSHA(vhdPath)
	if err != nil {
		t.Fatal(err)
	}

	out := e.backup("--read-devices", dev, link, vhdPath)
	if s := out.Stats; s.Devices != 2 || s.Images != 3 || s.BytesStored > 20<<20 {
		t.Errorf("backup: %d devices, %d images, stored %d bytes; want 2 devices, 3 images (the VHD too), and 16 MiB of data stored once, not its zeros", s.Devices, s.Images, s.BytesStored)
	}
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	m := e.mount(mnt, "--point", "latest")
	for path, want := range map[string]string{dev: imgSHA, link: imgSHA, vhdPath: vhdSHA} {
		inMount := filepath.Join(mnt, path)
		st, err := os.Lstat(inMount)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() {
			t.Errorf("%s in the mount is %s, want a regular file", path, st.Mode())
		}
		if got, err := fileSHA(inMount); err != nil || got != want {
			t.Errorf("%s in the mount: sha256 %s (%v), want %s", path, got, err, want)
		}
	}
	m.cleanup()

	// -v names each image it reads (not an unchanged one, which it does
	// not read) and says what it is.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(vhdPath, later, later); err != nil {
		t.Fatal(err)
	}
	r := e.mustAzfs("backup", "-v", vhdPath)
	if want := fmt.Sprintf("azfs: %q: a fixed VHD (a ", vhdPath); !strings.Contains(r.stderr, want) {
		t.Errorf("backup -v of a fixed VHD: stderr lacks %q:\n%s", want, r)
	}

	e.backup(dev)
	m = e.mount(mnt, "--point", "latest")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, dev), &st); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(dev, &want); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want.Rdev {
		t.Errorf("%s backed up without --read-devices: mode %o rdev %d in the mount, want the block device %d", dev, st.Mode, st.Rdev, want.Rdev)
	}
	m.cleanup()
}

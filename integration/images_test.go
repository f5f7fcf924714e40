package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/loopmount"
)

// imageBackedUp backs up a GPT disk image made by sfdisk (ext4, FAT and
// LUKS2-over-ext4 partitions) and a fixed VHD of it made by qemu-img, and
// returns the env, the disk's sources and the directory that held them.
func imageBackedUp(t *testing.T) (*env, *imagetest.Disk, string) {
	t.Helper()
	e := newEnv(t)
	e.createVault()
	d := imagetest.NewDisk(t, mkdir(t, filepath.Join(e.dir, "build")), 200)
	src := mkdir(t, filepath.Join(e.dir, "src"))
	if err := os.Rename(d.Path, filepath.Join(src, "disk.img")); err != nil {
		t.Fatal(err)
	}
	d.Path = filepath.Join(src, "disk.img")
	imagetest.VHD(t, d.Path, filepath.Join(src, "disk.vhd"))
	e.backup(src)
	return e, d, src
}

// TestImageContentsInMount: azmount shows the partitions, the ext4 and FAT
// trees and the LUKS2 partition's ext4, decrypted with a passphrase file,
// of a backed-up disk image and of its fixed VHD, file by file as their
// sources; the kernel (as root) mounts the decrypted partition the mount
// exposes and finds the same files.
func TestImageContentsInMount(t *testing.T) {
	requireFUSE(t)
	e, d, src := imageBackedUp(t)
	pass := filepath.Join(e.dir, "luks-pass")
	writeFile(t, pass, []byte(imagetest.Passphrase+"\n"), 0o600)
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	m := e.mount(mnt, "--point", "latest", "--luks-passphrase-file", pass)
	ext4 := imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9}
	for _, name := range []string{"disk.img", "disk.vhd"} {
		c := filepath.Join(mnt, src, name+".contents")
		imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(filepath.Join(c, "p1.contents")), ext4)
		imagetest.CompareTree(t, d.FAT, imagetest.NewDir(filepath.Join(c, "p2.contents")), imagetest.Compare{MtimeGranularity: 2e9})
		imagetest.CompareTree(t, d.LUKS, imagetest.NewDir(filepath.Join(c, "p3.contents/decrypted.contents")), ext4)
	}
	if strings.Contains(m.stderr.String(), "level=ERROR") {
		t.Errorf("azmount logged errors:\n%s", m.stderr)
	}

	requireRoot(t)
	kdir := mkdir(t, filepath.Join(e.dir, "kernel"))
	k, err := loopmount.Mount(context.Background(), filepath.Join(mnt, src, "disk.img.contents/p3.contents/decrypted"), kdir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := k.Unmount(); err != nil {
			t.Error(err)
		}
	}()
	imagetest.CompareTree(t, d.LUKS, imagetest.NewDir(kdir), ext4)
}

// TestImageContentsWrongKey: a key file that opens no key slot gives one
// error line naming the LUKS volume; the other partitions stay browsable.
func TestImageContentsWrongKey(t *testing.T) {
	requireFUSE(t)
	e, d, src := imageBackedUp(t)
	key := filepath.Join(e.dir, "luks-key")
	writeFile(t, key, []byte("not the key"), 0o600)
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	// A key file that cannot be read: one line, before anything is mounted.
	checkOneLineError(t, e.run(azmountBin, "--luks-key-file", filepath.Join(e.dir, "missing"), mnt), "azmount: read LUKS key file")
	m := e.mount(mnt, "--point", "latest", "--luks-key-file", key)
	c := filepath.Join(mnt, src, "disk.img.contents")
	if entries, err := os.ReadDir(filepath.Join(c, "p3.contents")); err != nil || len(entries) != 0 {
		t.Fatalf("a locked volume's contents: %v, %v", entries, err)
	}
	imagetest.CompareTree(t, d.Ext4, imagetest.NewDir(filepath.Join(c, "p1.contents")), imagetest.Compare{Modes: true, MtimeGranularity: 1e9})
	var lines []string
	for _, l := range strings.Split(m.stderr.String(), "\n") {
		if strings.Contains(l, "LUKS") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `disk.img.contents/p3`) || !strings.Contains(lines[0], "no key slot opens") {
		t.Fatalf("want one line naming the volume, got:\n%s", m.stderr)
	}
}

// TestImageMountCommand: azfs image mount (root) mounts the LUKS2
// partition's ext4 of a backed-up disk image through the kernel, decrypted
// with a passphrase file, and on SIGTERM unmounts it and detaches its loop
// device; a disk without --partition and a wrong passphrase are one-line
// errors that leave nothing mounted.
func TestImageMountCommand(t *testing.T) {
	requireFUSE(t)
	requireRoot(t)
	e, d, src := imageBackedUp(t)
	pass := filepath.Join(e.dir, "luks-pass")
	writeFile(t, pass, []byte(imagetest.Passphrase), 0o600)
	kdir := mkdir(t, filepath.Join(e.dir, "kernel"))
	image := "latest:" + filepath.Join(src, "disk.img")

	checkOneLineError(t, e.azfs("image", "mount", image, kdir), "azfs: ")
	wrong := filepath.Join(e.dir, "wrong")
	writeFile(t, wrong, []byte("wrong"), 0o600)
	r := e.azfs("image", "mount", image, kdir, "--partition", "3", "--luks-key-file", wrong)
	if r.code == 0 || !strings.Contains(r.stderr, "no given passphrase or key file unlocks") {
		t.Errorf("a wrong key: want an error saying the volume stays locked, got:\n%s", r)
	}
	if isMounted(t, kdir) {
		t.Fatal("a failed image mount left its mountpoint mounted")
	}

	stderr := &syncBuffer{}
	cmd := e.command(nil, azfsBin, "image", "mount", image, kdir, "--partition", "3", "--luks-passphrase-file", pass)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
		}
	})
	deadline := time.Now().Add(mountTimeout)
	for !strings.Contains(stderr.String(), "mounted read-only at") {
		if time.Now().After(deadline) {
			t.Fatalf("azfs image mount not ready; stderr:\n%s", stderr)
		}
		select {
		case err := <-done:
			t.Fatalf("azfs image mount exited: %v; stderr:\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// An informational line, without the error prefix, naming the file in
	// the point quoted (issue 14).
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "mounted read-only at") && !strings.HasPrefix(line, `"`) {
			t.Errorf("the mount's line does not start with the quoted image name: %q", line)
		}
	}
	imagetest.CompareTree(t, d.LUKS, imagetest.NewDir(kdir), imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9})
	dev := regexp.MustCompile(`/dev/loop[0-9]+`).FindString(stderr.String())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("azfs image mount after SIGTERM: %v; stderr:\n%s", err, stderr)
		}
	case <-time.After(mountTimeout):
		t.Fatal("azfs image mount did not exit after SIGTERM")
	}
	if isMounted(t, kdir) {
		t.Error("the kernel mount is still there after SIGTERM")
	}
	if out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME").Output(); dev == "" || strings.Contains(string(out), dev+"\n") {
		t.Errorf("loop device %q still attached after SIGTERM (losetup --list: %s)", dev, out)
	}
}

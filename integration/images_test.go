package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

package loopmount_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/loopmount"
	"github.com/azfs/azfs/internal/loopdev/loopdevtest"
)

// TestMount mounts an ext4 image made by mkfs.ext4 through a read-only loop
// device and compares it with its source; unmounting detaches the device.
func TestMount(t *testing.T) {
	loopdevtest.RequireRoot(t)
	dir := t.TempDir()
	src, img, mnt := filepath.Join(dir, "src"), filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	imagetest.Source(t, src, false, 20)
	imagetest.Ext4(t, img, src, 24)
	os.Mkdir(mnt, 0o755)
	m, err := loopmount.Mount(context.Background(), img, mnt)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "ext4" {
		t.Errorf("type %q, want ext4", m.Type)
	}
	imagetest.CompareTree(t, src, imagetest.NewDir(mnt), imagetest.Compare{Modes: true, Owners: true, MtimeGranularity: 1e9})
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "hello.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still mounted after Unmount: %v", err)
	}
}

// TestVolume picks the file to mount beside an image as an azfs mount lays
// it out, and refuses a partitioned disk without a partition number and a
// locked LUKS volume.
func TestVolume(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	imagetest.Source(t, src, true, 0)
	p1 := filepath.Join(dir, "p1")
	imagetest.FAT(t, p1, src, 8, 0)
	disk := filepath.Join(dir, "disk.img")
	imagetest.GPT(t, disk, []imagetest.Partition{{Content: p1}})
	// What a mount shows: disk.img.contents/p1.
	os.Mkdir(disk+".contents", 0o755)
	os.Link(p1, disk+".contents/p1")
	if _, err := loopmount.Volume(disk, 0); !errors.Is(err, loopmount.ErrNotMountable) {
		t.Fatalf("a partitioned disk without a partition: %v", err)
	}
	if got, err := loopmount.Volume(disk, 1); err != nil || got != disk+".contents/p1" {
		t.Fatalf("partition 1: %q, %v", got, err)
	}
	if _, err := loopmount.Volume(disk, 2); !errors.Is(err, loopmount.ErrNoPartition) {
		t.Fatalf("partition 2: %v", err)
	}
	vol := filepath.Join(dir, "vol")
	imagetest.Run(t, "", "truncate", "-s", "12M", vol)
	imagetest.LUKS(t, vol, imagetest.LUKSOptions{PBKDF: "pbkdf2"})
	if _, err := loopmount.Volume(vol, 0); !errors.Is(err, loopmount.ErrNotMountable) {
		t.Fatalf("a locked LUKS volume: %v", err)
	}
	os.Mkdir(vol+".contents", 0o755)
	os.WriteFile(vol+".contents/decrypted", []byte("x"), 0o400)
	if got, err := loopmount.Volume(vol, 0); err != nil || got != vol+".contents/decrypted" {
		t.Fatalf("an unlocked LUKS volume: %q, %v", got, err)
	}
}

package diskimage_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/imagetest"
)

// TestDetect tells apart what the real tools make from the first bytes.
func TestDetect(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	path := func(name string) string { return filepath.Join(dir, name) }

	imagetest.Ext4(t, path("ext4"), src, 16)
	imagetest.FAT(t, path("fat16"), src, 16, 0)
	imagetest.FAT(t, path("fat32"), src, 64, 32)
	imagetest.Run(t, "", "truncate", "-s", "12M", path("luks"))
	imagetest.LUKS(t, path("luks"), imagetest.LUKSOptions{PBKDF: "pbkdf2"})
	imagetest.Run(t, "", "truncate", "-s", "8M", path("gpt"))
	imagetest.Run(t, "label: gpt\nsize=1MiB\n", "sfdisk", "-q", path("gpt"))
	imagetest.Run(t, "", "truncate", "-s", "8M", path("mbr"))
	imagetest.Run(t, "label: dos\nsize=1MiB, type=83\n", "sfdisk", "-q", path("mbr"))
	random := make([]byte, diskimage.HeadSize)
	rand.Read(random)
	os.WriteFile(path("random"), random, 0o644)
	os.WriteFile(path("short"), []byte("hi"), 0o644)

	for name, want := range map[string]diskimage.Kind{
		"ext4": diskimage.Ext4, "fat16": diskimage.FAT, "fat32": diskimage.FAT, "luks": diskimage.LUKS,
		"gpt": diskimage.PartitionTable, "mbr": diskimage.PartitionTable, "random": diskimage.Unknown, "short": diskimage.Unknown,
	} {
		b, err := os.ReadFile(path(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := diskimage.Detect(b[:min(len(b), diskimage.HeadSize)]); got != want {
			t.Errorf("%s: detected %v, want %v", name, got, want)
		}
	}
}

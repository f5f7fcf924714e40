package vhd_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/azfs/azfs/internal/vhd"
)

// The footers in testdata are the last 512 bytes of VHDs qemu-img made of a
// 10 MiB raw image (qemu-img convert -O vpc, with -o subformat=fixed and
// without): qemu rounds the disk up to a CHS geometry, 10,514,432 bytes.
const qemuDiskSize = 10514432

func footer(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFooterOfQemu(t *testing.T) {
	for name, want := range map[string]vhd.DiskType{"qemu-fixed-footer.bin": vhd.Fixed, "qemu-dynamic-footer.bin": vhd.Dynamic} {
		f, err := vhd.ParseFooter(footer(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Type != want || f.DiskSize != qemuDiskSize || f.Creator != "qemu" {
			t.Errorf("%s: %+v, want a %s disk of %d bytes made by qemu", name, f, want, qemuDiskSize)
		}
	}
}

func TestParseFooterRefuses(t *testing.T) {
	good := footer(t, "qemu-fixed-footer.bin")
	flipped := bytes.Clone(good)
	flipped[50] ^= 1 // the disk size: the checksum no longer matches
	version := bytes.Clone(good)
	version[12] = 2
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, vhd.ErrNotVHD},
		{"short", good[:511], vhd.ErrNotVHD},
		{"zeros", make([]byte, 512), vhd.ErrNotVHD},
		{"flipped bit", flipped, vhd.ErrFormat},
		{"version 2", version, vhd.ErrFormat},
	} {
		if _, err := vhd.ParseFooter(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// image writes a sparse file of size bytes ending with the footer name.
func image(t *testing.T, name string, size int64) *os.File {
	t.Helper()
	f, err := os.Create(t.TempDir() + "/disk.vhd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteAt(footer(t, name), size-vhd.FooterSize); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadFixed(t *testing.T) {
	f, err := vhd.ReadFixed(image(t, "qemu-fixed-footer.bin", qemuDiskSize+512), qemuDiskSize+512)
	if err != nil || f.DiskSize != qemuDiskSize {
		t.Fatalf("ReadFixed = %+v, %v", f, err)
	}
	if _, err := vhd.ReadFixed(image(t, "qemu-fixed-footer.bin", qemuDiskSize+1024), qemuDiskSize+1024); !errors.Is(err, vhd.ErrNotFixed) {
		t.Errorf("footer of a smaller disk: err %v, want ErrNotFixed", err)
	}
	if _, err := vhd.ReadFixed(image(t, "qemu-dynamic-footer.bin", 4096), 4096); !errors.Is(err, vhd.ErrNotFixed) {
		t.Errorf("dynamic VHD: err %v, want ErrNotFixed", err)
	}
	if _, err := vhd.ReadFixed(bytes.NewReader(nil), 100); !errors.Is(err, vhd.ErrNotVHD) {
		t.Errorf("100-byte file: err %v, want ErrNotVHD", err)
	}
}

func FuzzParseFooter(f *testing.F) {
	f.Add(footer(f, "qemu-fixed-footer.bin"))
	f.Add(footer(f, "qemu-dynamic-footer.bin"))
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := vhd.ParseFooter(b)
		if err != nil {
			if !errors.Is(err, vhd.ErrNotVHD) && !errors.Is(err, vhd.ErrFormat) {
				t.Fatalf("ParseFooter: %v wraps neither ErrNotVHD nor ErrFormat", err)
			}
			return
		}
		if len(b) != vhd.FooterSize || ft.Type < vhd.Fixed || ft.Type > vhd.Differencing {
			t.Fatalf("ParseFooter accepted %d bytes as a %s disk", len(b), ft.Type)
		}
	})
}

package partition_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/partition"
)

// disk makes a 16 MiB disk image partitioned by sfdisk with script.
func disk(t *testing.T, script string) (*os.File, int64) {
	return sizedDisk(t, script, 16<<20)
}

// sizedDisk makes a disk image of size bytes partitioned by sfdisk with
// script.
func sizedDisk(t *testing.T, script string, size int64) (*os.File, int64) {
	t.Helper()
	imagetest.Require(t, "sfdisk")
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	imagetest.Run(t, script, "sfdisk", "-q", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, size
}

func TestReadGPT(t *testing.T) {
	f, size := disk(t, "label: gpt\nsize=4MiB, name=\"root fs\"\nsize=2MiB, type=uefi, name=\"EFI\"\nsize=1MiB\n")
	tab, err := partition.Read(f, size)
	if err != nil {
		t.Fatal(err)
	}
	want := []partition.Partition{
		{Number: 1, Start: 1 << 20, Size: 4 << 20, Name: "root fs", Type: "0fc63daf-8483-4772-8e79-3d69d8477de4"},
		{Number: 2, Start: 5 << 20, Size: 2 << 20, Name: "EFI", Type: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"},
		{Number: 3, Start: 7 << 20, Size: 1 << 20, Type: "0fc63daf-8483-4772-8e79-3d69d8477de4"},
	}
	if tab.Scheme != "gpt" || len(tab.Partitions) != len(want) {
		t.Fatalf("%s table with %+v", tab.Scheme, tab.Partitions)
	}
	for i, p := range tab.Partitions {
		if p != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i+1, p, want[i])
		}
	}
}

func TestReadMBR(t *testing.T) {
	f, size := disk(t, "label: dos\nsize=4MiB, type=83\nsize=2MiB, type=c\n")
	head := make([]byte, 512)
	f.ReadAt(head, 0)
	if !partition.IsMBR(head) || partition.IsGPT(head) {
		t.Fatal("an MBR disk is not recognised as MBR")
	}
	tab, err := partition.Read(f, size)
	if err != nil {
		t.Fatal(err)
	}
	want := []partition.Partition{
		{Number: 1, Start: 1 << 20, Size: 4 << 20, Type: "83"},
		{Number: 2, Start: 5 << 20, Size: 2 << 20, Type: "0c"},
	}
	if tab.Scheme != "mbr" || len(tab.Partitions) != len(want) {
		t.Fatalf("%s table with %+v", tab.Scheme, tab.Partitions)
	}
	for i, p := range tab.Partitions {
		if p != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i+1, p, want[i])
		}
	}
}

// TestReadMBRLogical: the logical partitions of an extended partition are
// listed from p5 on, where sfdisk -d says they are; the extended partition
// itself is not.
func TestReadMBRLogical(t *testing.T) {
	f, size := sizedDisk(t, `label: dos
size=4MiB, type=83
size=20MiB, type=5
size=2MiB, type=83
size=1MiB, type=83
size=3MiB, type=83
size=2MiB, type=c
size=1MiB, type=82
`, 32<<20)
	tab, err := partition.Read(f, size)
	if err != nil {
		t.Fatal(err)
	}
	var want []partition.Partition
	for _, line := range strings.Split(imagetest.Run(t, "", "sfdisk", "-d", f.Name()), "\n") {
		var n int
		var start, sectors int64
		var typ string
		if _, err := fmt.Sscanf(line, f.Name()+"%d : start= %d, size= %d, type=%s", &n, &start, &sectors, &typ); err != nil || typ == "5" {
			continue
		}
		want = append(want, partition.Partition{Number: n, Start: start * 512, Size: sectors * 512, Type: fmt.Sprintf("%02s", typ)})
	}
	if len(want) != 6 || want[3].Number != 5 || want[5].Number != 7 {
		t.Fatalf("sfdisk -d lists %+v, want 4 primaries (one extended) and 3 logicals", want)
	}
	if tab.Scheme != "mbr" || !slices.Equal(tab.Partitions, want) {
		t.Fatalf("%s table with\n%+v, want\n%+v", tab.Scheme, tab.Partitions, want)
	}
}

// TestReadMBRLogicalRefuses: an EBR chain that leaves its extended
// partition, or loops, is malformed.
func TestReadMBRLogicalRefuses(t *testing.T) {
	f, size := sizedDisk(t, "label: dos\ntype=5\nsize=1MiB\nsize=1MiB\n", 8<<20)
	img := make([]byte, size)
	if _, err := f.ReadAt(img, 0); err != nil {
		t.Fatal(err)
	}
	ebr := int64(binary.LittleEndian.Uint32(img[446+8:])) * 512 // the first EBR, at the extended partition's start
	link := img[ebr+446+16:][:16]                               // its link to the second EBR
	for name, rel := range map[string]uint32{"a link beyond the extended partition": 1 << 30, "a loop": 0} {
		bad := slices.Clone(img)
		binary.LittleEndian.PutUint32(bad[ebr+446+16+8:], rel)
		if link[4] != 5 {
			t.Fatalf("the first EBR's second entry has type %#x, want a link (5)", link[4])
		}
		if _, err := partition.Read(bytes.NewReader(bad), size); !errors.Is(err, partition.ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

package partition_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/partition"
)

// disk makes a 16 MiB disk image partitioned by sfdisk with script.
func disk(t *testing.T, script string) (*os.File, int64) {
	t.Helper()
	imagetest.Require(t, "sfdisk")
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 16<<20); err != nil {
		t.Fatal(err)
	}
	imagetest.Run(t, script, "sfdisk", "-q", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, 16 << 20
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

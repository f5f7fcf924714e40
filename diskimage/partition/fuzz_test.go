package partition_test

import (
	"errors"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/partition"
)

// FuzzRead reads arbitrary bytes as a partitioned disk (b followed by
// zeros up to size bytes): Read fails with ErrFormat or returns partitions
// that lie within the disk; it never panics or loops. The seeds in
// testdata are tables sfdisk wrote (GPT, MBR, and an MBR whose extended
// partition holds three logical partitions, laid out in sectors so that
// its chain of EBRs fits in the seed's first 32 KiB).
func FuzzRead(f *testing.F) {
	f.Add([]byte{}, int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		tab, err := partition.Read(imagetest.Padded{B: b, Len: size}, size)
		if err != nil {
			if !errors.Is(err, partition.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		for _, p := range tab.Partitions {
			if p.Start < 0 || p.Size < 0 || p.Start+p.Size > size {
				t.Fatalf("partition %d (%d bytes at %d) beyond the disk's %d bytes", p.Number, p.Size, p.Start, size)
			}
		}
	})
}

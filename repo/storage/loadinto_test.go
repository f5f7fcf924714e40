package storage_test

import (
	"context"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestLoadIntoReadsIntoTheCallersBuffer: through Count and Sub, a local
// directory reads a range into the room of the caller's buffer (no new
// buffer; the mount recycles its buffers so), counted as a load; a storage
// that cannot returns Load's bytes, appended to a non-empty dst.
func TestLoadIntoReadsIntoTheCallersBuffer(t *testing.T) {
	ctx := context.Background()
	dir, err := local.Create(t.TempDir() + "/vault")
	if err != nil {
		t.Fatal(err)
	}
	var counts storage.Counts
	st := storage.Sub(storage.Count(dir, &counts), "machines/a/")
	if err := st.Save(ctx, "data/obj", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	got, err := storage.LoadInto(ctx, st, buf, "data/obj", 2, 5)
	if err != nil || string(got) != "23456" {
		t.Fatalf("LoadInto = %q, %v; want 23456", got, err)
	}
	if &got[:1][0] != &buf[:1][0] {
		t.Error("LoadInto did not read into the caller's buffer")
	}
	if tl := counts.Tally(); tl.Loads != 1 || tl.BytesDown != 5 {
		t.Errorf("counted %d loads, %d bytes; want 1, 5", tl.Loads, tl.BytesDown)
	}

	m := mem.New()
	if err := m.Save(ctx, "obj", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got, err := storage.LoadInto(ctx, m, []byte("x"), "obj", 0, -1); err != nil || string(got) != "xabc" {
		t.Errorf("LoadInto of a plain storage = %q, %v; want xabc", got, err)
	}
}

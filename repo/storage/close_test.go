package storage_test

import (
	"context"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// closer is a storage that notes being closed.
type closer struct {
	storage.Storage
	closed int
}

func (c *closer) Close() error { c.closed++; return nil }

// TestClosePassesThroughWrappers: Close reaches the storage under Count
// and Sub, and is a no-op for one with nothing to close.
func TestClosePassesThroughWrappers(t *testing.T) {
	inner := &closer{Storage: mem.New()}
	var counts storage.Counts
	st := storage.Sub(storage.Count(inner, &counts), "machines/a/")
	if err := st.Save(context.Background(), "config", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := storage.Close(st); err != nil || inner.closed != 1 {
		t.Errorf("Close = %v, storage closed %d times; want nil, 1", err, inner.closed)
	}
	if err := storage.Close(mem.New()); err != nil {
		t.Errorf("Close of a storage holding nothing = %v", err)
	}
}

package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

func TestCountConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.Count(mem.New(), new(storage.Counts))
	})
}

func TestCountTallies(t *testing.T) {
	ctx := context.Background()
	var c storage.Counts
	st := storage.Count(mem.New(), &c)
	if err := st.Save(ctx, "a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, "a", []byte("again")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second save: %v", err)
	}
	if b, err := st.Load(ctx, "a", 1, 3); err != nil || string(b) != "ell" {
		t.Fatalf("load: %q, %v", b, err)
	}
	if _, err := st.Load(ctx, "missing", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("load missing: %v", err)
	}
	if _, err := st.Stat(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := st.List(ctx, "", func(storage.Info) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Tally().String(), "7 requests (2 saves, 2 loads, 1 stats, 1 lists, 1 deletes), 10 bytes up, 3 bytes down"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	for _, x := range []struct {
		name      string
		got, want uint64
	}{
		{"saves", c.Saves.Load(), 2}, {"loads", c.Loads.Load(), 2}, {"stats", c.Stats.Load(), 1},
		{"lists", c.Lists.Load(), 1}, {"deletes", c.Deletes.Load(), 1}, {"requests", c.Requests(), 7},
		{"bytes up", c.BytesUp.Load(), 10}, {"bytes down", c.BytesDown.Load(), 3},
	} {
		if x.got != x.want {
			t.Errorf("%s = %d, want %d", x.name, x.got, x.want)
		}
	}
}

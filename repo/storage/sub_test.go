package storage_test

import (
	"context"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

func TestSubConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.Sub(mem.New(), "machines/a/")
	})
}

func TestSubIsolation(t *testing.T) {
	ctx := context.Background()
	base := mem.New()
	a, b := storage.Sub(base, "machines/a/"), storage.Sub(base, "machines/b/")
	if err := a.Save(ctx, "config", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, "config", []byte("b")); err != nil {
		t.Fatalf("the same name in another sub-storage: %v", err)
	}
	if got, err := base.Load(ctx, "machines/a/config", 0, -1); err != nil || string(got) != "a" {
		t.Errorf("base sees %q, %v under machines/a/config", got, err)
	}
	var names []string
	if err := a.List(ctx, "", func(fi storage.Info) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "config" {
		t.Errorf("List of a = %v, want [config]", names)
	}
}

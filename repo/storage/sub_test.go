package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// advising wraps every error of its storage with advice, as the CLI's
// wrapper of refused requests does.
type advising struct{ storage.Storage }

func (a advising) Save(ctx context.Context, name string, data []byte) error {
	if err := a.Storage.Save(ctx, name, data); err != nil {
		return fmt.Errorf("%w: advice", err)
	}
	return nil
}

// TestSubKeepsWrappers: an error that wraps a storage error keeps what
// wraps it through Sub; a bare one names the object as the caller did.
func TestSubKeepsWrappers(t *testing.T) {
	ctx := context.Background()
	base := mem.New()
	if err := base.Save(ctx, "machines/a/config", nil); err != nil {
		t.Fatal(err)
	}
	err := storage.Sub(advising{base}, "machines/a/").Save(ctx, "config", nil)
	if !errors.Is(err, storage.ErrExists) || !strings.HasSuffix(err.Error(), ": advice") {
		t.Errorf("Save through Sub of a wrapped error: %v, want ErrExists with the advice", err)
	}
	var serr *storage.Error
	err = storage.Sub(base, "machines/a/").Save(ctx, "config", nil)
	if !errors.As(err, &serr) || serr.Name != "config" {
		t.Errorf("Save through Sub: %v, want a storage error naming config", err)
	}
}

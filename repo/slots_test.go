package repo_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// noDelete is a storage whose credentials may not delete, like a blob
// vault opened with a backup SAS token.
type noDelete struct{ storage.Storage }

func (noDelete) Delete(_ context.Context, name string) error {
	return &storage.Error{Op: "delete", Name: name, Err: storage.ErrPermission}
}

// TestReplacePassphraseSlots: the new passphrase opens the key set and no
// earlier one does; on a storage that may not delete, nothing changes.
func TestReplacePassphraseSlots(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	before := names(t, st, "keys/")
	const newPass keys.Passphrase = "a new passphrase, long enough"

	err := repo.ReplacePassphraseSlots(ctx, noDelete{st}, v.Keys(), newPass, cheapKDF)
	if !errors.Is(err, storage.ErrPermission) {
		t.Fatalf("ReplacePassphraseSlots on a storage that may not delete: %v, want ErrPermission", err)
	}
	if got := names(t, st, "keys/"); !slices.Equal(got, before) {
		t.Errorf("a refused replacement changed the slots: %q, want %q", got, before)
	}
	if err := repo.CanReplaceSlots(ctx, st); err != nil {
		t.Errorf("CanReplaceSlots on a storage that may delete: %v", err)
	}

	if err := repo.ReplacePassphraseSlots(ctx, st, v.Keys(), newPass, cheapKDF); err != nil {
		t.Fatalf("ReplacePassphraseSlots: %v", err)
	}
	if _, err := repo.Unlock(ctx, st, testPass); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("Unlock with the old passphrase: %v, want ErrWrongPassphrase", err)
	}
	if ks, err := repo.Unlock(ctx, st, newPass); err != nil || *ks != *v.Keys() {
		t.Errorf("Unlock with the new passphrase: %v", err)
	}
	if got := names(t, st, "keys/"); len(got) != 1 || slices.Contains(before, got[0]) {
		t.Errorf("slots after the replacement: %q, want one new slot", got)
	}
}

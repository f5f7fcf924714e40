package access

import (
	"context"
	"errors"
	"testing"

	"github.com/azfs/azfs/repo/storage"
)

// TestRestrict is finding 11 of issue 11: restore credentials let a client
// write (retention tombstones among others) to a vault in a directory. The
// storage they restrict refuses every save and delete before the storage
// sees it, and reads as before; backup credentials are not restricted.
func TestRestrict(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	restore := issue(t, v, AccessRestore)
	st := restore.Restrict(v.st)
	name := "machines/m/tombstones/" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	if err := st.Save(ctx, name, []byte("forget everything")); !errors.Is(err, ErrAccess) || !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Save through restore credentials: %v, want ErrAccess and storage.ErrPermission", err)
	}
	if _, err := v.st.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused save reached the storage: %v", err)
	}
	if err := st.Delete(ctx, "config"); !errors.Is(err, ErrAccess) {
		t.Errorf("Delete through restore credentials: %v, want ErrAccess", err)
	}
	if _, err := st.Load(ctx, "config", 0, -1); err != nil {
		t.Errorf("Load through restore credentials: %v", err)
	}
	if _, err := Verify(ctx, st, restore, AccessRestore, t0); err != nil {
		t.Errorf("Verify through the restricted storage: %v", err)
	}
	backup := issue(t, v, AccessBackup)
	if got := backup.Restrict(v.st); got != storage.Storage(v.st) {
		t.Errorf("backup credentials restricted the storage to %T", got)
	}
}

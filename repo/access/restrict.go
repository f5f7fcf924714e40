package access

import (
	"context"
	"fmt"

	"github.com/azfs/azfs/repo/storage"
)

// Restrict returns st as credentials c allow using it: unchanged for
// backup credentials, and for restore credentials a storage whose Save and
// Delete fail with an error wrapping ErrAccess and storage.ErrPermission
// (as the storage's own refusal would) before asking st, so that
// nothing opened with restore credentials writes to the vault: no point,
// no retention tombstone, no record. A directory cannot refuse a client
// anything; this is that refusal, made by the client. A blob vault's
// storage refuses the same writes to the restore credentials' SAS token
// (read and list only).
func (c *Credentials) Restrict(st storage.Storage) storage.Storage {
	if c.Access == AccessBackup {
		return st
	}
	return readOnly{Storage: st, access: c.Access}
}

// readOnly is a storage that refuses writes to credentials of access.
type readOnly struct {
	storage.Storage
	access Access
}

func (r readOnly) refuse(op, name string) error {
	return &storage.Error{Op: op, Name: name, Err: fmt.Errorf("%w: %s credentials allow no writes to the vault (%w)", ErrAccess, r.access, storage.ErrPermission)}
}

func (r readOnly) Save(_ context.Context, name string, _ []byte) error {
	return r.refuse("save", name)
}

func (r readOnly) Delete(_ context.Context, name string) error {
	return r.refuse("delete", name)
}

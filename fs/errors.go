package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
)

// errChunkSize reports a chunk whose length differs from its extent's.
var errChunkSize = errkind.New(errkind.Damaged, "chunk length does not match its extent")

// errnos is the one table from an error's kind to the errno a file system
// request returns when loading its parts or chunks failed. Every kind it
// does not name, damaged data and unreachable storage alike, is EIO: to a
// reader of a recovery point, a part that cannot be had is an I/O error, not
// a missing or forbidden file.
var errnos = map[errkind.Kind]syscall.Errno{
	errkind.Canceled: syscall.EINTR,
	errkind.Timeout:  syscall.ETIMEDOUT,
}

// errno maps an error from loading parts or chunks to the errno a file
// system request returns, by its kind (errnos).
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := errnos[errkind.Of(err)]; ok {
		return e
	}
	return syscall.EIO
}

// isDamage reports whether err means stored data is damaged rather than
// unreachable: whether it is of kind errkind.Damaged.
func isDamage(err error) bool {
	return errors.Is(err, errkind.Damaged)
}

// fail logs err, the failure to load object id (a chunk or a tree part) for
// the node at path, and returns the errno for it. Damage is logged once per
// object ID; other failures every time, except a caller giving up.
func (v *vault) fail(err error, kind string, id keys.ID, path string) syscall.Errno {
	e := errno(err)
	switch {
	case isDamage(err):
		if _, seen := v.damaged.LoadOrStore(id, struct{}{}); !seen {
			v.log.Error("damaged "+kind, "id", id.String(), "path", path, "err", err)
		}
	case !errors.Is(err, context.Canceled):
		v.log.Error("load "+kind+" failed", "id", id.String(), "path", path, "err", err)
	}
	return e
}

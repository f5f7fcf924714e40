package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// errChunkSize reports a chunk whose length differs from its extent's.
var errChunkSize = errors.New("chunk length does not match its extent")

// errno maps an error from loading parts or chunks to the errno a file
// system request returns. It is the one table of that mapping.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	default:
		// Damaged data (keys.ErrAuth, repo.ErrDamaged, tree.ErrFormat, errChunkSize,
		// errBadRoot) and every other Source failure.
		return syscall.EIO
	}
}

// isDamage reports whether err means stored data is damaged rather than
// unreachable.
func isDamage(err error) bool {
	return errors.Is(err, keys.ErrAuth) || errors.Is(err, repo.ErrDamaged) || errors.Is(err, tree.ErrFormat) ||
		errors.Is(err, errChunkSize) || errors.Is(err, errBadRoot)
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

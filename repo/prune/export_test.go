package prune

import (
	"context"
	"time"

	"github.com/azfs/azfs/repo"
)

// RunAt is Run with the test's clock.
func RunAt(ctx context.Context, v *repo.Vault, opts Options, now func() time.Time) (*Result, error) {
	return run(ctx, v, opts, now)
}

// Names of the objects prune adds to an area.
const (
	MarksPrefix = marksPrefix
	KeepsPrefix = keepsPrefix
	LockName    = lockName
)

// EncodeKeep is encodeKeep.
var EncodeKeep = encodeKeep

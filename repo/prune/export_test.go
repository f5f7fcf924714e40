package prune

import (
	"context"
	"time"

	"github.com/azfs/azfs/repo"
)

// RunAt is Run with the test's clock.
func RunAt(ctx context.Context, v *repo.Area, opts Options, now func() time.Time) (*Result, error) {
	return run(ctx, v, opts, now)
}

// LockName is the name of prune's lock object in an area.
const LockName = lockName

package prune

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/storage"
)

// RunWithPolicy prunes machine area v under state, what became of its
// points (package policy): it purges the forgotten points whose soft-delete
// window has passed at now (with opts.Purge's), runs the prune, and only
// then deletes the tombstones and owner records that name nothing but
// purged points (a record deleted first would bring its points back). A
// dry run deletes nothing. Points and records state could not read are
// never purged (policy.State.Purgeable).
func RunWithPolicy(ctx context.Context, v *repo.Area, state *policy.State, opts Options, now time.Time) (*Result, error) {
	purge, err := state.Purgeable(ctx, now)
	if err != nil {
		return nil, err
	}
	for _, p := range purge.Points {
		opts.Purge = append(opts.Purge, p.ID)
	}
	res, err := Run(ctx, v, opts)
	if err != nil || opts.DryRun {
		return res, err
	}
	for _, name := range purge.Records {
		if err := v.Storage().Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return res, fmt.Errorf("delete %s after purging its points: %w", name, err)
		}
	}
	return res, nil
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/prune"
)

// Prune prunes the area of machine name in the vault root o has open with
// the owner's keys: the area opened with the keys that read its points
// (open.Opened.AreaAsOwner, with t's private key if it gives one), under
// its policy state (prune.RunWithPolicy), beside this host's backups of it
// (opts.Backups is the machine's backup lock here). It refuses an area
// that has lost points this host saw: the packs of points a storage hides
// would look unneeded. Damaged points and tombstones are warned of, and
// neither purged nor pruned.
func Prune(ctx context.Context, o *open.Opened, t open.Target, owner *keys.OwnerKeys, name string, opts prune.Options, warn func(msg string)) (*prune.Result, error) {
	v, err := o.AreaAsOwner(ctx, t, owner, name)
	if err != nil {
		return nil, err
	}
	dir, err := o.StateDirOf(name)
	if err != nil {
		return nil, err
	}
	opts.Backups = HostBackups{Dir: dir, Prune: Holder{PID: os.Getpid(), What: "azfs prune --no-backups-running"}}
	state, err := policy.Load(ctx, policy.Machine{Root: o.VaultRoot(), Area: v, Host: hoststate.Hostname()})
	if err != nil && !errors.Is(err, repo.ErrDamaged) {
		return nil, err
	}
	if err != nil {
		// Damaged points and tombstones are never purged, nor are the
		// records that name them; prune itself refuses unreadable points.
		warn(err.Error())
	}
	if err := o.NoticeRollback(name, state.All(), warn); err != nil {
		return nil, fmt.Errorf("%w; nothing pruned", err)
	}
	return prune.RunWithPolicy(ctx, v, state, opts, time.Now())
}

package prune

import (
	"fmt"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/repo/guard"
)

// The safety margin of a prune (format.md §13.4).
const (
	// MinMargin is the smallest safety margin that protects backups with
	// the guard's default tolerance: twice it.
	MinMargin = 2 * guard.DefaultTolerance
	// DefaultMargin is the safety margin of azfs prune.
	DefaultMargin = time.Hour
)

// ErrBackupRunning reports a backup of the machine running on this host:
// a prune refuses to run beside it, whatever its options.
var ErrBackupRunning = errkind.New(errkind.Busy, "a backup of the machine is running on this host")

// HostBackups is this host's lock of the machine's backups, which every
// backup of the machine on this host holds while it runs (package agent's
// backup lock, agent.HostBackups).
type HostBackups interface {
	// Running describes the backup that holds the lock; "" when none does.
	Running() (string, error)
	// Hold takes the lock: backups of the machine on this host refuse or
	// wait until release is called. When a backup holds it, Hold returns
	// that backup's description and no release.
	Hold() (running string, release func() error, err error)
}

// excludeBackups refuses, with an error wrapping ErrBackupRunning, while a
// backup of the machine runs on this host. A prune whose margin is too
// short to protect running backups (the caller asserted that none runs)
// also keeps backups on this host from starting until release is called;
// a longer margin lets them start, the guard protects them.
func excludeBackups(b HostBackups, margin time.Duration, dryRun bool) (release func() error, err error) {
	release = func() error { return nil }
	var running string
	if margin < MinMargin && !dryRun {
		var held func() error
		running, held, err = b.Hold()
		if held != nil {
			release = held
		}
	} else {
		running, err = b.Running()
	}
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if running != "" {
		return nil, fmt.Errorf("%w: %s; prune does not run beside it, whatever its options: run it when the backup has ended", ErrBackupRunning, running)
	}
	return release, nil
}

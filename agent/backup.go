package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage/location"
)

// This file: one backup of this host, on demand ('azfs backup') or
// scheduled (the loop's Machine.Backup), under the backup lock.

// MemoryLimit is a backup's soft heap limit (SetMemoryLimit).
const MemoryLimit = 192 << 20

// SetMemoryLimit sets the process's soft heap limit to MemoryLimit,
// unless GOMEMLIMIT sets one.
func SetMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The pipeline's memory is mostly short-lived, pointer-free pack and
		// chunk buffers: a soft limit has the collector reclaim them before
		// the heap doubles, at little CPU cost.
		debug.SetMemoryLimit(MemoryLimit)
	}
}

// blobUploads is the default number of concurrent pack uploads to a blob
// vault: enough to hide a network round trip behind the others.
const blobUploads = 8

// LockBackup takes the lock that keeps two backups of the machine o has
// open apart on this host, recording h as its holder: at once, or with
// wait after the running one (calling waiting if it has to wait). A
// backup running, without wait, is an error naming it.
func LockBackup(ctx context.Context, o *open.Opened, h Holder, wait bool, waiting func(Holder)) (*Lock, error) {
	dir, err := o.StateDir()
	if err != nil {
		return nil, err
	}
	var lock *Lock
	if wait {
		lock, err = WaitLock(ctx, dir.BackupLock(), h, time.Second, waiting)
	} else {
		lock, err = TryLock(dir.BackupLock(), h)
	}
	var locked *LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("a backup of machine %s is running: %s; wait for it to end, or pass --wait", o.Machine, locked.Holder)
	}
	return lock, err
}

// Request is one backup: what to back up and how (backup.Options: paths
// or a stream, set, tags, selection, uploads, progress and the per-file
// callbacks), and where what the run reports goes.
type Request struct {
	backup.Options
	// Warn receives what is reported and left out: a file cache that does
	// not open, damaged points, a rolled-back vault.
	Warn func(msg string)
	// Tell, when set, receives what the run says besides: the machine
	// moved to the vault's new certificate.
	Tell func(msg string)
}

// Backup backs up the machine o has open, whose backup lock the caller
// holds (LockBackup), and records the point it commits in this host's
// state. It decides what the request leaves to this host: the certificate
// session (open.Opened.StartBackupSession), the file cache of the
// machine's key epoch, azfs's own state left out (the config directory,
// the keyring file, the cache directory, a vault on local disk), the
// machine and host names, the uploads for the vault's kind; and before the
// run, a rolled-back vault is reported (when the machine reads its
// points). It returns the point committed, if any, with the run's error
// (backup.Run).
func Backup(ctx context.Context, o *open.Opened, req Request) (*repo.Point, error) {
	moved, err := o.StartBackupSession(ctx)
	if err != nil {
		return nil, err
	}
	if moved != nil && req.Tell != nil {
		req.Tell(fmt.Sprintf("backing up to the vault's certificate %s from now on: new points open with its private key", moved.Thumbprint()))
	}
	cacheDir, err := keyring.CacheDir()
	if err != nil {
		return nil, err
	}
	// A key epoch of its own (certificate mode) gets a cache of its own:
	// chunk lists of one epoch must not be reused in another.
	cacheName := "files-" + o.Machine
	if c := o.Area.Keys().Certificate; c != "" {
		cacheName += "-" + c[:16]
	}
	files, err := filecache.Open(filepath.Join(cacheDir, o.Area.ID(), cacheName))
	if err != nil {
		req.Warn(fmt.Sprintf("%v; every file will be read", err))
		files = nil
	}
	var closeFiles func()
	if files != nil {
		// backup.Run closes it as soon as it is done with it (FilesDone),
		// beside the end of the run; here if Run does not.
		closeFiles = sync.OnceFunc(func() { _ = files.Close() })
		defer closeFiles()
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		return nil, err
	}
	opts := req.Options
	// azfs's own state is never backed up: the config dir (keyring, this
	// host's state) and the keyring file itself (another hard link of it
	// too), the cache, and a vault on local disk.
	opts.Exclude = []string{cacheDir, configDir, filepath.Join(configDir, keyring.FileName)}
	if location.IsLocal(o.Location) {
		opts.Exclude = append(opts.Exclude, o.Location)
	}
	opts.Machine, opts.Hostname, opts.Files, opts.FilesDone = o.Machine, hoststate.Hostname(), files, closeFiles
	if opts.Stream != nil {
		opts.Paths = nil
	}
	if opts.Uploads <= 0 {
		opts.Uploads = 2
		if location.IsBlob(o.Location) {
			opts.Uploads = blobUploads
		}
	}
	if !o.Area.Keys().WriteOnly() {
		// A rolled-back vault is reported before this run's point makes
		// it look current again (package rollback).
		if _, err := o.State(ctx, req.Warn); err != nil {
			return nil, err
		}
	}
	p, err := backup.Run(ctx, o.Area, opts)
	if p != nil {
		o.NoteCommitted(p, req.Warn)
		dir, derr := o.StateDir()
		if derr == nil {
			derr = dir.SaveLast(hoststate.Last{Point: p.ID.String(), Time: p.Time, Partial: p.Partial, Set: p.SetName})
		}
		if derr != nil {
			req.Warn("cannot record the point in this host's state: " + derr.Error())
		}
	}
	return p, err
}

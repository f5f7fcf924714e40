package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/internal/hoststate"
)

// ErrLocked reports a lock another process (or another open of the file)
// holds.
var ErrLocked = errkind.New(errkind.Busy, "locked")

// Holder says who holds a lock: written into the lock file by the holder,
// for the messages and 'azfs status' of others.
type Holder struct {
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// What names the holder: "azfs backup", "azfs agent", "scheduled backup".
	What  string   `json:"what"`
	Paths []string `json:"paths,omitempty"`
}

// String describes the holder for people: "pid 1234 (azfs backup of /etc,
// since 2026-11-22 12:00:03)".
func (h Holder) String() string {
	if h.PID == 0 {
		return "a process that did not say who it is"
	}
	s := fmt.Sprintf("pid %d (%s", h.PID, h.What)
	if len(h.Paths) > 0 {
		s += " of " + strings.Join(h.Paths, " ")
	}
	if !h.Since.IsZero() {
		s += ", since " + h.Since.Local().Format("2006-01-02 15:04:05")
	}
	return s + ")"
}

// LockedError is the error of a lock that is held; it wraps ErrLocked.
type LockedError struct {
	Path   string
	Holder Holder // zero when the holder's record could not be read
}

func (e *LockedError) Error() string { return fmt.Sprintf("%s: held by %s", e.Path, e.Holder) }

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is an exclusive lock on a file, held until Unlock or the process's
// end. It is an open-file-description lock (fcntl F_OFD_SETLK): like flock,
// it belongs to the open file, not to the process, so two opens in one
// process exclude each other too; unlike flock, whether it is held can be
// asked without taking it (Probe), so 'azfs status' never stands in the
// way of a backup that starts at that moment.
type Lock struct {
	f *os.File
}

// TryLock takes the lock file at path (created, with its directory, when
// missing) and records h in it, with Since set to now. A lock held
// elsewhere is a *LockedError.
func TryLock(path string, h Holder) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, &LockedError{Path: path, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	h.Since = time.Now()
	b, err := json.Marshal(h)
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt(b, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: write holder: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WaitLock takes the lock at path as TryLock does, trying again every poll
// while another holds it, until ctx is done. waiting, when not nil, is
// called once with the holder when the first try finds the lock held.
func WaitLock(ctx context.Context, path string, h Holder, poll time.Duration, waiting func(Holder)) (*Lock, error) {
	for first := true; ; first = false {
		l, err := TryLock(path, h)
		var locked *LockedError
		if !errors.As(err, &locked) {
			return l, err
		}
		if first && waiting != nil {
			waiting(locked.Holder)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// Unlock empties the holder record and releases the lock.
func (l *Lock) Unlock() error {
	terr := l.f.Truncate(0)
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.f.Name(), err)
	}
	if terr != nil {
		return fmt.Errorf("unlock %s: %w", l.f.Name(), terr)
	}
	return nil
}

// Probe reports whether the lock at path is held, and by whom, without
// taking it. A missing file is a lock nobody holds.
func Probe(path string) (Holder, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	defer f.Close()
	// A holder's write lock conflicts with a read lock: asking for one
	// needs only read access to the file.
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return Holder{}, false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	if lk.Type == unix.F_UNLCK {
		return Holder{}, false, nil
	}
	return readHolder(path), true, nil
}

// readHolder returns the holder recorded at path; zero when the record
// cannot be read (the holder may be writing it).
func readHolder(path string) Holder {
	var h Holder
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &h) // a torn or empty record is an unknown holder
	}
	return h
}

// HostBackups answers a prune of a machine's area from the machine's
// backup lock on this host (it implements prune.HostBackups).
type HostBackups struct {
	Dir hoststate.Dir
	// Prune is recorded in the lock while the prune holds it.
	Prune Holder
}

// Running describes the backup that holds the lock; "" when none does.
func (b HostBackups) Running() (string, error) {
	h, held, err := Probe(b.Dir.BackupLock())
	if err != nil || !held {
		return "", err
	}
	return h.String(), nil
}

// Hold takes the backup lock for the prune; when a backup holds it, it
// returns the backup's description and no release.
func (b HostBackups) Hold() (string, func() error, error) {
	l, err := TryLock(b.Dir.BackupLock(), b.Prune)
	var locked *LockedError
	if errors.As(err, &locked) {
		return locked.Holder.String(), nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	return "", l.Unlock, nil
}

package prune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/storage"
)

// Two prunes of one area must not run at once: each would supersede index
// files the other is rewriting. Only the owner prunes, and the owner's
// credentials may delete, so a plain lock object serves: prune/lock, saved
// with the never-overwrite Save, renewed every lockRenew, and taken over when
// older than lockStale (its prune died).
const (
	lockName  = "prune/lock"
	lockRenew = time.Minute
	lockStale = 10 * time.Minute
)

// ErrLocked reports another prune of the same machine running.
var ErrLocked = errkind.New(errkind.Busy, "another prune of this machine is running")

type lockBody struct {
	Host string    `json:"host"`
	PID  int       `json:"pid"`
	Run  string    `json:"run"`
	Time time.Time `json:"time"`
}

type lock struct {
	st   storage.Storage
	body lockBody
	now  func() time.Time

	mu   sync.Mutex // renewals and release
	stop chan struct{}
	done chan struct{}
}

// takeLock saves the area's prune lock, taking over a stale one, and renews
// it until release. fail is called if a renewal fails: the prune must stop.
func takeLock(ctx context.Context, st storage.Storage, host string, now func() time.Time, fail func(error)) (*lock, error) {
	run, err := guard.NewMarkID()
	if err != nil {
		return nil, err
	}
	l := &lock{st: st, now: now, body: lockBody{Host: host, PID: os.Getpid(), Run: run.String()},
		stop: make(chan struct{}), done: make(chan struct{})}
	for attempt := 0; ; attempt++ {
		err := l.save(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrExists) {
			return nil, err
		}
		if attempt > 0 {
			return nil, fmt.Errorf("%w: another prune took the lock just now", ErrLocked)
		}
		other, err := readLock(ctx, st)
		if errors.Is(err, storage.ErrNotFound) {
			continue // released meanwhile
		}
		if err == nil && now().Sub(other.Time) < lockStale {
			return nil, fmt.Errorf("%w on %s (pid %d) since %s; if it died, its lock %s expires %s after that", ErrLocked,
				other.Host, other.PID, other.Time.Local().Format(time.DateTime), lockName, lockStale)
		}
		// Stale, or not a lock azfs wrote: take it over.
		if err := st.Delete(ctx, lockName); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("remove stale prune lock: %w", err)
		}
	}
	go l.renew(ctx, fail)
	return l, nil
}

func (l *lock) save(ctx context.Context) error {
	l.body.Time = l.now().UTC()
	b, err := json.Marshal(l.body)
	if err != nil {
		return fmt.Errorf("prune lock: %w", err)
	}
	if err := l.st.Save(ctx, lockName, b); err != nil {
		return fmt.Errorf("prune lock: %w", err)
	}
	return nil
}

func readLock(ctx context.Context, st storage.Storage) (lockBody, error) {
	var b lockBody
	raw, err := st.Load(ctx, lockName, 0, 4096)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, fmt.Errorf("prune lock: %w", err)
	}
	return b, nil
}

// renew replaces the lock by a newer one every lockRenew. The owner's
// storage credentials may delete; a lock taken by another prune in the
// moment between delete and save makes this one fail.
func (l *lock) renew(ctx context.Context, fail func(error)) {
	defer close(l.done)
	t := time.NewTicker(lockRenew)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		err := l.replace(ctx)
		l.mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("renew prune lock: %w", err))
			return
		}
	}
}

func (l *lock) replace(ctx context.Context) error {
	if err := l.ours(ctx); err != nil {
		return err
	}
	if err := l.st.Delete(ctx, lockName); err != nil {
		return err
	}
	return l.save(ctx)
}

// ours fails unless the stored lock is this prune's.
func (l *lock) ours(ctx context.Context) error {
	cur, err := readLock(ctx, l.st)
	if err != nil {
		return err
	}
	if cur.Run != l.body.Run {
		return fmt.Errorf("%w: %s (pid %d) took the lock over", ErrLocked, cur.Host, cur.PID)
	}
	return nil
}

// release stops the renewals and deletes the lock if it is still ours.
func (l *lock) release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ours(ctx); err != nil {
		return err
	}
	if err := l.st.Delete(ctx, lockName); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("release prune lock: %w", err)
	}
	return nil
}

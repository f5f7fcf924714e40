package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "backup.lock")
	if _, held, err := Probe(path); err != nil || held {
		t.Fatalf("Probe of a missing lock: held %v, %v", held, err)
	}
	h := Holder{PID: os.Getpid(), What: "azfs backup", Paths: []string{"/etc"}}
	l, err := TryLock(path, h)
	if err != nil {
		t.Fatal(err)
	}
	// Another open, in this process too, is refused and told who holds it.
	_, err = TryLock(path, Holder{PID: 1, What: "scheduled backup"})
	var locked *LockedError
	if !errors.As(err, &locked) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want a *LockedError", err)
	}
	if locked.Holder.PID != h.PID || locked.Holder.What != "azfs backup" || !strings.Contains(locked.Holder.String(), "azfs backup of /etc") {
		t.Errorf("holder %+v (%s), want %+v", locked.Holder, locked.Holder, h)
	}
	got, held, err := Probe(path)
	if err != nil || !held || got.PID != h.PID {
		t.Errorf("Probe of a held lock: %+v, held %v, %v", got, held, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, held, err := Probe(path); err != nil || held {
		t.Errorf("Probe after Unlock: held %v, %v", held, err)
	}
	l2, err := TryLock(path, Holder{PID: 2, What: "scheduled backup"})
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestWaitLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.lock")
	first, err := TryLock(path, Holder{PID: 1, What: "azfs backup"})
	if err != nil {
		t.Fatal(err)
	}
	var waitedFor []Holder
	go func() {
		time.Sleep(50 * time.Millisecond)
		first.Unlock()
	}()
	second, err := WaitLock(context.Background(), path, Holder{PID: 2, What: "scheduled backup"}, 5*time.Millisecond, func(h Holder) { waitedFor = append(waitedFor, h) })
	if err != nil {
		t.Fatalf("WaitLock: %v", err)
	}
	if len(waitedFor) != 1 || waitedFor[0].PID != 1 {
		t.Errorf("waiting called with %+v, want once with pid 1", waitedFor)
	}
	if h, held, _ := Probe(path); !held || h.PID != 2 {
		t.Errorf("Probe: %+v, held %v; want pid 2", h, held)
	}

	// Cancelled while it waits.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := WaitLock(ctx, path, Holder{PID: 3}, 5*time.Millisecond, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WaitLock: %v, want context.Canceled", err)
	}
	second.Unlock()
}

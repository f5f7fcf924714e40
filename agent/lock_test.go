package agent

import (
	"context"
	"encoding/json"
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

func TestDisableEnableState(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	if _, disabled, err := d.Disabled(); err != nil || disabled {
		t.Fatalf("fresh state: disabled %v, %v", disabled, err)
	}
	t0 := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	if err := d.Disable(t0); err != nil {
		t.Fatal(err)
	}
	if err := d.Disable(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if since, disabled, err := d.Disabled(); err != nil || !disabled || !since.Equal(t0) {
		t.Errorf("after Disable: since %v, disabled %v, %v; want since %v", since, disabled, err, t0)
	}
	for range 2 {
		if err := d.Enable(); err != nil {
			t.Fatal(err)
		}
	}
	if _, disabled, err := d.Disabled(); err != nil || disabled {
		t.Errorf("after Enable: disabled %v, %v", disabled, err)
	}
}

func TestLast(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	if _, ok, err := d.LoadLast(); ok || err != nil {
		t.Fatalf("LoadLast of nothing: %v, %v", ok, err)
	}
	want := Last{Point: strings.Repeat("ab", 32), Time: time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC), Partial: true}
	if err := d.SaveLast(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.LoadLast()
	if err != nil || !ok || got.Point != want.Point || !got.Time.Equal(want.Time) || !got.Partial {
		t.Errorf("LoadLast: %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if err := os.WriteFile(d.lastFile(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.LoadLast(); ok || err == nil {
		t.Errorf("LoadLast of a torn record: %v, %v; want an error", ok, err)
	}
}

// TestLastOfSets: last.json records the last point of each backup set; a
// record written before sets reads as the last point of the set without a
// name, and an older azfs still finds the last point at the top.
func TestLastOfSets(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	at := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	old := `{"point":"` + strings.Repeat("ab", 32) + `","time":"2026-06-10T12:00:00Z"}`
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.lastFile(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	sets, err := d.LoadLastOfSets()
	if err != nil || len(sets) != 1 || sets[""].Point != strings.Repeat("ab", 32) {
		t.Fatalf("LoadLastOfSets of a record before sets: %+v, %v", sets, err)
	}
	etc := Last{Point: strings.Repeat("cd", 32), Time: at.Add(time.Hour), Set: "etc"}
	if err := d.SaveLast(etc); err != nil {
		t.Fatal(err)
	}
	sets, err = d.LoadLastOfSets()
	if err != nil || len(sets) != 2 || sets["etc"] != etc || !sets[""].Time.Equal(at) {
		t.Errorf("LoadLastOfSets: %+v, %v", sets, err)
	}
	var top struct {
		Point string `json:"point"`
	}
	b, err := os.ReadFile(d.lastFile())
	if err == nil {
		err = json.Unmarshal(b, &top)
	}
	if err != nil || top.Point != etc.Point {
		t.Errorf("the top of last.json names %q (%v), want the last point committed", top.Point, err)
	}
}

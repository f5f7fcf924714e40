// Package hoststate is this host's own state of one machine of one vault,
// kept beside the keyring in the config directory (Dir): the lock files that
// the agent and the commands share, whether automatic backups are disabled,
// the last points a backup here committed, and the newest point this host
// has seen the area show (package rollback); and what it knows of this host
// itself: its name (Hostname) and time zone (LocalZone). The agent, the
// commands and cmd/internal/cli use it; it holds no vault keys.
package hoststate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/azfs/azfs/repo/rollback"
)

// Dir is the local state, on this host, of one machine of one vault:
// <config dir>/state/<vault id>/<machine>/. It holds
//
//	backup.lock  held while a backup of the machine runs here ('azfs backup', the agent's runs)
//	agent.lock   held by the machine's agent for as long as it runs
//	disabled     present while automatic backups are disabled ('azfs schedule disable')
//	last.json    the last point a backup on this host committed, and the last of each backup set
//	seen.json    the newest point this host has seen the machine's area show (package rollback)
//
// It is in the config directory, not the cache, because deleting a lock
// file that is held would let a second backup in.
type Dir string

// StateDir returns the state directory of machine in the vault vaultID
// (the root config's ID) under configDir.
func StateDir(configDir, vaultID, machine string) Dir {
	return Dir(filepath.Join(configDir, "state", vaultID, machine))
}

// BackupLock is the lock every backup of the machine on this host holds.
func (d Dir) BackupLock() string { return filepath.Join(string(d), "backup.lock") }

// AgentLock is the lock the machine's agent holds while it runs.
func (d Dir) AgentLock() string { return filepath.Join(string(d), "agent.lock") }

func (d Dir) disabledFile() string { return filepath.Join(string(d), "disabled") }

func (d Dir) lastFile() string { return filepath.Join(string(d), "last.json") }

func (d Dir) seenFile() string { return filepath.Join(string(d), "seen.json") }

// disabledRecord is the content of the disabled file.
type disabledRecord struct {
	Since time.Time `json:"since"`
}

// Disable disables automatic backups from now on. Disabling them again
// keeps the first time.
func (d Dir) Disable(now time.Time) error {
	if _, disabled, err := d.Disabled(); err != nil || disabled {
		return err
	}
	return d.write(d.disabledFile(), disabledRecord{Since: now.UTC()})
}

// Enable enables automatic backups again; they are enabled unless
// disabled.
func (d Dir) Enable() error {
	if err := os.Remove(d.disabledFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("enable automatic backups: %w", err)
	}
	return nil
}

// Disabled reports whether automatic backups are disabled, and since when
// (zero when the record does not say).
func (d Dir) Disabled() (time.Time, bool, error) {
	b, err := os.ReadFile(d.disabledFile())
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s: %w", d.disabledFile(), err)
	}
	// The file's presence is the setting; its content is for people.
	var rec disabledRecord
	_ = json.Unmarshal(b, &rec)
	return rec.Since, true, nil
}

// Last is a point a backup on this host committed. A write-only machine
// (certificate mode) cannot read its points in the vault: this is how its
// agent and 'azfs status' know when it, or one of its backup sets, last
// backed up.
type Last struct {
	Point   string    `json:"point"`
	Time    time.Time `json:"time"`
	Partial bool      `json:"partial,omitempty"`
	// Set is the point's backup set name (repo.Point.SetName); "" for a
	// point of the set of its paths.
	Set string `json:"set,omitempty"`
}

// lastRecord is last.json: the last point committed, at the top as before
// backup sets (an older azfs reads that), and the last of each set, by
// name.
type lastRecord struct {
	Last
	Sets map[string]Last `json:"sets,omitempty"`
}

// SaveLast records the last point committed, as the last of its set too.
// A record that cannot be read is replaced.
func (d Dir) SaveLast(l Last) error {
	rec, err := d.loadLast()
	if err != nil || rec == nil {
		rec = &lastRecord{}
	}
	if rec.Sets == nil {
		rec.Sets = make(map[string]Last)
		if rec.Point != "" {
			rec.Sets[rec.Set] = rec.Last
		}
	}
	rec.Last, rec.Sets[l.Set] = l, l
	return d.write(d.lastFile(), rec)
}

// LoadLast returns the last point recorded, and false when none is.
func (d Dir) LoadLast() (Last, bool, error) {
	rec, err := d.loadLast()
	if err != nil || rec == nil {
		return Last{}, false, err
	}
	return rec.Last, true, nil
}

// LoadLastOfSets returns the last point recorded of each backup set, by
// name ("" for points without one); a record written before sets gives
// its one point.
func (d Dir) LoadLastOfSets() (map[string]Last, error) {
	rec, err := d.loadLast()
	if err != nil || rec == nil {
		return nil, err
	}
	if rec.Sets == nil {
		return map[string]Last{rec.Set: rec.Last}, nil
	}
	return rec.Sets, nil
}

// loadLast reads last.json; nil when there is none.
func (d Dir) loadLast() (*lastRecord, error) {
	b, err := os.ReadFile(d.lastFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.lastFile(), err)
	}
	var rec lastRecord
	if err := json.Unmarshal(b, &rec); err != nil || !rec.valid() {
		return nil, fmt.Errorf("read %s: not a record of a point", d.lastFile())
	}
	for _, l := range rec.Sets {
		if !l.valid() {
			return nil, fmt.Errorf("read %s: not a record of a point", d.lastFile())
		}
	}
	return &rec, nil
}

func (l Last) valid() bool { return !l.Time.IsZero() && len(l.Point) == 64 }

// SaveSeen records the newest point this host has seen the machine's area
// show.
func (d Dir) SaveSeen(m rollback.Mark) error { return d.write(d.seenFile(), m) }

// LoadSeen returns the newest point recorded as seen; a zero mark when none
// is.
func (d Dir) LoadSeen() (rollback.Mark, error) {
	b, err := os.ReadFile(d.seenFile())
	if errors.Is(err, fs.ErrNotExist) {
		return rollback.Mark{}, nil
	}
	if err != nil {
		return rollback.Mark{}, fmt.Errorf("read %s: %w", d.seenFile(), err)
	}
	var m rollback.Mark
	if err := json.Unmarshal(b, &m); err != nil || m.IsZero() || m.Taken.IsZero() {
		return rollback.Mark{}, fmt.Errorf("read %s: not a record of a point", d.seenFile())
	}
	return m, nil
}

// RemoveSeen drops the record of the newest point seen.
func (d Dir) RemoveSeen() error {
	if err := os.Remove(d.seenFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget the newest point seen: %w", err)
	}
	return nil
}

// write replaces name with v as JSON: a temporary file renamed over it, so
// a reader sees the old record or the new one.
func (d Dir) write(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f, err := os.CreateTemp(string(d), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Hostname returns this host's name, "localhost" when it has none.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

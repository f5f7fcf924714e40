package agent

import (
	"time"

	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
)

// Status is the state of one machine's backups: its last point, its
// policy and next scheduled runs, each backup set's, and, on the host that
// is the machine, whether automatic backups are enabled and what runs.
// It is what 'azfs status' shows, and its JSON is 'azfs status --json'
// (docs/cli.md). The fields marked "this host" are null for a machine that
// is not this host's.
type Status struct {
	Vault   string `json:"vault"`
	VaultID string `json:"vault_id"`
	Machine string `json:"machine"`
	// ThisHost says the machine is the one this host is registered as.
	ThisHost  bool              `json:"this_host"`
	LastPoint *policy.LastPoint `json:"last_point"` // null: none
	// LivePoints is null when this host cannot read the machine's points
	// (certificate mode).
	LivePoints *int `json:"live_points"`
	Policy     struct {
		Number    int    `json:"number"`  // 0: the default
		Default   bool   `json:"default"` // the owner set none
		Schedule  string `json:"schedule"`
		Retention string `json:"retention"`
		TimeZone  string `json:"timezone"`
	} `json:"policy"`
	// NextRun is the next scheduled time of the default rules; null when
	// automatic backups are disabled.
	NextRun *time.Time `json:"next_run"`
	// Sets are the sets with rules of their own in the policy.
	Sets             []SetStatus `json:"sets"`
	AutomaticBackups *bool       `json:"automatic_backups"` // this host
	DisabledSince    time.Time   `json:"disabled_since,omitzero"`
	Agent            *LockState  `json:"agent"`  // this host: the machine's agent
	Backup           *LockState  `json:"backup"` // this host: a backup of the machine, the agent's or 'azfs backup'
}

// SetStatus is one set of the policy: its rules, its next scheduled
// backup (null: it has no paths, or automatic backups are disabled) and
// its last point.
type SetStatus struct {
	Name      string            `json:"name"`
	Schedule  string            `json:"schedule"`
	Retention string            `json:"retention"`
	Paths     []string          `json:"paths"`
	NextRun   *time.Time        `json:"next_run"`
	LastPoint *policy.LastPoint `json:"last_point"`
}

// LockState says whether a lock's holder runs, and who it is.
type LockState struct {
	Running bool      `json:"running"`
	PID     int       `json:"pid,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	What    string    `json:"what,omitempty"`
	Paths   []string  `json:"paths,omitempty"`
}

// Holder returns who holds the lock.
func (l LockState) Holder() Holder {
	return Holder{PID: l.PID, Since: l.Since, What: l.What, Paths: l.Paths}
}

// StatusSource is what a machine's status is made of.
type StatusSource struct {
	Vault, VaultID, Machine string
	Policy                  policy.Policy
	// Live are the machine's live points, oldest first; Readable is false
	// when this host cannot read them (certificate mode), and Live nil.
	Live     []*repo.Point
	Readable bool
	// Host is this host's state of the machine, nil when the machine is
	// not this host.
	Host *hoststate.Dir
	// Warn is told of host state that cannot be read (the last points
	// recorded here); the status goes on without it.
	Warn func(err error)
}

// ReadStatus returns the status of src's machine at now.
func ReadStatus(src StatusSource, now time.Time) (Status, error) {
	out := Status{Vault: src.Vault, VaultID: src.VaultID, Machine: src.Machine, ThisHost: src.Host != nil, Sets: []SetStatus{}}
	p := src.Policy
	loc, err := p.Location()
	if err != nil {
		return out, err
	}
	out.Policy.Number, out.Policy.Default, out.Policy.Schedule = p.Seq, p.IsDefault(), p.Schedule.String()
	out.Policy.Retention, out.Policy.TimeZone = p.Retention.String(), p.TimeZone
	next := p.Schedule.Next(now, loc)
	out.NextRun = &next
	for _, sp := range p.Sets {
		set := SetStatus{Name: sp.Name, Schedule: sp.Schedule.String(), Retention: sp.Retention.String(), Paths: sp.Paths}
		if sp.Scheduled() {
			n := sp.Schedule.Next(now, loc)
			set.NextRun = &n
		}
		out.Sets = append(out.Sets, set)
	}
	if src.Readable {
		n := len(src.Live)
		out.LivePoints = &n
		if n > 0 {
			out.LastPoint = policy.VaultPoint(src.Live[n-1])
		}
		for i := range out.Sets {
			for _, pt := range src.Live {
				if pt.SetName == out.Sets[i].Name {
					out.Sets[i].LastPoint = policy.VaultPoint(pt)
				}
			}
		}
	}
	if src.Host != nil {
		if err := out.addHost(*src.Host, src.Warn); err != nil {
			return out, err
		}
	}
	return out, nil
}

// addHost fills in this host's state of the machine: whether automatic
// backups are enabled, its agent and running backup, and its last point
// when the vault did not tell.
func (out *Status) addHost(dir hoststate.Dir, warn func(error)) error {
	since, disabled, err := dir.Disabled()
	if err != nil {
		return err
	}
	enabled := !disabled
	out.AutomaticBackups, out.DisabledSince = &enabled, since
	if disabled {
		out.NextRun = nil
		for i := range out.Sets {
			out.Sets[i].NextRun = nil
		}
	}
	if out.LivePoints == nil {
		last, ok, err := dir.LoadLast()
		if err != nil {
			warn(err)
		} else if ok {
			out.LastPoint = &policy.LastPoint{ID: last.Point, Time: last.Time, Partial: last.Partial, Source: "this host"}
		}
		sets, err := dir.LoadLastOfSets()
		if err != nil {
			warn(err)
		}
		for i := range out.Sets {
			if l, ok := sets[out.Sets[i].Name]; ok {
				out.Sets[i].LastPoint = &policy.LastPoint{ID: l.Point, Time: l.Time, Partial: l.Partial, Source: "this host"}
			}
		}
	}
	for _, l := range []struct {
		path string
		to   **LockState
	}{{dir.AgentLock(), &out.Agent}, {dir.BackupLock(), &out.Backup}} {
		h, held, err := Probe(l.path)
		if err != nil {
			return err
		}
		*l.to = &LockState{Running: held}
		if held {
			**l.to = LockState{Running: true, PID: h.PID, Since: h.Since, What: h.What, Paths: h.Paths}
		}
	}
	return nil
}

// Disabling is what DisableSchedule found.
type Disabling struct {
	// Already says automatic backups were disabled already, since Since.
	Already bool
	Since   time.Time
	// Running is the backup running now, which goes on to its end; nil:
	// none.
	Running *Holder
}

// DisableSchedule stops the machine's scheduled backups on this host
// (dir, its state): its agent skips them until EnableSchedule, while
// on-demand backups still run.
func DisableSchedule(dir hoststate.Dir, now time.Time) (Disabling, error) {
	since, disabled, err := dir.Disabled()
	if err != nil || disabled {
		return Disabling{Already: disabled, Since: since}, err
	}
	if err := dir.Disable(now); err != nil {
		return Disabling{}, err
	}
	out := Disabling{Since: now}
	if h, running, err := Probe(dir.BackupLock()); err == nil && running {
		out.Running = &h
	}
	return out, nil
}

// EnableSchedule resumes the machine's scheduled backups on this host
// under its policy p: it returns the next scheduled time after now and
// whether an agent runs here to take it.
func EnableSchedule(dir hoststate.Dir, p policy.Policy, now time.Time) (next time.Time, agentRuns bool, err error) {
	if err := dir.Enable(); err != nil {
		return time.Time{}, false, err
	}
	loc, err := p.Location()
	if err != nil {
		return time.Time{}, false, err
	}
	_, running, err := Probe(dir.AgentLock())
	return p.Schedule.Next(now, loc), err != nil || running, nil
}

// LastOfSet returns when set was last backed up: the time of the newest
// of its points (every point of the machine, forgotten ones too), or
// recorded, the last point this host committed of it, when that is later
// (a point the vault does not show yet, or a machine that cannot read its
// points: points is nil).
func LastOfSet(points []*repo.Point, set string, recorded time.Time) time.Time {
	last := recorded
	for _, p := range points {
		if p.SetName == set && p.Time.After(last) {
			last = p.Time
		}
	}
	return last
}

package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
)

// VaultMachine is a Machine in a vault: every call opens the vault anew
// (package open), with this host's keyring as it is then (a renewed SAS
// token, a new key epoch), so that a long-running agent sees what the
// commands changed meanwhile.
type VaultMachine struct {
	// Target names the vault and the machine (Target.Machine, or the
	// machine this host is registered as).
	Target  open.Target
	Machine string
	// Dir is this host's state of the machine.
	Dir hoststate.Dir
	Log *slog.Logger
	// Uploads is backup.Options.Uploads of each backup (0: the vault
	// kind's default).
	Uploads int
}

// Policy returns the machine's current policy.
func (m *VaultMachine) Policy(ctx context.Context) (policy.Policy, error) {
	o, err := open.Root(ctx, m.Target)
	if err != nil {
		return policy.Policy{}, err
	}
	return policy.Current(ctx, o.VaultRoot(), m.Machine)
}

// Enabled reports whether automatic backups are enabled on this host.
func (m *VaultMachine) Enabled() (bool, error) {
	_, disabled, err := m.Dir.Disabled()
	return !disabled, err
}

// LastBackup is the newest point of the set in the vault, or the last one
// this host committed when later (or when the machine cannot read its
// points: certificate mode).
func (m *VaultMachine) LastBackup(ctx context.Context, set string) (time.Time, error) {
	var last time.Time
	if sets, err := m.Dir.LoadLastOfSets(); err != nil {
		m.Log.Warn("cannot read the last points recorded on this host", "err", err)
	} else {
		last = sets[set].Time
	}
	o, err := open.Machine(ctx, m.Target)
	if err != nil {
		return time.Time{}, err
	}
	s, err := o.State(ctx, m.warn)
	if errors.Is(err, repo.ErrWriteOnly) {
		return last, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return LastOfSet(s.All(), set, last), nil
}

// Backup backs up one job (the agent's own paths, or a set of the
// policy's) as a scheduled backup: it waits for a backup of the machine
// running on this host to end, then backs up (Backup) and logs what it
// skipped and committed. A partial point is a success: the files it
// skipped are logged.
func (m *VaultMachine) Backup(ctx context.Context, job policy.SetPolicy) error {
	log := m.Log
	if job.Name != "" {
		log = log.With("set", job.Name)
	}
	paths, err := job.BackupPaths(func(msg string) { log.Warn(msg) })
	if err != nil {
		return err
	}
	sel, err := job.Selection.Selection()
	if err != nil {
		return err
	}
	o, err := open.Machine(ctx, m.Target)
	if err != nil {
		return err
	}
	holder := Holder{PID: os.Getpid(), What: "scheduled backup (azfs agent)", Paths: paths}
	lock, err := LockBackup(ctx, o, holder, true, func(h Holder) {
		log.Info("waiting for the backup that is running to end", "holder", h.String())
	})
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := Backup(ctx, o, Request{Options: backup.Options{
		Paths:   paths,
		Set:     job.Name,
		Select:  sel,
		Uploads: m.Uploads,
		OnError: func(path string, err error) { log.Warn("skipped", "path", path, "err", err) },
		OnChanged: func(path string) {
			log.Warn("kept changing while read; stored as read, marked changed during backup", "path", path)
		},
	}, Warn: func(msg string) { log.Warn(msg) }, Tell: func(msg string) { log.Info(msg) }})
	if p == nil {
		return err
	}
	s := p.Stats
	log.Info("backup committed", "point", p.ID.Short(), "partial", p.Partial, "files", s.Files, "new", s.FilesNew,
		"changed", s.FilesChanged, "unchanged", s.FilesUnchanged, "bytes", s.Bytes, "read", s.BytesRead, "stored", s.BytesStored,
		"duration", s.Duration.Round(time.Millisecond))
	if errors.Is(err, backup.ErrPartial) {
		if p.Partial {
			log.Warn("the point is partial: the files logged as skipped are not in it")
		}
		return nil
	}
	return err
}

// ApplyRetention applies the machine's retention at now. A machine that
// cannot read its points (certificate mode) logs that its retention is
// applied with the certificate's private key, and goes on.
func (m *VaultMachine) ApplyRetention(ctx context.Context, now time.Time) error {
	o, err := open.Machine(ctx, m.Target)
	if err != nil {
		return err
	}
	s, err := o.StateToChange(ctx, m.warn)
	if errors.Is(err, repo.ErrWriteOnly) {
		m.Log.Info("retention not applied: this machine cannot read its points (certificate mode); apply it with the certificate's private key ('azfs policy apply --machine NAME --private-key FILE')")
		return nil
	}
	if err != nil {
		return err
	}
	forgotten, err := s.Apply(ctx, now)
	if err != nil {
		return err
	}
	m.Log.Info("retention applied", "policy", s.Policy.Seq, "retention", s.Policy.DescribeRetention(), "forgot", len(forgotten), "live", len(s.Live()))
	return nil
}

func (m *VaultMachine) warn(msg string) { m.Log.Warn(msg) }

// MachineStatus returns the status at now of the machine o has open
// (open.Root with Target.Machine, or any open that set o.Machine): its
// policy, its live points when this host reads them, and, on the
// machine's own host, this host's state of it. warn is told of what
// could not be read; the status goes on without it.
func MachineStatus(ctx context.Context, o *open.Opened, warn func(msg string), now time.Time) (Status, error) {
	p, err := policy.Current(ctx, o.VaultRoot(), o.Machine)
	if err != nil {
		return Status{}, err
	}
	src := StatusSource{Vault: o.Location, VaultID: o.Root.ID, Machine: o.Machine, Policy: p, Readable: true,
		Warn: func(err error) { warn(err.Error()) }}
	s, err := o.State(ctx, warn)
	switch {
	case errors.Is(err, repo.ErrWriteOnly):
		src.Readable = false
	case err != nil:
		return Status{}, err
	default:
		src.Live = s.Live()
	}
	if o.Entry != nil && o.Entry.Machine == o.Machine {
		dir, err := o.StateDir()
		if err != nil {
			return Status{}, err
		}
		src.Host = &dir
	}
	return ReadStatus(src, now)
}

// Enabling is what EnableMachine did: the policy's default schedule, its
// next time, and whether an agent runs here to take it.
type Enabling struct {
	Schedule  policy.Schedule
	Next      time.Time
	AgentRuns bool
}

// EnableMachine resumes the scheduled backups on this host (dir, its
// state) of machine under its current policy in root (EnableSchedule).
func EnableMachine(ctx context.Context, root repo.Root, machine string, dir hoststate.Dir, now time.Time) (Enabling, error) {
	p, err := policy.Current(ctx, root, machine)
	if err != nil {
		return Enabling{}, err
	}
	next, agentRuns, err := EnableSchedule(dir, p, now)
	return Enabling{Schedule: p.Schedule, Next: next, AgentRuns: agentRuns}, err
}

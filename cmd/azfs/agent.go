package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
)

// newAgentCmd returns 'azfs agent [PATH...]': this machine's scheduled
// backups of PATH..., and of the sets its policy gives paths, until
// SIGTERM or SIGINT (package agent).
func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent [PATH...]",
		Short: "Run this machine's scheduled backups of PATH... and of its policy's sets (a service: see dist/azfs-agent.service)",
		Example: `  azfs agent /home /etc
  azfs agent --exclude-caches -x /
  azfs agent          # only the sets given paths by 'azfs policy set --set NAME PATH...'`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	uploads := fs.Int("uploads", 0, "packs (16 MiB each) uploaded at once (default 2 for a local vault, 8 for a blob vault)")
	testInterval := fs.Duration("test-interval", 0, "tests only: back up at the multiples of this interval instead of the policy's schedule")
	fs.Lookup("test-interval").Hidden = true
	selFlags := addSelectFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *testInterval < 0 {
			return cli.Usagef("--test-interval must not be negative")
		}
		spec, err := selFlags.spec()
		if err != nil {
			return err
		}
		paths, err := selFlags.paths(fs.Args(), warnf)
		if err != nil {
			return err
		}
		if len(paths) == 0 && selFlags.given() {
			return cli.Usagef("the selection flags are for the agent's own PATHs: give them (a set's selection is in the policy: 'azfs policy set --set NAME')")
		}
		setBackupMemoryLimit()
		o, err := open.Machine(ctx, target.target())
		if err != nil {
			return err
		}
		dir, err := o.StateDir()
		if err != nil {
			return err
		}
		lock, err := agent.TryLock(dir.AgentLock(), agent.Holder{PID: os.Getpid(), What: "azfs agent", Paths: paths})
		var locked *agent.LockedError
		if errors.As(err, &locked) {
			return fmt.Errorf("an agent of machine %s is running already: %s", o.Machine, locked.Holder)
		}
		if err != nil {
			return err
		}
		defer lock.Unlock()
		log := agent.NewLogger(os.Stderr, agent.IsJournal(os.Stderr)).With("machine", o.Machine)
		log.Info("agent started", "vault", o.Location, "paths", paths, "pid", os.Getpid())
		t := target.target()
		t.Vault = o.Location // the vault found now, whatever the default becomes
		r := &agentRunner{target: t, machine: o.Machine, dir: dir, uploads: *uploads, log: log}
		agent.Run(ctx, r, agent.Options{Paths: paths, Selection: spec, Log: log, Interval: *testInterval})
		return nil
	}
	return cmd
}

// agentRunner is the agent's machine: every call opens the vault anew,
// with the keyring as it is then (a renewed SAS token, a new key epoch).
type agentRunner struct {
	target  open.Target
	machine string
	dir     hoststate.Dir
	uploads int
	log     *slog.Logger
}

func (r *agentRunner) warn(msg string) { r.log.Warn(msg) }

func (r *agentRunner) Policy(ctx context.Context) (policy.Policy, error) {
	o, err := open.Root(ctx, r.target)
	if err != nil {
		return policy.Policy{}, err
	}
	return policy.Current(ctx, o.VaultRoot(), r.machine)
}

func (r *agentRunner) Enabled() (bool, error) {
	_, disabled, err := r.dir.Disabled()
	return !disabled, err
}

// LastBackup is the newest point of the set in the vault, or the last one
// this host committed when later (or when the machine cannot read its
// points: certificate mode).
func (r *agentRunner) LastBackup(ctx context.Context, set string) (time.Time, error) {
	var last time.Time
	if sets, err := r.dir.LoadLastOfSets(); err != nil {
		r.log.Warn("cannot read the last points recorded on this host", "err", err)
	} else {
		last = sets[set].Time
	}
	o, err := open.Machine(ctx, r.target)
	if err != nil {
		return time.Time{}, err
	}
	s, err := o.State(ctx, r.warn)
	if errors.Is(err, repo.ErrWriteOnly) {
		return last, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return agent.LastOfSet(s.All(), set, last), nil
}

// Backup backs up one job: the agent's own paths, or a set of the
// policy's.
func (r *agentRunner) Backup(ctx context.Context, job policy.SetPolicy) error {
	log := r.log
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
	o, err := open.Machine(ctx, r.target)
	if err != nil {
		return err
	}
	holder := agent.Holder{PID: os.Getpid(), What: "scheduled backup (azfs agent)", Paths: paths}
	lock, err := lockBackup(ctx, o, holder, true, func(h agent.Holder) {
		log.Info("waiting for the backup that is running to end", "holder", h.String())
	})
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := runBackup(ctx, o, backupRequest{
		paths:     paths,
		set:       job.Name,
		selection: sel,
		uploads:   r.uploads,
		onError:   func(path string, err error) { log.Warn("skipped", "path", path, "err", err) },
		onChanged: func(path string) {
			log.Warn("kept changing while read; stored as read, marked changed during backup", "path", path)
		},
		warn: func(msg string) { log.Warn(msg) },
	})
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

func (r *agentRunner) ApplyRetention(ctx context.Context, now time.Time) error {
	o, err := open.Machine(ctx, r.target)
	if err != nil {
		return err
	}
	s, err := o.StateToChange(ctx, r.warn)
	if errors.Is(err, repo.ErrWriteOnly) {
		r.log.Info("retention not applied: this machine cannot read its points (certificate mode); apply it with the certificate's private key ('azfs policy apply --machine NAME --private-key FILE')")
		return nil
	}
	if err != nil {
		return err
	}
	forgotten, err := s.Apply(ctx, now)
	if err != nil {
		return err
	}
	r.log.Info("retention applied", "policy", s.Policy.Seq, "retention", s.Policy.DescribeRetention(), "forgot", len(forgotten), "live", len(s.Live()))
	return nil
}

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/open"
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
		agent.SetMemoryLimit()
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
		m := &agent.VaultMachine{Target: t, Machine: o.Machine, Dir: dir, Log: log, Uploads: *uploads}
		agent.Run(ctx, m, agent.Options{Paths: paths, Selection: spec, Log: log, Interval: *testInterval})
		return nil
	}
	return cmd
}

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo/open"
)

// Automatic backups are enabled or disabled on the machine itself, in its
// local state (hoststate.Dir): they are what this host's agent does, like the
// paths it backs up. The owner's say over a machine's backups is its
// policy (and its credentials), in the vault.

func newScheduleDisableCmd() *cobra.Command {
	return scheduleCmd("disable", "Stop this machine's scheduled backups (its agent skips them)", scheduleDisable)
}

func newScheduleEnableCmd() *cobra.Command {
	return scheduleCmd("enable", "Resume this machine's scheduled backups", scheduleEnable)
}

// scheduleDisable disables the scheduled backups of o's machine on this
// host.
func scheduleDisable(ctx context.Context, o *open.Opened, dir hoststate.Dir) error {
	d, err := agent.DisableSchedule(dir, time.Now())
	switch {
	case err != nil:
		return err
	case d.Already:
		fmt.Fprintf(os.Stderr, "automatic backups of machine %s are disabled already (since %s)\n", o.Machine, d.Since.Local().Format("2006-01-02 15:04"))
		return nil
	}
	fmt.Fprintf(os.Stderr, "automatic backups of machine %s are disabled: its agent skips the scheduled backups until 'azfs schedule enable'; 'azfs backup' still backs up on demand\n", o.Machine)
	if d.Running != nil {
		fmt.Fprintf(os.Stderr, "the backup running now goes on to its end: %s\n", d.Running)
	}
	return nil
}

// scheduleEnable enables the scheduled backups of o's machine on this
// host.
func scheduleEnable(ctx context.Context, o *open.Opened, dir hoststate.Dir) error {
	e, err := agent.EnableMachine(ctx, o.VaultRoot(), o.Machine, dir, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "automatic backups of machine %s are enabled: %s, the next at %s\n", o.Machine, e.Schedule, e.Next.Format("2006-01-02 15:04 MST"))
	if !e.AgentRuns {
		fmt.Fprintln(os.Stderr, "no agent runs on this host: start one ('azfs agent PATH...', or the azfs-agent service)")
	}
	return nil
}

// scheduleCmd returns 'azfs schedule verb', which opens the vault and
// runs run on this host's state of its machine there.
func scheduleCmd(verb, short string, run func(context.Context, *open.Opened, hoststate.Dir) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     verb,
		Short:   short,
		Example: "  azfs schedule " + verb + "\n  azfs schedule " + verb + " --vault /srv/backup/vault",
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if fs.NArg() != 0 {
			return cli.Usagef("usage: azfs schedule %s [--vault PATH]", verb)
		}
		ctx := cmd.Context()
		o, err := open.Root(ctx, target.target())
		if err != nil {
			return err
		}
		if o.Entry == nil || o.Entry.Machine == "" {
			return cli.Usagef("this machine is not registered with the vault at %s: automatic backups are a registered machine's ('azfs register')", o.Location)
		}
		o.Machine = o.Entry.Machine
		dir, err := o.StateDir()
		if err != nil {
			return err
		}
		return run(ctx, o, dir)
	}
	return cmd
}

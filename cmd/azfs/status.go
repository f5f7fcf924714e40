package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show this machine's last point, next scheduled run, each backup set's, agent, and backup running now",
		Example: `  azfs status
  azfs status --machine web01 --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		o, err := argslessPointsReader(ctx, fs, target, "usage: azfs status [--vault PATH] [--machine NAME] [--json]")
		if err != nil {
			return err
		}
		out, err := agent.MachineStatus(ctx, o, warnf, time.Now())
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(out)
		}
		printStatus(out)
		return nil
	}
	return cmd
}

func printStatus(s agent.Status) {
	const layout = "2006-01-02 15:04:05"
	host := ""
	if s.ThisHost {
		host = ", this host"
	}
	fmt.Printf("machine    %s (vault %s%s)\n", s.Machine, s.Vault, host)
	switch l := s.LastPoint; {
	case l != nil:
		partial := ""
		if l.Partial {
			partial = " (partial: some files could not be read)"
		}
		from := ""
		if l.Source != "vault" {
			from = " (recorded on this host)"
		}
		fmt.Printf("last point %s  %s%s%s\n", l.ID[:8], l.Time.Local().Format(layout), partial, from)
	case s.LivePoints != nil:
		fmt.Println("last point none yet")
	default:
		fmt.Println("last point unknown: this host cannot read the machine's points (certificate mode)")
	}
	if s.LivePoints != nil {
		fmt.Printf("points     %d live\n", *s.LivePoints)
	}
	which := "the default policy"
	if !s.Policy.Default {
		which = fmt.Sprintf("policy %d", s.Policy.Number)
	}
	fmt.Printf("policy     %s: %s; %s; in %s\n", which, s.Policy.Schedule, s.Policy.Retention, s.Policy.TimeZone)
	if s.AutomaticBackups != nil {
		if *s.AutomaticBackups {
			fmt.Println("automatic  enabled")
		} else {
			since := ""
			if !s.DisabledSince.IsZero() {
				since = " since " + s.DisabledSince.Local().Format(layout)
			}
			fmt.Printf("automatic  disabled%s ('azfs schedule enable')\n", since)
		}
	}
	switch {
	case s.NextRun == nil:
		fmt.Println("next run   none: automatic backups are disabled")
	case s.Agent != nil && !s.Agent.Running:
		fmt.Printf("next run   %s, when an agent runs ('azfs agent', or the azfs-agent service)\n", s.NextRun.Format("2006-01-02 15:04 MST"))
	default:
		fmt.Printf("next run   %s\n", s.NextRun.Format("2006-01-02 15:04 MST"))
	}
	for _, set := range s.Sets {
		next := "no paths: no scheduled backups"
		if set.NextRun != nil {
			next = "next run " + set.NextRun.Format("2006-01-02 15:04 MST")
		} else if len(set.Paths) > 0 {
			next = "no next run: automatic backups are disabled"
		}
		last := "no point yet"
		if l := set.LastPoint; l != nil {
			last = "last point " + l.ID[:8] + "  " + l.Time.Local().Format(layout)
		} else if s.LivePoints == nil {
			last = "last point unknown here"
		}
		fmt.Printf("set        %s: %s; %s; %s; %s\n", cli.QuoteNameIfNeeded(set.Name), last, next, set.Schedule, set.Retention)
	}
	if !s.ThisHost {
		fmt.Println("agent      not known here: automatic backups and the agent are the machine's own ('azfs status' on it)")
		return
	}
	describe := func(l *agent.LockState, none string) string {
		if !l.Running {
			return none
		}
		return "running: " + cli.OneLine(l.Holder().String())
	}
	fmt.Printf("agent      %s\n", describe(s.Agent, "not running on this host"))
	fmt.Printf("backup     %s\n", describe(s.Backup, "none running"))
}

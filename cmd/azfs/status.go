package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/agent"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
)

// statusJSON is 'azfs status --json'. The fields marked "this host" are
// null for a machine that is not this host's.
type statusJSON struct {
	Vault   string `json:"vault"`
	VaultID string `json:"vault_id"`
	Machine string `json:"machine"`
	// ThisHost says the machine is the one this host is registered as.
	ThisHost  bool           `json:"this_host"`
	LastPoint *lastPointJSON `json:"last_point"` // null: none
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
	Sets             []setStatusJSON `json:"sets"`
	AutomaticBackups *bool           `json:"automatic_backups"` // this host
	DisabledSince    time.Time       `json:"disabled_since,omitzero"`
	Agent            *lockJSON       `json:"agent"`  // this host: the machine's agent
	Backup           *lockJSON       `json:"backup"` // this host: a backup of the machine, the agent's or 'azfs backup'
}

// setStatusJSON is one set of the policy: its rules, its next scheduled
// backup (null: it has no paths, or automatic backups are disabled) and
// its last point.
type setStatusJSON struct {
	Name      string         `json:"name"`
	Schedule  string         `json:"schedule"`
	Retention string         `json:"retention"`
	Paths     []string       `json:"paths"`
	NextRun   *time.Time     `json:"next_run"`
	LastPoint *lastPointJSON `json:"last_point"`
}

type lastPointJSON struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Partial bool      `json:"partial"`
	// Source is "vault", or "this host" when the machine cannot read its
	// points and this is the last point a backup on this host committed.
	Source string `json:"source"`
}

type lockJSON struct {
	Running bool      `json:"running"`
	PID     int       `json:"pid,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	What    string    `json:"what,omitempty"`
	Paths   []string  `json:"paths,omitempty"`
}

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
		var out statusJSON
		out.Vault, out.VaultID, out.Machine = o.Location, o.Root.ID, o.Machine
		out.ThisHost = o.Entry != nil && o.Entry.Machine == o.Machine

		p, err := policy.Current(ctx, o.Storage, o.Root, o.Machine)
		if err != nil {
			return err
		}
		loc, err := p.Location()
		if err != nil {
			return err
		}
		out.Policy.Number, out.Policy.Default, out.Policy.Schedule = p.Seq, p.IsDefault(), p.Schedule.String()
		out.Policy.Retention, out.Policy.TimeZone = p.Retention.String(), p.TimeZone

		now := time.Now()
		next := p.Schedule.Next(now, loc)
		out.NextRun = &next
		out.Sets = []setStatusJSON{}
		for _, sp := range p.Sets {
			set := setStatusJSON{Name: sp.Name, Schedule: sp.Schedule.String(), Retention: sp.Retention.String(), Paths: sp.Paths}
			if sp.Scheduled() {
				n := sp.Schedule.Next(now, loc)
				set.NextRun = &n
			}
			out.Sets = append(out.Sets, set)
		}

		s, err := o.State(ctx, warnf)
		switch {
		case errors.Is(err, repo.ErrWriteOnly):
		case err != nil:
			return err
		default:
			live := s.Live()
			n := len(live)
			out.LivePoints = &n
			if n > 0 {
				last := live[n-1]
				out.LastPoint = &lastPointJSON{ID: last.ID.String(), Time: last.Time, Partial: last.Partial, Source: "vault"}
			}
			for i := range out.Sets {
				for _, pt := range live {
					if pt.SetName == out.Sets[i].Name {
						out.Sets[i].LastPoint = &lastPointJSON{ID: pt.ID.String(), Time: pt.Time, Partial: pt.Partial, Source: "vault"}
					}
				}
			}
		}

		if out.ThisHost {
			dir, err := o.StateDir()
			if err != nil {
				return err
			}
			if err := localStatus(&out, dir); err != nil {
				return err
			}
		}
		if *asJSON {
			return printJSON(out)
		}
		printStatus(out)
		return nil
	}
	return cmd
}

// localStatus fills in this host's state of the machine: whether automatic
// backups are enabled, its agent and running backup, and its last point
// when the vault did not tell.
func localStatus(out *statusJSON, dir hoststate.Dir) error {
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
			warnf(cli.Message(err))
		} else if ok {
			out.LastPoint = &lastPointJSON{ID: last.Point, Time: last.Time, Partial: last.Partial, Source: "this host"}
		}
		sets, err := dir.LoadLastOfSets()
		if err != nil {
			warnf(cli.Message(err))
		}
		for i := range out.Sets {
			if l, ok := sets[out.Sets[i].Name]; ok {
				out.Sets[i].LastPoint = &lastPointJSON{ID: l.Point, Time: l.Time, Partial: l.Partial, Source: "this host"}
			}
		}
	}
	for _, l := range []struct {
		path string
		to   **lockJSON
	}{{dir.AgentLock(), &out.Agent}, {dir.BackupLock(), &out.Backup}} {
		h, held, err := agent.Probe(l.path)
		if err != nil {
			return err
		}
		*l.to = &lockJSON{Running: held}
		if held {
			**l.to = lockJSON{Running: true, PID: h.PID, Since: h.Since, What: h.What, Paths: h.Paths}
		}
	}
	return nil
}

func printStatus(s statusJSON) {
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
	describe := func(l *lockJSON, none string) string {
		if !l.Running {
			return none
		}
		return "running: " + cli.OneLine(agent.Holder{PID: l.PID, Since: l.Since, What: l.What, Paths: l.Paths}.String())
	}
	fmt.Printf("agent      %s\n", describe(s.Agent, "not running on this host"))
	fmt.Printf("backup     %s\n", describe(s.Backup, "none running"))
}

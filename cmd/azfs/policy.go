package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
)

// addOwnerMachineFlags adds the flags of owner commands that work on one
// machine's points: the vault, the owner passphrase, the machine, and a
// certificate's private key to read a write-only machine's points.
func addOwnerMachineFlags(fs *pflag.FlagSet) *targetFlags {
	t := addTargetFlags(fs, false)
	t.machine = fs.String("machine", "", "the machine `NAME` (default: this machine)")
	t.privKey = fs.String("private-key", "", "certificate mode: the certificate's private key `FILE`, to read the machine's points")
	t.privPass = fs.String("private-key-password-file", "", "read the .pfx password from `FILE`")
	return t
}

// machineName returns the machine a command names, else this machine's.
func machineName(o *open.Opened, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if o.Entry != nil && o.Entry.Machine != "" {
		return o.Entry.Machine, nil
	}
	return "", cli.Usagef("this machine is not registered with the vault at %s: name one with --machine NAME", o.Location)
}

// warnf prints a warning on one line: what package open reports may hold
// an error from the storage or the file system.
func warnf(msg string) { fmt.Fprintln(os.Stderr, "azfs: warning: "+cli.OneLine(msg)) }

func newPolicyShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a machine's schedules and retention: the default rules and every backup set's",
		Example: `  azfs policy show
  azfs policy show --machine web01 --json`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	machine := fs.String("machine", "", "the machine `NAME` (default: this machine)")
	asJSON := fs.Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 0 {
			return cli.Usagef("usage: azfs policy show [--machine NAME] [--json]")
		}
		o, err := open.Root(ctx, target.target())
		if err != nil {
			return err
		}
		name, err := machineName(o, *machine)
		if err != nil {
			return err
		}
		p, v, err := policy.Show(ctx, o.VaultRoot(), name, time.Now())
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(v)
		}
		if p.IsDefault() {
			fmt.Printf("machine %s: the default policy (the owner set none)\n", name)
		} else {
			fmt.Printf("machine %s: policy %d, set by the owner on %s\n", name, p.Seq, p.Set.Local().Format("2006-01-02 15:04:05"))
		}
		fmt.Printf("  schedule     %s (next: %s)\n", p.Schedule, v.NextRun.Format("2006-01-02 15:04 MST"))
		fmt.Printf("  retention    %s\n", p.Retention)
		fmt.Printf("  time zone    %s\n", p.TimeZone)
		fmt.Printf("  soft delete  %s (vault-wide): forgotten points stay recoverable that long\n", retention.FormatDuration(time.Duration(v.SoftDeleteSeconds)*time.Second))
		printSets(p, v)
		return nil
	}
	return cmd
}

// printSets prints the rules of each set with rules of its own; v is p's
// view.
func printSets(p policy.Policy, v policy.View) {
	if len(p.Sets) > 0 {
		fmt.Println("  the schedule and retention above are the default rules: the agent's own paths' and every set's without rules below")
	}
	for i, sp := range p.Sets {
		fmt.Printf("set %s\n", cli.QuoteNameIfNeeded(sp.Name))
		if sp.Scheduled() {
			if len(sp.Paths) > 0 {
				fmt.Printf("  paths        %s\n", quotedNames(sp.Paths))
			}
			if len(sp.FilesFrom) > 0 {
				fmt.Printf("  files from   %s (expanded on the machine at each backup)\n", quotedNames(sp.FilesFrom))
			}
			if flags := sp.Selection.Flags(); len(flags) > 0 {
				fmt.Printf("  selection    %s\n", strings.Join(flags, " "))
			}
			fmt.Printf("  schedule     %s (next: %s)\n", sp.Schedule, v.Sets[i].NextRun.Format("2006-01-02 15:04 MST"))
		} else {
			fmt.Printf("  paths        none: no scheduled backups ('azfs backup --set %s PATH...' makes its points)\n", sp.Name)
		}
		fmt.Printf("  retention    %s\n", sp.Retention)
	}
}

// keepFlags are the retention flags of 'azfs policy set', restic's names,
// in the order of policyFlags.counts.
var keepFlags = []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"}

// policyFlags are the flags of 'azfs policy set' that change a machine's
// policy: its default rules, or with --set a set's rules, paths and
// selection.
type policyFlags struct {
	fs                   *pflag.FlagSet
	every, at, within    *string
	counts               []*int
	keepAll              *bool
	zone                 *string
	set                  *string
	noPaths              *bool
	sel                  *selectFlags
	keepGiven, anyChange bool
}

func addPolicyFlags(fs *pflag.FlagSet) *policyFlags {
	f := &policyFlags{fs: fs}
	f.every = fs.String("every", "", "back up every `DURATION` (1h to 1y: 12h, 90m, 1d), at multiples of it from midnight")
	f.at = fs.String("at", "", "back up at these `TIMES` of day (HH:MM,HH:MM; at least an hour apart)")
	for i, what := range []string{"the `N` newest points", "hours", "days", "ISO weeks", "months", "years"} {
		usage := "keep the newest point of each of the last `N` " + what + " with points (0 drops the rule; rules not given stay)"
		if i == 0 {
			usage = "keep " + what
		}
		f.counts = append(f.counts, fs.Int(keepFlags[i], 0, usage))
	}
	f.within = fs.String("keep-within", "", "keep every point within `DURATION` of the newest one (14d, 2w, 1y; d, w, y, h)")
	f.keepAll = fs.Bool("keep-all", false, "keep every point: retention forgets nothing")
	f.zone = fs.String("timezone", "", "time zone of the schedule and of retention's days (IANA `NAME`, default: the current policy's, for a first policy this machine's)")
	f.set = fs.String("set", "", "change the rules of the backup set `NAME` (a new one starts from the default rules); PATH... given are the paths its scheduled backups take, on the machine, and the selection flags what they leave out")
	f.noPaths = fs.Bool("no-paths", false, "with --set: drop the set's paths and files-from patterns: the agent no longer backs it up (its retention stays)")
	f.sel = addSelectFlags(fs)
	return f
}

// check refuses exclusive flags, after parsing, and notes what is given;
// args are the PATHs given.
func (f *policyFlags) check(args []string) error {
	for _, name := range append(keepFlags, "keep-within") {
		f.keepGiven = f.keepGiven || f.fs.Changed(name)
	}
	setOnly := len(args) > 0 || *f.noPaths || f.sel.changed() != ""
	switch {
	case *f.keepAll && f.keepGiven:
		return cli.Usagef("--keep-all and --keep-* are exclusive")
	case f.fs.Changed("every") && f.fs.Changed("at"):
		return cli.Usagef("--every and --at are exclusive")
	case setOnly && !f.fs.Changed("set"):
		return cli.Usagef("paths, --files-from, --no-paths and the selection flags are a backup set's: name it with --set NAME (the agent's own PATH arguments are backed up on the default rules)")
	case *f.noPaths && (len(args) > 0 || len(*f.sel.filesFrom)+len(*f.sel.filesFromVerbatim)+len(*f.sel.filesFromRaw) > 0):
		return cli.Usagef("--no-paths and paths are exclusive")
	case f.fs.Changed("set") && f.fs.Changed("timezone"):
		return cli.Usagef("--timezone is the machine's, for every set: give it without --set")
	}
	if f.fs.Changed("set") {
		if err := repo.CheckSetName(*f.set); err != nil {
			return cli.Usagef("--set: %v", err)
		}
	}
	f.anyChange = f.keepGiven || *f.keepAll || f.fs.Changed("every") || f.fs.Changed("at") || f.fs.Changed("timezone") || setOnly
	return nil
}

// apply returns cur, machine name's policy, with the changes the flags
// (and args, a set's paths) ask for; a first policy takes this machine's
// time zone.
func (f *policyFlags) apply(cur policy.Policy, name string, args []string) (policy.Policy, error) {
	e, err := f.edit(args)
	if err != nil {
		return cur, err
	}
	next, err := cur.Edited(name, e)
	if err != nil {
		return next, cli.Usagef("%v", err)
	}
	return next, nil
}

// edit returns the change the flags and args ask for.
func (f *policyFlags) edit(args []string) (policy.Edit, error) {
	e := policy.Edit{FirstZone: hoststate.LocalZone(), Set: *f.set}
	if f.fs.Changed("timezone") {
		e.TimeZone = *f.zone
	}
	if f.fs.Changed("every") {
		d, err := retention.ParseDuration(*f.every, true)
		if err != nil {
			return e, cli.Usagef("--every: %v", err)
		}
		e.Schedule = &policy.Schedule{Every: d}
	}
	if f.fs.Changed("at") {
		ts, err := policy.ParseAt(*f.at)
		if err != nil {
			return e, cli.Usagef("--at: %v", err)
		}
		e.Schedule = &policy.Schedule{At: ts}
	}
	e.Keep.KeepAll = *f.keepAll
	for i, rule := range []**int{&e.Keep.Last, &e.Keep.Hourly, &e.Keep.Daily, &e.Keep.Weekly, &e.Keep.Monthly, &e.Keep.Yearly} {
		if f.fs.Changed(keepFlags[i]) {
			*rule = f.counts[i]
		}
	}
	if f.fs.Changed("keep-within") {
		d, err := retention.ParseDuration(*f.within, false)
		if err != nil {
			return e, cli.Usagef("--keep-within: %v", err)
		}
		e.Keep.Within = &d
	}
	if !f.fs.Changed("set") {
		return e, nil
	}
	patterns, literal, err := f.sel.listed(selection.LinePatterns, warnf)
	if err != nil {
		return e, err
	}
	e.NoPaths = *f.noPaths
	if paths := slices.Concat(args, literal); len(paths) > 0 {
		e.Paths = paths
	}
	if len(patterns) > 0 {
		e.FilesFrom = patterns
	}
	if f.sel.given() {
		spec, err := f.sel.spec()
		if err != nil {
			return e, err
		}
		e.Selection = &spec
	}
	return e, nil
}

func newPolicySetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set [--set NAME [PATH...]]",
		Short: "Set a machine's schedule and retention, or a backup set's schedule, retention, paths and selection (owner; shortening needs a PIN)",
		Example: `  azfs policy set --machine web01 --at 01:00,13:00 --keep-daily 14 --keep-monthly 12
  azfs policy set --machine web01 --set etc --every 6h --keep-last 8 --exclude '*.swp' -x /etc /usr/local/etc
  azfs policy set --machine web01 --set db --keep-daily 30        # rules for 'azfs backup --set db' points
  azfs policy set --machine web01 --keep-daily 7 --dry-run
  azfs policy set --soft-delete 30d`,
	}
	fs := flags(cmd)
	target := addOwnerMachineFlags(fs)
	pf := addPolicyFlags(fs)
	softDelete := fs.String("soft-delete", "", "vault-wide: how long forgotten points stay recoverable (`DURATION`, default 14d)")
	dryRun := fs.Bool("dry-run", false, "show what the change would forget, and change nothing")
	pin := fs.String("pin", "", "security `PIN` from 'azfs vault pin': needed when the change shortens retention or the soft-delete window")
	asJSON := fs.Bool("json", false, "print the change and what it forgot as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if err := pf.check(fs.Args()); err != nil {
			return err
		}
		windowChange := fs.Changed("soft-delete")
		if !pf.anyChange && !windowChange {
			return cli.Usagef("nothing to set: give a schedule (--every, --at), retention (--keep-*), --timezone, --soft-delete, or a set's paths and selection with --set NAME (see 'azfs policy set --help')")
		}
		var req policy.Request
		if windowChange {
			d, err := retention.ParseDuration(*softDelete, false)
			if err != nil {
				return cli.Usagef("--soft-delete: %v", err)
			}
			req.Window = &policy.WindowChange{Next: d}
		}

		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		now := time.Now()
		curWindow, err := policy.Window(ctx, o.VaultRoot())
		if err != nil {
			return err
		}
		if req.Window != nil {
			req.Window.Current = curWindow
		}
		var state *policy.State // nil: the machine's points cannot be read here
		if pf.anyChange {
			name, err := machineName(o, *target.machine)
			if err != nil {
				return err
			}
			cur, err := policy.Current(ctx, o.VaultRoot(), name)
			if err != nil {
				return err
			}
			next, err := pf.apply(cur, name, fs.Args())
			if err != nil {
				return err
			}
			t := target.target()
			t.Machine = name
			if state, err = o.PreviewState(ctx, t, owner, warnf); err != nil {
				return err
			}
			change, err := policy.PlanChange(state, cur, next, now)
			if err != nil {
				return err
			}
			req.Change = &change
		}
		out, err := req.Report(*pf.set, curWindow, *dryRun, now)
		if err != nil {
			return err
		}
		if !*asJSON {
			if req.Change != nil {
				printChange(*req.Change, *pf.set)
			}
			if w := req.Window; w != nil {
				fmt.Printf("soft-delete window of the vault:\n  now: %s\n  new: %s\n", retention.FormatDuration(w.Current), retention.FormatDuration(w.Next))
			}
		}
		if *dryRun {
			msg := "dry run: nothing changed"
			if out.NeedsPIN {
				msg += " (the change needs a security PIN: --pin)"
			}
			fmt.Fprintln(os.Stderr, msg)
			return printIf(*asJSON, out)
		}
		// Everything that can be refused is checked before the PIN is spent.
		switch {
		case out.NeedsPIN && *pin == "":
			return fmt.Errorf("%w: the change %s: pass a security PIN from 'azfs vault pin' (--pin PIN); nothing was changed", access.ErrPIN, shortening(req, *asJSON))
		case !out.NeedsPIN && *pin != "":
			fmt.Fprintln(os.Stderr, "the change forgets no point the current policy keeps and shortens no window: no PIN needed, and the PIN was not used")
		}
		saved, err := policy.Commit(ctx, o.VaultRoot(), owner, req, func() error { return access.UsePIN(ctx, o.VaultRoot(), *pin, now) }, now)
		if saved.Seq != 0 {
			out.Saved = saved.Seq
			fmt.Fprintf(os.Stderr, "policy %d of %s saved\n", saved.Seq, saved.Machine)
		}
		if err != nil {
			return err
		}
		if w := req.Window; w != nil {
			fmt.Fprintf(os.Stderr, "soft-delete window of the vault: %s\n", retention.FormatDuration(w.Next))
		}
		switch {
		case !pf.anyChange:
		case state == nil:
			fmt.Fprintf(os.Stderr, "the policy applies at %s's next retention run ('azfs policy apply' where its points can be read)\n", saved.Machine)
		default:
			// The new policy takes effect now.
			run, err := applyRetention(ctx, o, false, *asJSON)
			if err != nil {
				return err
			}
			out.Forgotten = run.Forgotten
		}
		return printIf(*asJSON, out)
	}
	return cmd
}

// printIf prints v as JSON when asJSON is set.
func printIf(asJSON bool, v any) error {
	if !asJSON {
		return nil
	}
	return printJSON(v)
}

// printChange prints a change of a machine's policy (of set's rules, when
// set is given), and what it forgets when the points were read.
func printChange(c policy.Change, set string) {
	cur, next := c.Current, c.Next
	which := "the default policy"
	if !cur.IsDefault() {
		which = fmt.Sprintf("policy %d", cur.Seq)
	}
	if set == "" {
		fmt.Printf("policy of %s:\n  now (%s): %s\n  new: %s\n", next.Machine, which, describePolicy(cur), describePolicy(next))
	} else {
		before := "the default rules: " + describeRules(cur.EntryOrDefault(set))
		if sp, ok := cur.Entry(set); ok {
			before = describeRules(sp)
		}
		fmt.Printf("set %s of %s:\n  now (%s): %s\n  new: %s\n", set, next.Machine, which, before, describeRules(next.EntryOrDefault(set)))
	}
	if !c.Read {
		return
	}
	listed := ""
	if len(c.Newly) > 0 {
		listed = " (listed below)"
	}
	fmt.Printf("of %d live points the new policy forgets %d now: %d that the current policy keeps%s, %d that it forgets too\n",
		c.Live, len(c.Newly)+len(c.Already), len(c.Newly), listed, len(c.Already))
	printPoints("forget", c.Newly)
}

// shortening says why a request needs the PIN: the retention rules it
// lowers, the points it forgets that the current policy keeps (listed
// before, unless as JSON), a shorter soft-delete window.
func shortening(r policy.Request, asJSON bool) string {
	reasons := r.PINReasons()
	var why []string
	if len(reasons.Lowered) > 0 {
		why = append(why, "lowers retention ("+strings.Join(reasons.Lowered, ", ")+")")
	}
	if reasons.Forgets > 0 {
		listed := " (listed above)"
		if asJSON {
			listed = " ('policy set --dry-run' lists them)"
		}
		why = append(why, fmt.Sprintf("forgets %s the current policy keeps%s", cli.Count(reasons.Forgets, "point"), listed))
	}
	if reasons.WindowShortens {
		why = append(why, "shortens the soft-delete window")
	}
	return strings.Join(why, " and ")
}

func describePolicy(p policy.Policy) string {
	return fmt.Sprintf("%s; %s; in %s", p.Schedule, p.Retention, p.TimeZone)
}

// describeRules describes a set's entry on one line: what the agent backs
// up, what it leaves out, when, and what retention keeps.
func describeRules(sp policy.SetPolicy) string {
	var parts []string
	if sp.Scheduled() {
		what := quotedNames(sp.Paths)
		if len(sp.FilesFrom) > 0 {
			what = strings.TrimSpace(what + " files from " + quotedNames(sp.FilesFrom))
		}
		parts = append(parts, "back up "+what+" "+sp.Schedule.String())
		if flags := sp.Selection.Flags(); len(flags) > 0 {
			parts = append(parts, strings.Join(flags, " "))
		}
	} else {
		parts = append(parts, "no paths (manual backups with --set "+sp.Name+")")
	}
	return strings.Join(append(parts, sp.Retention.String()), "; ")
}

func newPolicyApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Forget the points a machine's retention no longer keeps",
		Example: `  azfs policy apply --dry-run
  azfs policy apply --machine web01`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, true)
	dryRun := fs.Bool("dry-run", false, "show what the policy forgets, and forget nothing")
	asJSON := fs.Bool("json", false, "print what was forgotten (with --dry-run: would be) as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		o, err := argslessPointsReader(ctx, fs, target, "usage: azfs policy apply [--machine NAME] [--dry-run] [--json]")
		if err != nil {
			return err
		}
		run, err := applyRetention(ctx, o, *dryRun, *asJSON)
		if err != nil {
			return err
		}
		return printIf(*asJSON, run)
	}
	return cmd
}

// argslessPointsReader checks that fs holds no argument (else usage), and
// opens the machine target names with open.PointsReader.
func argslessPointsReader(ctx context.Context, fs *pflag.FlagSet, target *targetFlags, usage string) (*open.Opened, error) {
	if fs.NArg() != 0 {
		return nil, cli.Usagef("%s", usage)
	}
	return open.PointsReader(ctx, target.target())
}

// applyRetention applies the policy of the machine o has open, or with
// dryRun tells what it would forget; it prints the points unless asJSON.
func applyRetention(ctx context.Context, o *open.Opened, dryRun, asJSON bool) (policy.RetentionRun, error) {
	s, err := o.StateToChange(ctx, warnf)
	if err != nil {
		return policy.RetentionRun{}, err
	}
	run, err := s.RunRetention(ctx, time.Now(), dryRun)
	if err != nil {
		return run, err
	}
	show := func(verb string) {
		if !asJSON {
			printPoints(verb, run.Points)
		}
	}
	switch {
	case dryRun:
		fmt.Fprintf(os.Stderr, "%s (policy %d: %s) would forget %d of %d live points; dry run: nothing forgotten\n",
			run.Machine, run.Policy, run.Retention, len(run.Points), run.LivePoints)
		show("forget")
	case len(run.Points) == 0:
		fmt.Fprintf(os.Stderr, "%s (policy %d: %s): nothing to forget among %d live points\n", run.Machine, run.Policy, run.Retention, run.LivePoints)
	default:
		show("forgot")
		fmt.Fprintf(os.Stderr, "%s (policy %d: %s): forgot %d of %d points; they stay recoverable ('azfs undelete') until %s\n",
			run.Machine, run.Policy, run.Retention, len(run.Points), run.LivePoints, run.RecoverableUntil.Local().Format("2006-01-02 15:04"))
	}
	return run, nil
}

func printPoints(verb string, points []*repo.Point) {
	w := bufio.NewWriter(os.Stdout)
	for _, p := range points {
		fmt.Fprintf(w, "%s %s  %s  set %s  %s\n", verb, p.ID.Short(), p.Time.Local().Format(repo.PointTimeLayout), setLabel(p), quotedNames(p.Paths))
	}
	w.Flush()
}

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/policy"
)

func newForgetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "forget POINT...",
		Short: "Forget points, recoverable for the soft-delete window (owner; needs a PIN)",
		Example: `  azfs forget --dry-run 2026-12-01
  azfs forget --machine web01 --pin 123456 3f2a9c0e latest
  azfs forget --tag env=test --pin 123456`,
	}
	fs := flags(cmd)
	target := addOwnerMachineFlags(fs)
	dryRun := fs.Bool("dry-run", false, "show what would be forgotten, and forget nothing")
	pin := fs.String("pin", "", "security `PIN` from 'azfs vault pin' (forgetting is an owner's deletion)")
	asJSON := fs.Bool("json", false, "print the points forgotten (or, with --dry-run, to be) as JSON, as 'points --json' lists them")
	tags := cli.AddTagFilterFlag(fs, "forget the points (with POINT...: those of them the selectors name)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		filter, err := tags.Filter()
		if err != nil {
			return err
		}
		o, owner, s, err := openOwnerState(ctx, fs, target, !filter.Empty(),
			"usage: azfs forget [--machine NAME] [--dry-run] [--tag T...] --pin PIN POINT... (a point is an ID prefix, a date, a time or latest; with --tag, no POINT: every point with the tags)")
		if err != nil {
			return err
		}
		points, err := s.SelectToForget(filter, fs.Args(), time.Local)
		if err != nil {
			return err
		}
		if !*asJSON {
			printPoints("forget", points)
		}
		if *dryRun {
			if *asJSON {
				if err := printPointsJSON(points); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "dry run: %s of %s would be forgotten; nothing forgotten\n", cli.Count(len(points), "point"), s.Machine)
			return nil
		}
		if *pin == "" {
			return fmt.Errorf("%w: forgetting points needs a security PIN from 'azfs vault pin' (--pin PIN); nothing was forgotten", access.ErrPIN)
		}
		now := time.Now()
		until, err := s.ForgetSelected(ctx, owner, points, func() error { return access.UsePIN(ctx, o.VaultRoot(), *pin, now) }, now)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := printPointsJSON(points); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "forgot %s of %s: hidden now, recoverable with 'azfs undelete' until %s, then prune may delete them\n",
			cli.Count(len(points), "point"), s.Machine, until.Local().Format("2006-01-02 15:04"))
		return nil
	}
	return cmd
}

func newUndeleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "undelete POINT...",
		Short: "Bring forgotten points back (owner)",
		Example: `  azfs points --deleted
  azfs undelete --machine web01 3f2a9c0e`,
	}
	fs := flags(cmd)
	target := addOwnerMachineFlags(fs)
	asJSON := fs.Bool("json", false, "print the points undeleted as JSON, as 'points --json' lists them")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		o, owner, s, err := openOwnerState(ctx, fs, target, false, "usage: azfs undelete [--machine NAME] POINT... (see 'azfs points --deleted')")
		if err != nil {
			return err
		}
		points, err := s.SelectToUndelete(fs.Args(), time.Local)
		if err != nil {
			return err
		}
		if err := policy.Undelete(ctx, o.PolicyMachine(nil), owner, policy.IDs(points), time.Now()); err != nil {
			return err
		}
		if *asJSON {
			if err := printPointsJSON(points); err != nil {
				return err
			}
		} else {
			printPoints("undeleted", points)
		}
		fmt.Fprintf(os.Stderr, "undeleted %s of %s: live again, and retention does not forget them again (only 'azfs forget' does)\n", cli.Count(len(points), "point"), s.Machine)
		return nil
	}
	return cmd
}

// openOwnerState checks that fs's arguments are at least one, unless
// argsOptional (else usage), and opens the machine target names with the
// owner's keys and what became of its points (open.OwnerState).
func openOwnerState(ctx context.Context, fs *pflag.FlagSet, target *targetFlags, argsOptional bool, usage string) (*open.Opened, *keys.OwnerKeys, *policy.State, error) {
	if fs.NArg() == 0 && !argsOptional {
		return nil, nil, nil, cli.Usagef("%s", usage)
	}
	return open.OwnerState(ctx, target.target(), warnf)
}

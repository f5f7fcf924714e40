package policy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
)

// ErrNoRuleLeft reports an edit that drops a retention's last rule: a
// retention that keeps every point is said so (Edit.KeepAll).
var ErrNoRuleLeft = errkind.New(errkind.Invalid, "the retention would have no rule left: to keep every point say --keep-all")

// Edit is a change to a machine's policy, as 'azfs policy set' asks for
// it: what it names replaces that, what it leaves nil stays.
type Edit struct {
	// TimeZone, when not "", is the machine's new time zone. A first
	// policy (the machine has the default) takes FirstZone otherwise.
	TimeZone, FirstZone string
	// Set names the backup set whose rules change; "": the default rules.
	// A set without an entry starts from the default rules.
	Set string
	// Schedule replaces the schedule.
	Schedule *Schedule
	// Keep changes the retention.
	Keep RetentionEdit
	// Paths and FilesFrom, when either is not nil, replace the set's
	// (NoPaths drops both): the paths are absolute, on the machine.
	Paths, FilesFrom []string
	NoPaths          bool
	// Selection replaces the set's selection.
	Selection *selection.Spec
}

// RetentionEdit changes a retention: KeepAll drops every rule, then each
// rule given replaces that rule (0 drops it), the others stay.
type RetentionEdit struct {
	KeepAll                                      bool
	Last, Hourly, Daily, Weekly, Monthly, Yearly *int
	Within                                       *time.Duration
}

// given reports whether e changes any rule.
func (e RetentionEdit) given() bool {
	return e.Within != nil || slices.ContainsFunc(e.counts(), func(n *int) bool { return n != nil })
}

func (e RetentionEdit) counts() []*int {
	return []*int{e.Last, e.Hourly, e.Daily, e.Weekly, e.Monthly, e.Yearly}
}

// apply returns r changed by e; a change that leaves no rule gives
// ErrNoRuleLeft.
func (e RetentionEdit) apply(r retention.Retention) (retention.Retention, error) {
	if e.KeepAll {
		r = retention.Retention{}
	}
	if !e.given() {
		return r, nil
	}
	for i, rule := range []*int{&r.KeepLast, &r.KeepHourly, &r.KeepDaily, &r.KeepWeekly, &r.KeepMonthly, &r.KeepYearly} {
		if n := e.counts()[i]; n != nil {
			*rule = *n
		}
	}
	if e.Within != nil {
		r.KeepWithin = *e.Within
	}
	if r.Empty() {
		return r, ErrNoRuleLeft
	}
	return r, nil
}

// Edited returns p, machine's policy, changed by e and validated.
func (p Policy) Edited(machine string, e Edit) (Policy, error) {
	next := p
	next.Machine = machine
	if p.IsDefault() {
		next.TimeZone = e.FirstZone
	}
	if e.TimeZone != "" {
		next.TimeZone = e.TimeZone
	}
	rules := func(sch *Schedule, ret *retention.Retention) error {
		if e.Schedule != nil {
			*sch = *e.Schedule
		}
		r, err := e.Keep.apply(*ret)
		*ret = r
		return err
	}
	if e.Set == "" {
		if err := rules(&next.Schedule, &next.Retention); err != nil {
			return next, err
		}
	} else {
		sp := p.EntryOrDefault(e.Set)
		if err := rules(&sp.Schedule, &sp.Retention); err != nil {
			return next, err
		}
		if e.NoPaths || e.Paths != nil || e.FilesFrom != nil {
			sp.Paths, sp.FilesFrom = nil, e.FilesFrom
			for _, path := range e.Paths {
				if !filepath.IsAbs(path) {
					return next, fmt.Errorf("path %q: give absolute paths, as they are on the machine", path)
				}
				sp.Paths = append(sp.Paths, filepath.Clean(path))
			}
		}
		if e.Selection != nil {
			sp.Selection = *e.Selection
		}
		next = next.WithEntry(sp)
	}
	return next, next.Validate()
}

// Request is what the owner asks 'azfs policy set' for: a machine's next
// policy (Change, from PlanChange; nil: the policy stays) and the vault's
// soft-delete window (Window; nil: it stays).
type Request struct {
	Change *Change
	Window *WindowChange
}

// WindowChange is the vault's soft-delete window now and as asked for.
type WindowChange struct{ Current, Next time.Duration }

// Shortens reports whether the window gets shorter.
func (w *WindowChange) Shortens() bool { return w != nil && w.Next < w.Current }

// NeedsPIN reports whether r needs the owner's security PIN: its policy
// change lowers a rule or forgets a point the current policy keeps, or
// the window gets shorter (PINReasons).
func (r Request) NeedsPIN() bool { return r.PINReasons().Any() }

// PINReasons are why a request needs the owner's security PIN.
type PINReasons struct {
	// Lowered names the retention rules the change lowers.
	Lowered []string
	// Forgets counts the live points the change forgets that the current
	// policy keeps.
	Forgets int
	// WindowShortens says the soft-delete window gets shorter.
	WindowShortens bool
}

// Any reports whether there is a reason: the PIN is needed.
func (p PINReasons) Any() bool { return len(p.Lowered) > 0 || p.Forgets > 0 || p.WindowShortens }

// PINReasons returns why r needs the owner's security PIN; none: it does
// not.
func (r Request) PINReasons() PINReasons {
	out := PINReasons{WindowShortens: r.Window.Shortens()}
	if c := r.Change; c != nil {
		out.Lowered, out.Forgets = c.Lowered, len(c.Newly)
	}
	return out
}

// Commit stores what r asks for at now, signed by owner: the machine's
// next policy, then the window. When r needs the PIN, spendPIN spends it
// first; the caller has checked everything else that can refuse, so that
// a refused change never costs the PIN. It returns the policy saved (zero
// when r changes none), also with an error from saving the window.
func Commit(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, r Request, spendPIN func() error, now time.Time) (Policy, error) {
	if r.NeedsPIN() {
		if err := spendPIN(); err != nil {
			return Policy{}, err
		}
	}
	var saved Policy
	if r.Change != nil {
		var err error
		if saved, err = Set(ctx, root, owner, r.Change.Next, now); err != nil {
			return Policy{}, err
		}
	}
	if r.Window != nil {
		if err := SetWindow(ctx, root, owner, r.Window.Next, now); err != nil {
			return saved, err
		}
	}
	return saved, nil
}

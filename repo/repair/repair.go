// Package repair puts a vault right where it can be put right, as the
// owner: it rebuilds a machine area's index from its pack trailers, moves
// the objects azfs reads that do not authenticate (junk anyone who may
// create objects can leave) into the area's quarantine, and reports what
// cannot be recovered: the files of the points that need data no copy
// holds. Nothing changes unless Options.Apply is set.
package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/storage"
)

// Options say what a repair does.
type Options struct {
	// Apply acts; without it the repair only says what it would do.
	Apply bool
	// ReadData makes the closing check authenticate every stored blob
	// (check --read-data) rather than the structure alone.
	ReadData bool
	// NewPassphrase, when set, wraps the key set the machine escrowed to
	// the owner in a new key slot of its area under this passphrase (and
	// KDF): the machine's points open with it wherever its slots are lost
	// or damaged. Old slots stay.
	NewPassphrase keys.Passphrase
	KDF           keys.KDF
}

// AreaReport is what the repair of one machine's area found and did.
type AreaReport struct {
	Machine string
	Applied bool
	// Config is what the repair found of the area's config.
	Config *ConfigReport
	// Slots are the IDs of the area's key slots, Unparsable those of
	// them that do not parse (damaged: skipped by every unlock).
	Slots, Unparsable []string
	// NewSlot is set when a new key slot under Options.NewPassphrase was
	// (or would be) written.
	NewSlot bool
	// Skipped says why the area's index, junk and check were left alone
	// (its config is lost and this is a dry run, or cannot be rebuilt);
	// Index is nil then.
	Skipped string
	Index   *IndexReport
	// Junk are the objects moved into quarantine (or that would be).
	Junk []Moved
	// Quarantine is what the area's quarantine holds (after the move,
	// when applied).
	Quarantine []storage.Info
	// Problems are what the checker finds after the repair (before it,
	// in a dry run): damage no copy in the vault recovers. Files of points
	// that need it are problems of What "file".
	Problems []check.Problem
	// Unchecked says why the checker did not run: the area is in
	// certificate mode and the owner's escrow reads no point.
	Unchecked error
}

// Moved is a junk object and where the repair moved it.
type Moved struct {
	repo.Junk
	To string // its name in quarantine; empty in a dry run, or when deleted for its size
}

// ErrPruneRunning refuses a repair that would race a prune of the area.
var ErrPruneRunning = errkind.New(errkind.Busy, "a prune of this machine is running (prune/lock is fresh): run repair when it has ended")

// pruneLock is the name of a running prune's lock in an area (package
// repo/prune), and pruneLockStale the age after which a prune takes it
// over as its holder's death.
const (
	pruneLock      = "prune/lock"
	pruneLockStale = 10 * time.Minute
)

// VaultReport is what the repair of a vault found and did: its root's
// config and each machine's area. Its JSON is 'azfs repair --json'.
type VaultReport struct {
	// Config is the root config's report, the caller's: the root is
	// repaired before anything else can be opened (repo/open's
	// OwnerForRepair).
	Config   *ConfigReport `json:"config"`
	Machines []*AreaReport `json:"machines"`
}

// Lost counts the problems no copy in the vault recovers, over every
// machine.
func (r *VaultReport) Lost() int {
	n := 0
	for _, m := range r.Machines {
		n += len(m.Problems)
	}
	return n
}

// Machines repairs the areas of the machines named, in turn, or of every
// machine area of the vault when names is empty, calling done with each
// report as it is made. With one machine, its failure is returned (and no
// report); with more, failed is told of each failure, the others go on,
// and the error names the machines that failed, returned with the report.
func Machines(ctx context.Context, root repo.Root, names []string, owner *keys.OwnerKeys, opts Options, done func(*AreaReport), failed func(name string, err error)) (*VaultReport, error) {
	if len(names) == 0 {
		var err error
		if names, err = repo.MachineAreas(ctx, root.Storage); err != nil {
			return nil, err
		}
	}
	out := &VaultReport{Machines: []*AreaReport{}}
	var failedNames []string
	for _, name := range names {
		rep, err := Machine(ctx, root, name, owner, opts)
		switch {
		case err != nil && len(names) == 1:
			return nil, fmt.Errorf("machine %s: %w", name, err)
		case err != nil:
			failed(name, err)
			failedNames = append(failedNames, name)
		default:
			out.Machines = append(out.Machines, rep)
			done(rep)
		}
	}
	if len(failedNames) > 0 {
		return out, fmt.Errorf("repair failed for %d of %d machines: %s", len(failedNames), len(names), strings.Join(failedNames, ", "))
	}
	return out, nil
}

// Machine repairs the area of machine name in the vault root st, whose
// config is root, with the owner's keys: its config first (AreaConfig),
// then, with a sound config, its index, junk and the check (Area).
func Machine(ctx context.Context, root repo.Root, name string, owner *keys.OwnerKeys, opts Options) (*AreaReport, error) {
	cfg, err := AreaConfig(ctx, root, name, owner, opts.Apply)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Left != "":
		return &AreaReport{Machine: name, Applied: opts.Apply, Config: cfg, Skipped: "its config cannot be rebuilt"}, nil
	case cfg.From != "" && !opts.Apply:
		return &AreaReport{Machine: name, Config: cfg, Skipped: "the rest is looked at once its config is rebuilt (--apply)"}, nil
	}
	v, err := root.OpenMachineAsOwner(ctx, name, owner)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	if opts.NewPassphrase != "" && v.Keys().WriteOnly() {
		return nil, fmt.Errorf("machine %s: %w", name, ErrWriteOnlySlot)
	}
	rep, err := Area(ctx, v, name, opts)
	if err != nil {
		return nil, err
	}
	rep.Config = cfg
	area := root.MachineStorage(name)
	if rep.Slots, rep.Unparsable, err = repo.KeySlots(ctx, area); err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	if opts.NewPassphrase != "" {
		rep.NewSlot = true
		if opts.Apply {
			if err := repo.AddPassphraseSlot(ctx, area, v.Keys(), opts.NewPassphrase, opts.KDF); err != nil {
				return nil, fmt.Errorf("machine %s: %w", name, err)
			}
		}
	}
	return rep, nil
}

// ErrWriteOnlySlot refuses a new key slot for a machine in certificate
// mode, whose escrow holds only the write-only keys of its registration.
var ErrWriteOnlySlot = errkind.New(errkind.Permission, "the machine is in certificate mode: its escrow holds write-only keys, and its points open with the certificate's private key, not a passphrase")

// Area repairs the area v of machine name, opened with keys that read its
// index (the owner's escrow): index first, then junk, then the check.
func Area(ctx context.Context, v *repo.Area, name string, opts Options) (*AreaReport, error) {
	rep := &AreaReport{Machine: name, Applied: opts.Apply}
	if opts.Apply {
		fi, err := v.Storage().Stat(ctx, pruneLock)
		switch {
		case err == nil && (fi.Modified.IsZero() || time.Since(fi.Modified) < pruneLockStale):
			return nil, ErrPruneRunning
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return nil, fmt.Errorf("machine %s: %w", name, err)
		}
	}
	var err error
	if rep.Index, err = rebuildIndex(ctx, v, opts.Apply); err != nil {
		return nil, fmt.Errorf("machine %s: rebuild index: %w", name, err)
	}
	err = v.FindJunk(ctx, func(j repo.Junk) error {
		m := Moved{Junk: j}
		if opts.Apply {
			to, err := v.Quarantine(ctx, j.Name)
			if errors.Is(err, storage.ErrNotFound) {
				return nil // gone meanwhile
			}
			if err != nil {
				return err
			}
			m.To = to
		}
		rep.Junk = append(rep.Junk, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("machine %s: quarantine: %w", name, err)
	}
	if rep.Quarantine, err = v.Quarantined(ctx); err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	res, err := check.Run(ctx, v, check.Options{ReadData: opts.ReadData})
	if errors.Is(err, repo.ErrWriteOnly) {
		rep.Unchecked = err
		return rep, nil
	}
	if err != nil && !errors.Is(err, check.ErrDamaged) {
		return nil, fmt.Errorf("machine %s: check: %w", name, err)
	}
	rep.Problems = res.Problems
	return rep, nil
}

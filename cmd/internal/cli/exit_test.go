package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage"
)

// TestExitCodeTable pins the table from error kind to exit code: a usage
// error exits 2, a partial backup 3, a cancellation (a signal) 130, every
// other kind 1.
func TestExitCodeTable(t *testing.T) {
	for k := errkind.Other; k <= errkind.Timeout; k++ {
		want := ExitError
		switch k {
		case errkind.Usage:
			want = ExitUsage
		case errkind.Partial:
			want = ExitPartial
		case errkind.Canceled:
			want = ExitInterrupted
		}
		if got := ExitCode(fmt.Errorf("op: %w", errkind.New(k, "x"))); got != want {
			t.Errorf("kind %v: exit %d, want %d", k, got, want)
		}
	}
}

// TestExitCode runs the errors commands return through the table.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("x"), ExitError},
		{"usage", Usagef("usage: azfs backup PATH..."), ExitUsage},
		{"wrapped usage", fmt.Errorf("flags: %w", Usagef("bad flag")), ExitUsage},
		{"partial backup", fmt.Errorf("backup: %w", fmt.Errorf("%w: 2 files unreadable", backup.ErrPartial)), ExitPartial},
		{"damaged", fmt.Errorf("open point: %w", repo.ErrDamaged), ExitError},
		{"wrong passphrase", keys.ErrWrongPassphrase, ExitError},
		{"not found", &storage.Error{Op: "load", Name: "config", Err: storage.ErrNotFound}, ExitError},
		{"canceled", context.Canceled, ExitInterrupted}, // the commands' only cancellation is a signal's
		{"interrupted", Interrupted(context.Canceled), ExitInterrupted},
		{"interrupted backup", fmt.Errorf("backup %w: no recovery point was committed", ErrInterrupted), ExitInterrupted},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
}

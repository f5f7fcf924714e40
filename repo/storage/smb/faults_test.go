package smb

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/integration/faulttrial"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/faults"
	"github.com/azfs/azfs/repo/storage/smb/smbtest"
)

// TestBackupsUnderFaults runs package faults' backup trials over a real
// share: backups of a changing tree into a directory of the share through
// storage that fails, loses answers, delays, and truncates or corrupts
// loads, with and without the retry wrapper the CLI puts over share
// vaults, and through one that also keeps half of failed saves. Each run
// either succeeds, and then the vault passes check --read-data (unless
// saves were partial), or fails; after every run, every point the share
// lists is whole and matches the tree as it was.
func TestBackupsUnderFaults(t *testing.T) {
	srv := smbtest.Shared(t) // skip here rather than in every subtest
	share := srv.NewShare(t)
	budget := faulttrial.Budget(t, 10*time.Second, 2*time.Second)
	dir := func(t testing.TB) storage.Storage {
		return newStore(t, share, "trials/"+strings.ToLower(rand.Text()))
	}
	faulttrial.RunBackups(t, []faulttrial.Setup{
		{Name: "retry", New: dir, Retry: true, Rates: faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.05, Corrupt: 0.05, MaxDelay: time.Millisecond}, ContractKept: true},
		{Name: "no-retry", New: dir, Rates: faults.Rates{Fail: 0.03, Lost: 0.03, Delay: 0.05, Truncate: 0.02, Corrupt: 0.02, MaxDelay: time.Millisecond}, ContractKept: true},
		{Name: "partial-retry", New: dir, Retry: true, Rates: faults.Rates{Fail: 0.05, Lost: 0.02, Partial: 0.05, Truncate: 0.02, Corrupt: 0.02}},
	}, budget)
}

package azblob

import (
	"testing"
	"time"

	"github.com/azfs/azfs/integration/faulttrial"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/faults"
)

// TestBackupsUnderFaults runs package faults' backup trials over Azurite:
// backups of a changing tree into a container through storage that fails,
// loses answers, delays, and truncates or corrupts loads, with and without
// the retry wrapper the CLI puts over blob vaults, and through one that
// also keeps half of failed saves. Each run either succeeds, and then the
// vault passes check --read-data (unless saves were partial), or fails;
// after every run, every point the container lists is whole and matches
// the tree as it was.
func TestBackupsUnderFaults(t *testing.T) {
	endpoint(t) // skip here rather than in every subtest
	budget := faulttrial.Budget(t, 10*time.Second, 2*time.Second)
	container := func(t testing.TB) storage.Storage {
		loc, _ := newContainer(t, "vault")
		return openStore(t, loc, Auth{ConnectionString: connString(t)})
	}
	faulttrial.RunBackups(t, []faulttrial.Setup{
		{Name: "retry", New: container, Retry: true, Rates: faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.05, Corrupt: 0.05, MaxDelay: time.Millisecond}, ContractKept: true},
		{Name: "no-retry", New: container, Rates: faults.Rates{Fail: 0.03, Lost: 0.03, Delay: 0.05, Truncate: 0.02, Corrupt: 0.02, MaxDelay: time.Millisecond}, ContractKept: true},
		{Name: "partial-retry", New: container, Retry: true, Rates: faults.Rates{Fail: 0.05, Lost: 0.02, Partial: 0.05, Truncate: 0.02, Corrupt: 0.02}},
	}, budget)
}

package access

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/mem"
)

// cheapKDF keeps vault creation and PIN hashing fast in tests.
var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const testPass keys.Passphrase = "correct horse battery staple"

// t0 is the tests' "now".
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// defaultPINKDF is pinKDF as the package sets it, before TestMain lowers it.
var defaultPINKDF = pinKDF

func TestMain(m *testing.M) {
	pinKDF = cheapKDF
	os.Exit(m.Run())
}

// testVault is a vault root in memory with its owner's keys.
type testVault struct {
	st    *mem.Store
	root  repo.Root
	owner *keys.OwnerKeys
}

func newTestVault(t testing.TB) testVault {
	t.Helper()
	st := mem.New()
	root, owner, err := repo.CreateVault(context.Background(), st, testPass, cheapKDF)
	if err != nil {
		t.Fatalf("CreateVault: %v", err)
	}
	return testVault{st: st, root: root, owner: owner}
}

// impostor returns other owner keys and a config that claims v's vault ID
// with them: what someone who can write the storage but does not hold the
// owner's keys can sign with.
func (v testVault) impostor(t testing.TB) (repo.Root, *keys.OwnerKeys) {
	t.Helper()
	other, err := keys.NewOwnerKeys(v.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	pub := other.Public()
	fake := v.root
	fake.Owner = &pub
	return fake, other
}

// TestParseAccess: the two kinds by name; anything else says what is.
func TestParseAccess(t *testing.T) {
	for _, s := range []Access{AccessBackup, AccessRestore} {
		if a, err := ParseAccess(string(s)); a != s || err != nil {
			t.Errorf("ParseAccess(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "admin", "Backup"} {
		if a, err := ParseAccess(s); a != "" || err == nil || err.Error() != fmt.Sprintf("must be backup or restore, not %q", s) {
			t.Errorf("ParseAccess(%q) = %q, %v; want an error", s, a, err)
		}
	}
}

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		a, need Access
		want    bool
	}{
		{AccessBackup, AccessBackup, true},
		{AccessBackup, AccessRestore, true},
		{AccessRestore, AccessRestore, true},
		{AccessRestore, AccessBackup, false},
		{"admin", AccessRestore, false},
		{AccessBackup, "admin", false},
		{"", "", false},
	} {
		if got := tc.a.Allows(tc.need); got != tc.want {
			t.Errorf("Access(%q).Allows(%q) = %v, want %v", tc.a, tc.need, got, tc.want)
		}
	}
}

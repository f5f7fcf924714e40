package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/mem"
)

// A machine name the vault does not hold is an error naming those it
// holds (issue 14: "no such machine in the vault: web02" named none).
func TestNoMachineNamesTheMachines(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	root, _, err := repo.CreateVault(ctx, st, testPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	_, err = root.UnlockMachine(ctx, "web02", testPass)
	if !errors.Is(err, repo.ErrNoMachine) || !strings.Contains(err.Error(), "the vault holds no machine") {
		t.Errorf("empty vault: %v", err)
	}
	for _, name := range []string{"web01", "db01"} {
		if _, err := root.RegisterMachine(ctx, name, testPass, cheapKDF, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = root.UnlockMachine(ctx, "web02", testPass)
	if !errors.Is(err, repo.ErrNoMachine) || !strings.HasSuffix(err.Error(), "web02 (the vault's machines: db01, web01)") {
		t.Errorf("UnlockMachine(web02): %v", err)
	}
}

// sessionWrap stands in for a certificate's public key.
func sessionWrap(secret, ad []byte) ([]byte, error) {
	var k keys.Secret
	return keys.SealOnce(k, secret, ad), nil
}

// TestStartBackupSession: a passphrase-mode vault needs nothing; a
// write-only machine refuses a vault with no certificate; a machine moves
// to the key epoch of a certificate it is not yet on (once, kept through
// keep), and then starts a session.
func TestStartBackupSession(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	root, _, err := repo.CreateVault(ctx, st, testPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	certA := repo.CertMode{ID: strings.Repeat("a", 64), Wrap: sessionWrap}
	certB := repo.CertMode{ID: strings.Repeat("b", 64), Wrap: sessionWrap}
	var kept []*keys.KeySet
	keep := func(ks *keys.KeySet) error {
		kept = append(kept, ks)
		return nil
	}
	pp, err := root.RegisterMachine(ctx, "pp", testPass, cheapKDF, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, moved, err := root.StartBackupSession(ctx, pp, "pp", nil, keep); err != nil || moved || v != pp || len(kept) != 0 {
		t.Fatalf("passphrase mode: %v, %v, %v (kept %d); want the area as it is", v, moved, err, len(kept))
	}
	wo, err := root.RegisterMachine(ctx, "wo", testPass, cheapKDF, &certA)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.StartBackupSession(ctx, wo, "wo", nil, keep); !errors.Is(err, repo.ErrNoCertificateForWriteOnly) {
		t.Errorf("write-only machine, no certificate: %v, want ErrNoCertificateForWriteOnly", err)
	}
	if v, moved, err := root.StartBackupSession(ctx, wo, "wo", &certA, keep); err != nil || moved || v != wo || len(kept) != 0 {
		t.Fatalf("on its certificate: %v, %v, %v (kept %d); want a session on the area as it is", v, moved, err, len(kept))
	}
	for _, c := range []struct {
		name string
		v    *repo.Area
	}{{"wo", wo}, {"pp", pp}} {
		kept = nil
		v, moved, err := root.StartBackupSession(ctx, c.v, c.name, &certB, keep)
		if err != nil || !moved || len(kept) != 1 {
			t.Fatalf("%s to certificate B: %v, %v (kept %d); want a move", c.name, moved, err, len(kept))
		}
		if got := v.Keys(); got.Certificate != certB.ID || !got.WriteOnly() || kept[0] != got {
			t.Errorf("%s: the area reopened under certificate %q (write-only %v), want B's epoch", c.name, got.Certificate, got.WriteOnly())
		}
		if _, err := root.MachineStorage(c.name).Stat(ctx, "certkeys/"+certB.ID); err != nil {
			t.Errorf("%s: B's key epoch is not stored for the certificate: %v", c.name, err)
		}
	}
}

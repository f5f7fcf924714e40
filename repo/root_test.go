package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

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

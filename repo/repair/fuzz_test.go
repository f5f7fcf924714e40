package repair_test

import (
	"context"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/repair"
	"github.com/azfs/azfs/repo/storage/mem"
)

// FuzzConfigCopy feeds arbitrary bytes to repair as a vault root's config
// and as its signed copy: repair never panics, and whatever it settles on
// is the vault of the owner's keys, never what the bytes claim.
func FuzzConfigCopy(f *testing.F) {
	ctx := context.Background()
	st := mem.New()
	root, owner, err := repo.CreateVault(ctx, st, testPass, cheapKDF)
	if err != nil {
		f.Fatal(err)
	}
	if err := repair.SaveConfigCopy(ctx, st, root.Config, owner); err != nil {
		f.Fatal(err)
	}
	copied, err := st.Load(ctx, repo.ConfigCopyName, 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	config, err := st.Load(ctx, "config", 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(config, copied)
	f.Add([]byte("{}"), []byte(`{"body":"e30=","sig":""}`))
	slot, err := root.OwnerSlots(ctx)
	if err != nil {
		f.Fatal(err)
	}
	slotBytes, err := st.Load(ctx, "keys/"+slot[0], 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	pub := owner.Public()
	f.Fuzz(func(t *testing.T, config, copied []byte) {
		st := mem.New()
		for name, b := range map[string][]byte{"config": config, repo.ConfigCopyName: copied, "keys/" + slot[0]: slotBytes} {
			if err := st.Save(ctx, name, b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := repair.RootIDCandidates(ctx, st); err != nil {
			t.Fatalf("RootIDCandidates: %v", err)
		}
		for _, apply := range []bool{false, true} {
			cfg, _, err := repair.RootConfig(ctx, st, owner, apply)
			if err != nil {
				return // a config of another format: refused, never rewritten
			}
			if cfg.ID != root.ID || cfg.Owner == nil || !cfg.Owner.Equal(pub) || cfg.Format != repo.FormatVersion {
				t.Fatalf("repair settled on %+v, not the owner's vault %s", cfg, root.ID)
			}
		}
		got, err := repo.ReadConfig(ctx, st)
		if err != nil || got.ID != root.ID {
			t.Fatalf("config after repair --apply: %+v, %v", got, err)
		}
		if _, err := unlockOwner(ctx, st, keys.Passphrase(testPass)); err != nil {
			t.Fatalf("owner passphrase after repair --apply: %v", err)
		}
	})
}

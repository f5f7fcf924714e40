package repair_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/repair"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

const testPass = "correct horse battery staple"

type rootFixture struct {
	st    *mem.Store
	root  repo.Root
	owner *keys.OwnerKeys
	area  repo.Config
}

// newRoot creates a vault root with machine "m", which backs up one file,
// and, with copies, the signed copies of both configs.
func newRoot(t *testing.T, copies bool) *rootFixture {
	t.Helper()
	ctx := context.Background()
	st := mem.New()
	root, owner, err := repo.CreateVault(ctx, st, testPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	v, err := root.RegisterMachine(ctx, "m", testPass, cheapKDF, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), testfiles.RandomBytes(10<<10, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Run(ctx, v, backup.Options{Paths: []string{dir}, Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	if copies {
		if err := repair.SaveConfigCopy(ctx, st, root.Config, owner); err != nil {
			t.Fatal(err)
		}
		if err := repair.SaveConfigCopy(ctx, root.MachineStorage("m"), v.Config(), owner); err != nil {
			t.Fatal(err)
		}
	}
	return &rootFixture{st: st, root: root, owner: owner, area: v.Config()}
}

func (f *rootFixture) replace(t *testing.T, name string, b []byte) {
	t.Helper()
	ctx := context.Background()
	if err := f.st.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	if b != nil {
		if err := f.st.Save(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
}

func sameConfig(t *testing.T, what string, got, want repo.Config) {
	t.Helper()
	g, _ := repo.EncodeConfig(got)
	w, _ := repo.EncodeConfig(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n%s\nwant\n%s", what, g, w)
	}
}

// Finding 8: a lost or damaged root config is rebuilt, from its signed copy
// or from the owner's keys, and is reported as lost (not "no vault") until
// then.
func TestRootConfigRebuilt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		copies bool
		config []byte // nil: deleted
		from   string
	}{
		{"deleted, with copy", true, nil, "its signed copy"},
		{"garbage, with copy", true, []byte("{\x00garbage"), "its signed copy"},
		{"deleted, no copy", false, nil, "the owner's keys"},
		{"another owner's keys", true, []byte(`{"format":1,"id":"x","owner":{"sign":"AAAA","escrow":"AAAA"}}`), "its signed copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRoot(t, tc.copies)
			f.replace(t, "config", tc.config)
			// A config naming other owner keys reads: clients refuse it
			// against the owner keys they trust.
			if _, err := repo.ReadConfig(ctx, f.st); !errors.Is(err, repo.ErrConfigLost) && tc.name != "another owner's keys" {
				t.Fatalf("ReadConfig of a lost config: %v, want ErrConfigLost", err)
			}
			cfg, rep, err := repair.RootConfig(ctx, f.st, f.owner, false)
			if err != nil {
				t.Fatal(err)
			}
			if rep.From != tc.from || rep.State == "sound" || rep.CopyWritten == tc.copies {
				t.Errorf("dry run: %+v, want rebuilt from %q", rep, tc.from)
			}
			if cfg.ID != f.root.ID || !cfg.Owner.Equal(*f.root.Owner) {
				t.Errorf("dry run: config %+v, want the vault's", cfg)
			}
			if _, err := f.st.Stat(ctx, "config"); (err == nil) != (tc.config != nil) {
				t.Errorf("dry run changed the config: %v", err)
			}
			if _, _, err := repair.RootConfig(ctx, f.st, f.owner, true); err != nil {
				t.Fatal(err)
			}
			got, err := repo.ReadConfig(ctx, f.st)
			if err != nil {
				t.Fatalf("ReadConfig after repair: %v", err)
			}
			if tc.copies {
				sameConfig(t, "rebuilt config", got, f.root.Config)
			} else if got.ID != f.root.ID || !got.Owner.Equal(*f.root.Owner) || got.Created.IsZero() {
				t.Errorf("rebuilt config %+v, want ID and owner of %+v", got, f.root)
			}
			if tc.config != nil {
				if b, err := f.st.Load(ctx, "quarantine/config", 0, -1); err != nil || string(b) != string(tc.config) {
					t.Errorf("the damaged config is not in quarantine: %q, %v", b, err)
				}
			}
			if _, rep, err := repair.RootConfig(ctx, f.st, f.owner, false); err != nil || rep.Acted() {
				t.Errorf("after repair: %+v, %v; want nothing to do", rep, err)
			}
			if _, err := unlockOwner(ctx, f.st, testPass); err != nil {
				t.Errorf("owner passphrase after repair: %v", err)
			}
		})
	}
}

// A machine area's config is rebuilt from its copy or from the escrow; an
// area whose registration never saved a config, and holds no data, is left
// alone.
func TestAreaConfigRebuilt(t *testing.T) {
	ctx := context.Background()
	for _, copies := range []bool{true, false} {
		f := newRoot(t, copies)
		f.replace(t, "machines/m/config", nil)
		if _, err := f.root.UnlockMachine(ctx, "m", testPass); !errors.Is(err, repo.ErrConfigLost) {
			t.Errorf("copies %v: unlock a machine whose config is lost: %v, want ErrConfigLost", copies, err)
		}
		rep, err := repair.AreaConfig(ctx, f.root, "m", f.owner, true)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "its signed copy", false: "the machine's escrow"}[copies]
		if rep.State != "missing" || rep.From != want {
			t.Errorf("copies %v: %+v, want missing, rebuilt from %q", copies, rep, want)
		}
		got, err := repo.ReadConfig(ctx, f.root.MachineStorage("m"))
		if err != nil {
			t.Fatal(err)
		}
		if copies {
			sameConfig(t, "rebuilt area config", got, f.area)
		} else if got.ID != f.area.ID || got.Chunker != f.area.Chunker || got.Vault != f.root.ID || got.Machine != "m" {
			t.Errorf("area config rebuilt from the escrow: %+v, want %+v", got, f.area)
		}
		if _, err := f.root.UnlockMachine(ctx, "m", testPass); err != nil {
			t.Errorf("copies %v: unlock the machine after repair: %v", copies, err)
		}
	}

	// A registration that stopped before its config: left alone.
	f := newRoot(t, false)
	if _, err := f.root.RegisterMachine(ctx, "half", testPass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	f.replace(t, "machines/half/config", nil)
	rep, err := repair.AreaConfig(ctx, f.root, "half", f.owner, true)
	if err != nil || rep.Left == "" || rep.From != "" {
		t.Errorf("half-registered area: %+v, %v; want it left alone", rep, err)
	}
	if _, err := f.st.Stat(ctx, "machines/half/config"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the half-registered area got a config: %v", err)
	}
	areas, err := repo.MachineAreas(ctx, f.st)
	if err != nil || !slices.Equal(areas, []string{"half", "m"}) {
		t.Errorf("MachineAreas = %q, %v", areas, err)
	}
}

// Without the root config, the vault ID comes from the signed copy or the
// machine areas' configs; only the right one opens an owner slot.
func TestRootIDCandidates(t *testing.T) {
	ctx := context.Background()
	f := newRoot(t, false)
	f.replace(t, "config", nil)
	ids, err := repair.RootIDCandidates(ctx, f.st)
	if err != nil || !slices.Equal(ids, []string{f.root.ID}) {
		t.Fatalf("candidates %q, %v; want the vault's ID from the machine's config", ids, err)
	}
	owner, err := repo.UnlockOwnerOf(ctx, f.st, ids[0], testPass)
	if err != nil || !owner.Public().Equal(*f.root.Owner) {
		t.Errorf("UnlockOwnerOf: %v", err)
	}
	if _, err := repo.UnlockOwnerOf(ctx, f.st, "0123", testPass); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("UnlockOwnerOf another ID: %v, want ErrWrongPassphrase", err)
	}
}

// A machine whose only key slot is damaged gets a new one from its
// escrow; its old slot stays.
func TestNewMachineSlot(t *testing.T) {
	ctx := context.Background()
	f := newRoot(t, true)
	slots, bad, err := repo.KeySlots(ctx, f.root.MachineStorage("m"))
	if err != nil || len(slots) != 1 || len(bad) != 0 {
		t.Fatalf("KeySlots: %q, %q, %v", slots, bad, err)
	}
	f.replace(t, "machines/m/keys/"+slots[0], []byte("{"))
	if _, err := f.root.UnlockMachine(ctx, "m", testPass); !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("unlock with the only slot damaged: %v, want ErrDamaged", err)
	}
	const newPass = "a brand new passphrase of the machine"
	opts := repair.Options{NewPassphrase: newPass, KDF: cheapKDF}
	rep, err := repair.Machine(ctx, f.root, "m", f.owner, opts)
	if err != nil || !rep.NewSlot || len(rep.Unparsable) != 1 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if _, err := f.root.UnlockMachine(ctx, "m", newPass); err == nil {
		t.Fatal("the dry run wrote a slot")
	}
	opts.Apply = true
	if _, err := repair.Machine(ctx, f.root, "m", f.owner, opts); err != nil {
		t.Fatal(err)
	}
	v, err := f.root.UnlockMachine(ctx, "m", newPass)
	if err != nil {
		t.Fatalf("unlock with the new passphrase: %v", err)
	}
	if points, err := v.Points(ctx); err != nil || len(points) != 1 {
		t.Errorf("points with the new slot: %d, %v", len(points), err)
	}
	if all, _, _ := repo.KeySlots(ctx, f.root.MachineStorage("m")); len(all) != 2 {
		t.Errorf("slots after: %q, want the damaged one and the new one", all)
	}
}

// unlockOwner opens the owner keys of the vault root st with pass.
func unlockOwner(ctx context.Context, st storage.Storage, pass keys.Passphrase) (*keys.OwnerKeys, error) {
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		return nil, err
	}
	return root.UnlockOwner(ctx, pass)
}

// TestMachines: 'azfs repair' without --machine repairs every machine in
// turn; one that fails is told and the others go on, the error naming
// it; with one machine named, its failure is the error.
func TestMachines(t *testing.T) {
	ctx := context.Background()
	f := newRoot(t, true)
	if _, err := f.root.RegisterMachine(ctx, "n", testPass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.root.RegisterMachine(ctx, "o", testPass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.root.MachineStorage("n").Delete(ctx, "escrow"); err != nil {
		t.Fatal(err)
	}
	var done, failed []string
	rep, err := repair.Machines(ctx, f.root, nil, f.owner, repair.Options{}, func(r *repair.AreaReport) { done = append(done, r.Machine) },
		func(name string, err error) { failed = append(failed, name) })
	if err == nil || err.Error() != "repair failed for 1 of 3 machines: n" {
		t.Errorf("error %v, want one naming n", err)
	}
	if rep == nil || len(rep.Machines) != 2 || !slices.Equal(done, []string{"m", "o"}) || !slices.Equal(failed, []string{"n"}) {
		t.Fatalf("report %+v, done %v, failed %v", rep, done, failed)
	}
	if rep.Lost() != 0 {
		t.Errorf("lost %d in sound areas", rep.Lost())
	}

	rep, err = repair.Machines(ctx, f.root, []string{"n"}, f.owner, repair.Options{}, func(*repair.AreaReport) { t.Error("done called") },
		func(string, error) { t.Error("failed called for the one machine named") })
	if rep != nil || err == nil || !strings.HasPrefix(err.Error(), "machine n: ") {
		t.Errorf("one machine failing: %+v, %v", rep, err)
	}
	rep, err = repair.Machines(ctx, f.root, []string{"o"}, f.owner, repair.Options{}, func(*repair.AreaReport) {}, nil)
	if err != nil || len(rep.Machines) != 1 || rep.Machines[0].Machine != "o" {
		t.Errorf("machine o alone: %+v, %v", rep, err)
	}
}

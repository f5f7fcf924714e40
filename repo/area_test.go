package repo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

// cheapKDF keeps vault creation and unlocking fast in tests.
var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const testPass keys.Passphrase = "correct horse battery staple"

func newVault(t testing.TB, st storage.Storage) *repo.Area {
	t.Helper()
	v, err := repo.Create(context.Background(), st, testPass, cheapKDF)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return v
}

// reopen opens the vault in st afresh, as another process would, with its
// index loaded.
func reopen(t testing.TB, v *repo.Area) *repo.Area {
	t.Helper()
	ctx := context.Background()
	fresh, err := repo.Open(ctx, v.Storage(), v.Keys())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := fresh.LoadIndex(ctx); err != nil {
		t.Fatalf("LoadIndex: %v", err)
	}
	return fresh
}

// names lists the objects under prefix.
func names(t testing.TB, st storage.Storage, prefix string) []string {
	t.Helper()
	var out []string
	err := st.List(context.Background(), prefix, func(fi storage.Info) error {
		out = append(out, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", prefix, err)
	}
	return out
}

func deleteAll(t testing.TB, st storage.Storage, prefix string) {
	t.Helper()
	for _, name := range names(t, st, prefix) {
		if err := st.Delete(context.Background(), name); err != nil {
			t.Fatalf("Delete(%s): %v", name, err)
		}
	}
}

func TestCreateUnlockOpen(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)

	cfg := v.Config()
	if cfg.Format != repo.FormatVersion || len(cfg.ID) != 32 || cfg.Created.IsZero() || v.ID() != cfg.ID {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.Chunker.Min != repo.ChunkerParams.Min || cfg.Chunker.Avg != repo.ChunkerParams.Avg || cfg.Chunker.Max != repo.ChunkerParams.Max {
		t.Errorf("chunker params = %+v, want %+v", cfg.Chunker, repo.ChunkerParams)
	}
	if v.Keys().Vault != cfg.ID {
		t.Errorf("key set belongs to %q, vault is %q", v.Keys().Vault, cfg.ID)
	}
	read, err := repo.ReadConfig(ctx, st)
	if err != nil || read.ID != cfg.ID || !read.Created.Equal(cfg.Created) {
		t.Errorf("ReadConfig = %+v, %v", read, err)
	}
	if slots := names(t, st, "keys/"); len(slots) != 1 {
		t.Errorf("key slots: %v, want one", slots)
	}

	ks, err := repo.Unlock(ctx, st, testPass)
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if *ks != *v.Keys() {
		t.Fatalf("Unlock returned another key set")
	}
	opened, err := repo.Open(ctx, st, ks)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if opened.ID() != v.ID() || opened.Storage() != st || opened.Index().Len() != 0 {
		t.Errorf("opened vault: ID %s, index %d", opened.ID(), opened.Index().Len())
	}

	// A second passphrase opens the same keys; the first still works.
	if err := repo.AddPassphraseSlot(ctx, st, ks, "a second long passphrase", cheapKDF); err != nil {
		t.Fatalf("AddPassphraseSlot: %v", err)
	}
	for _, pass := range []keys.Passphrase{testPass, "a second long passphrase"} {
		got, err := repo.Unlock(ctx, st, pass)
		if err != nil || *got != *ks {
			t.Errorf("Unlock with %d-char passphrase after adding a slot: %v", len(pass), err)
		}
	}
}

func TestUnlockOpenErrors(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)

	if _, err := repo.Unlock(ctx, st, "not the passphrase at all"); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}

	other := newVault(t, mem.New())
	if _, err := repo.Open(ctx, st, other.Keys()); !errors.Is(err, repo.ErrForeignVault) {
		t.Errorf("Open with another vault's keys: err = %v, want ErrForeignVault", err)
	}
	// The other vault's slot copied in does not unlock this vault either:
	// slots are bound to their vault.
	for _, name := range names(t, other.Storage(), "keys/") {
		b, err := other.Storage().Load(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Save(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := repo.Unlock(ctx, st, testPass)
	if err != nil || *got != *v.Keys() {
		t.Errorf("Unlock with a foreign slot present = %v; want this vault's keys", err)
	}

	if _, err := repo.Create(ctx, st, testPass, cheapKDF); !errors.Is(err, repo.ErrVaultExists) {
		t.Errorf("Create twice: err = %v, want ErrVaultExists", err)
	}
	if _, err := repo.Create(ctx, mem.New(), "short", cheapKDF); !errors.Is(err, keys.ErrShortPassphrase) {
		t.Errorf("Create with a short passphrase: err = %v, want ErrShortPassphrase", err)
	}
}

func TestNoVault(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	if _, err := repo.ReadConfig(ctx, st); !errors.Is(err, repo.ErrNoVault) {
		t.Errorf("ReadConfig on empty storage: err = %v, want ErrNoVault", err)
	}
	if _, err := repo.Unlock(ctx, st, testPass); !errors.Is(err, repo.ErrNoVault) {
		t.Errorf("Unlock on empty storage: err = %v, want ErrNoVault", err)
	}
	ks, err := keys.NewKeySet("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, st, ks); !errors.Is(err, repo.ErrNoVault) {
		t.Errorf("Open on empty storage: err = %v, want ErrNoVault", err)
	}
}

func TestReadConfigDamaged(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		config  string
		damaged bool
	}{
		{"not json", "garbage", true},
		{"no id", `{"format":1}`, true},
		{"future format", `{"format":2,"id":"abc"}`, false},
	} {
		st := mem.New()
		if err := st.Save(ctx, "config", []byte(tc.config)); err != nil {
			t.Fatal(err)
		}
		_, err := repo.ReadConfig(ctx, st)
		if err == nil || errors.Is(err, repo.ErrDamaged) != tc.damaged {
			t.Errorf("%s: ReadConfig err = %v, want error (damaged: %v)", tc.name, err, tc.damaged)
		}
		if tc.name == "future format" && (err == nil || !strings.Contains(err.Error(), "format 2")) {
			t.Errorf("future format: error %v should name the format", err)
		}
	}

	// A vault with a config but no key slots is damaged.
	st := mem.New()
	cfg, _ := json.Marshal(map[string]any{"format": 1, "id": "abc"})
	if err := st.Save(ctx, "config", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Unlock(ctx, st, testPass); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("Unlock without key slots: err = %v, want ErrDamaged", err)
	}
}

func TestCreateFailsOnStorage(t *testing.T) {
	st := &storagetest.FailingSaves{Storage: mem.New(), Fail: func(name string) bool { return name == "config" }}
	if _, err := repo.Create(context.Background(), st, testPass, cheapKDF); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("Create with config save failing: err = %v, want the storage error", err)
	}
	if _, err := repo.ReadConfig(context.Background(), st); !errors.Is(err, repo.ErrNoVault) {
		t.Errorf("after a failed Create: ReadConfig err = %v, want ErrNoVault", err)
	}
}

func TestPackTrailerErrors(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, mem.New())
	if _, _, err := v.PackTrailer(ctx, keys.ID{1}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing pack: err = %v, want ErrNotFound", err)
	}
	short := keys.ID{2}
	if err := v.Storage().Save(ctx, "data/"+short.String()[:2]+"/"+short.String(), []byte("tiny")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.PackTrailer(ctx, short); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("4-byte pack: err = %v, want ErrDamaged", err)
	}
	garbage := keys.ID{3}
	if err := v.Storage().Save(ctx, "data/"+garbage.String()[:2]+"/"+garbage.String(), bytes.Repeat([]byte("AZP1"), 100)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.PackTrailer(ctx, garbage); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("garbage pack: err = %v, want ErrDamaged", err)
	}
	if _, err := v.LoadBlob(ctx, keys.KindData, keys.ID{9}); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("LoadBlob of an unindexed blob: err = %v, want ErrDamaged", err)
	}
}

func TestUnlockSkipsUnusableSlots(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	// A damaged slot and a slot of an unknown kind sort before and after
	// the real one; neither stops the good slot from opening.
	for _, name := range []string{"keys/0000000000000000", "keys/ffffffffffffffff"} {
		if err := st.Save(ctx, name, []byte(`{"kind":"fido2"}`)); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := repo.Unlock(ctx, st, testPass)
	if err != nil || *ks != *v.Keys() {
		t.Fatalf("Unlock with unusable slots beside a good one: %v", err)
	}
	if _, err := repo.Unlock(ctx, st, "not the passphrase at all"); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase with unusable slots: err = %v, want ErrWrongPassphrase", err)
	}
	// With only unusable slots the vault is damaged, not the passphrase wrong.
	for _, name := range names(t, st, "keys/") {
		b, err := st.Load(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("fido2")) {
			continue
		}
		if err := st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.Unlock(ctx, st, testPass); !errors.Is(err, repo.ErrDamaged) || errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("only unusable slots: err = %v, want ErrDamaged", err)
	}
}

func TestLoadIndexSkipsDamagedFiles(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 1)
	writeBlobs(t, v, blobs)
	// A sealed-looking index file that does not authenticate.
	bad := keys.ID{0x12, 0x34}
	if err := st.Save(ctx, "index/"+bad.String(), testfiles.RandomBytes(200, 3)); err != nil {
		t.Fatal(err)
	}
	fresh, err := repo.Open(ctx, st, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	err = fresh.LoadIndex(ctx)
	if !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), bad.Short()) {
		t.Errorf("LoadIndex with a damaged index file: err = %v, want ErrDamaged naming %s", err, bad.Short())
	}
	if fresh.Index().Len() != len(blobs) {
		t.Errorf("LoadIndex loaded %d blobs beside the damaged file, want %d", fresh.Index().Len(), len(blobs))
	}
}

func TestListPacksIgnoresForeignNames(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	w := v.NewWriter(ctx, 1)
	plain := []byte("one blob")
	id := v.Keys().ID(keys.KindData, plain)
	if _, err := w.Save(ctx, keys.KindData, id, plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs := names(t, st, "data/")
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	good := keys.ID{0xcd}
	for _, name := range []string{"data/README", "data/zz/" + good.String(), "data/" + good.String(), "data/cd/nothex"} {
		if err := st.Save(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := v.ListPacks(ctx)
	if err != nil {
		t.Fatalf("ListPacks: %v", err)
	}
	if len(ids) != 1 || "data/"+ids[0].String()[:2]+"/"+ids[0].String() != packs[0] {
		t.Errorf("ListPacks = %v, want only %s", ids, packs[0])
	}
}

func TestAdoptOrphanPacksInMemory(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	blobs := testBlobs(v.Keys(), 0)
	writeBlobs(t, v, blobs)
	deleteAll(t, st, "index/")
	fresh := reopen(t, v)
	n, err := fresh.AdoptOrphanPacks(ctx, false)
	if err != nil || n != 2 {
		t.Fatalf("AdoptOrphanPacks(persist=false) = %d, %v; want 2", n, err)
	}
	checkBlobs(t, fresh, blobs)
	if idx := names(t, st, "index/"); len(idx) != 0 {
		t.Errorf("AdoptOrphanPacks without persist wrote index files %v", idx)
	}
}

package signed_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

type body struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// TestSaveLoad: a record loads under its owner and context only; anything
// else, or a record too large, is damage; a missing one is not found.
func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	owner, err := keys.NewOwnerKeys("vault")
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.NewOwnerKeys("vault")
	if err != nil {
		t.Fatal(err)
	}
	want := body{Name: "web01", N: 7}
	if err := signed.Save(ctx, st, "records/a", owner, "test", want); err != nil {
		t.Fatal(err)
	}
	var got body
	if err := signed.Load(ctx, st, "records/a", owner.Public(), "test", &got); err != nil || got != want {
		t.Fatalf("Load: %+v, %v", got, err)
	}
	if err := signed.Save(ctx, st, "records/a", owner, "test", want); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Save over an existing record: %v, want ErrExists", err)
	}
	for what, err := range map[string]error{
		"another context": signed.Load(ctx, st, "records/a", owner.Public(), "other", &got),
		"another owner":   signed.Load(ctx, st, "records/a", other.Public(), "test", &got),
	} {
		if !errors.Is(err, repo.ErrDamaged) || !errors.Is(err, keys.ErrSignature) {
			t.Errorf("%s: %v, want damaged (a bad signature)", what, err)
		}
	}
	if err := st.Save(ctx, "records/big", bytes.Repeat([]byte{' '}, signed.MaxRecord+1)); err != nil {
		t.Fatal(err)
	}
	if err := signed.Load(ctx, st, "records/big", owner.Public(), "test", &got); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("oversized record: %v, want damaged", err)
	}
	if err := signed.Load(ctx, st, "records/none", owner.Public(), "test", &got); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing record: %v, want not found", err)
	}
	var unverified body
	if err := signed.DecodeUnverified(ctx, st, "records/a", &unverified); err != nil || unverified != want {
		t.Errorf("DecodeUnverified: %+v, %v", unverified, err)
	}
}

// TestVersion: a record is written with the format's version; one written
// before the envelope carried a version (no "v") is version 1 and loads;
// one of a later version is refused as damaged.
func TestVersion(t *testing.T) {
	ctx := context.Background()
	owner, err := keys.NewOwnerKeys("vault")
	if err != nil {
		t.Fatal(err)
	}
	b, err := signed.Encode(owner, "test", body{Name: "web01"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"v":1,`)) {
		t.Errorf("Encode wrote %s, want version 1", b)
	}
	st := mem.New()
	for name, rec := range map[string][]byte{
		"unversioned": bytes.Replace(b, []byte(`"v":1,`), nil, 1),
		"later":       bytes.Replace(b, []byte(`"v":1,`), []byte(`"v":2,`), 1),
	} {
		if err := st.Save(ctx, name, rec); err != nil {
			t.Fatal(err)
		}
	}
	var got body
	if err := signed.Load(ctx, st, "unversioned", owner.Public(), "test", &got); err != nil || got.Name != "web01" {
		t.Errorf("a record without a version: %+v, %v", got, err)
	}
	if err := signed.Load(ctx, st, "later", owner.Public(), "test", &got); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("a record of version 2: %v, want damaged", err)
	}
}

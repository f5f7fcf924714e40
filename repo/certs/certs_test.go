package certs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/keys/cert/certtest"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
)

func seed(base byte) keys.Secret {
	var s keys.Secret
	for i := range s {
		s[i] = base + byte(i)
	}
	return s
}

// The fixed owners of the tests and of the seed corpus in testdata/fuzz.
func testOwner() *keys.OwnerKeys {
	return &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: seed(0x10), Escrow: seed(0x30)}
}

func otherOwner() *keys.OwnerKeys {
	return &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: seed(0x11), Escrow: seed(0x31)}
}

// TestAddCurrent: the newest certificate the owner added is current, and
// List returns every verified one in order.
func TestAddCurrent(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	owner := testOwner()
	if _, err := Current(ctx, st, owner.Public()); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("Current of a passphrase-mode vault: %v, want ErrNoCertificate", err)
	}
	ec, rsa := certtest.Certificate(t, "ec.crt"), certtest.Certificate(t, "rsa.crt")
	for _, c := range []*cert.Certificate{ec, rsa} {
		if err := Add(ctx, st, owner, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := Add(ctx, st, owner, rsa); err == nil {
		t.Error("Add of the current certificate again succeeded")
	}
	cur, err := Current(ctx, st, owner.Public())
	if err != nil || cur.ID() != rsa.ID() {
		t.Fatalf("Current: %v, %v; want the RSA certificate", cur, err)
	}
	list, err := List(ctx, st, owner.Public())
	if err != nil || len(list) != 2 || list[0].Seq != 1 || list[0].ID() != ec.ID() || list[1].Seq != 2 || list[1].ID() != rsa.ID() {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if _, err := Current(ctx, st, otherOwner().Public()); !errors.Is(err, repo.ErrDamaged) || !errors.Is(err, keys.ErrSignature) {
		t.Errorf("Current under other owner keys: %v, want damaged (bad signature)", err)
	}
	if list, err := List(ctx, st, otherOwner().Public()); err != nil || len(list) != 0 {
		t.Errorf("List under other owner keys: %+v, %v; want none", list, err)
	}
}

// TestCurrentRefuses: what a storage can do to the list (replay an older
// certificate as the newest, plant one, name a certificate by another's
// ID) makes Current fail as damaged; it never falls back to an older
// certificate. A body that does not decode is skipped (format.md §13.3).
func TestCurrentRefuses(t *testing.T) {
	ctx := context.Background()
	owner := testOwner()
	ec, rsa := certtest.Certificate(t, "ec.crt"), certtest.Certificate(t, "rsa.crt")
	planted, err := signed.Encode(otherOwner(), signContext, body{Seq: 2, ID: rsa.ID(), PEM: rsa.PEM()})
	if err != nil {
		t.Fatal(err)
	}
	mismatched, err := signed.Encode(owner, signContext, body{Seq: 2, ID: ec.ID(), PEM: rsa.PEM()})
	if err != nil {
		t.Fatal(err)
	}
	legacyPlanted := legacyObjectBytes(t, otherOwner(), 2, rsa)
	legacyReplayed := legacyObjectBytes(t, owner, 1, rsa)
	for what, newest := range map[string][]byte{
		"replayed":              nil, // the first object, copied
		"planted":               planted,
		"ID not its DER":        mismatched,
		"legacy form, planted":  legacyPlanted,
		"legacy form, replayed": legacyReplayed,
	} {
		st := mem.New()
		if err := Add(ctx, st, owner, ec); err != nil {
			t.Fatal(err)
		}
		if newest == nil {
			if newest, err = st.Load(ctx, Prefix+"000001", 0, -1); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Save(ctx, Prefix+"000002", newest); err != nil {
			t.Fatal(err)
		}
		if c, err := Current(ctx, st, owner.Public()); !errors.Is(err, repo.ErrDamaged) {
			t.Errorf("%s: Current = %v, %v; want damaged", what, c, err)
		}
		if list, err := List(ctx, st, owner.Public()); err != nil || len(list) != 1 || list[0].ID() != ec.ID() {
			t.Errorf("%s: List = %+v, %v; want the owner's one", what, list, err)
		}
	}
	st := mem.New()
	if err := Add(ctx, st, owner, ec); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, Prefix+"000002", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if c, err := Current(ctx, st, owner.Public()); err != nil || c.ID() != ec.ID() {
		t.Errorf("after an object that does not decode: Current = %v, %v; want the one before", c, err)
	}
}

// legacyObjectBytes is a certificate object in the form azfs wrote before
// certificates were signed records (kept here only to test the migration,
// format.md §4.10).
func legacyObjectBytes(t testing.TB, owner *keys.OwnerKeys, seq int, c *cert.Certificate) []byte {
	t.Helper()
	b, err := json.Marshal(legacyObject{ID: c.ID(), PEM: c.PEM(), Sig: owner.Sign(signContext, legacyMessage(seq, c.ID(), c.PEM()))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLegacyCertificates: a vault whose certificates were written in the
// form before signed records still opens: its current certificate
// verifies, and the next certificate added is a signed record after it.
func TestLegacyCertificates(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	owner := testOwner()
	ec, rsa := certtest.Certificate(t, "ec.crt"), certtest.Certificate(t, "rsa.crt")
	if err := st.Save(ctx, Prefix+"000001", legacyObjectBytes(t, owner, 1, ec)); err != nil {
		t.Fatal(err)
	}
	if c, err := Current(ctx, st, owner.Public()); err != nil || c.ID() != ec.ID() {
		t.Fatalf("Current of a legacy vault: %v, %v", c, err)
	}
	if err := Add(ctx, st, owner, ec); err == nil {
		t.Error("Add of the current (legacy) certificate again succeeded")
	}
	if err := Add(ctx, st, owner, rsa); err != nil {
		t.Fatal(err)
	}
	b, err := st.Load(ctx, Prefix+"000002", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := signed.Decode(b); err != nil || rec.Version != signed.Version || rec.Body == nil {
		t.Errorf("the certificate added is not a signed record: %s (%v)", b, err)
	}
	if c, err := Current(ctx, st, owner.Public()); err != nil || c.ID() != rsa.ID() {
		t.Fatalf("Current after adding: %v, %v", c, err)
	}
	list, err := List(ctx, st, owner.Public())
	if err != nil || len(list) != 2 || list[0].ID() != ec.ID() || list[1].ID() != rsa.ID() {
		t.Fatalf("List: %+v, %v", list, err)
	}
}

// FuzzDecode: a certificate object verifies only when the owner signed it
// for its place, and it then holds the certificate its ID names.
func FuzzDecode(f *testing.F) {
	owner := testOwner()
	c := certtest.Certificate(f, "ec.crt")
	valid, err := signed.Encode(owner, signContext, body{Seq: 1, ID: c.ID(), PEM: c.PEM()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(legacyObjectBytes(f, owner, 1, c))
	f.Add([]byte(`{"id":"short","pem":"","sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decode(b, 1, owner.Public())
		if err != nil {
			if !errors.Is(err, repo.ErrDamaged) {
				t.Fatalf("error %v does not wrap ErrDamaged", err)
			}
			return
		}
		if got.ID() != c.ID() {
			t.Fatalf("certificate %s verifies, but the owner never signed it", got.ID())
		}
		if _, err := decode(b, 2, owner.Public()); err == nil {
			t.Fatal("a certificate signed for place 1 verifies at place 2")
		}
		if _, err := decode(b, 1, otherOwner().Public()); err == nil {
			t.Fatal("a certificate verifies under owner keys that never signed it")
		}
	})
}

// TestBaselineVault: a vault root written by azfs 8cf8197 (testdata/
// baseline-vault, certificates in the legacy form) opens with today's
// code: its certificate is current and verifies under its owner keys, and
// a rotation by its owner appends a signed record after it.
func TestBaselineVault(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "baseline-vault"))); err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	ec, rsa := certtest.Certificate(t, "ec.crt"), certtest.Certificate(t, "rsa.crt")
	if c, err := Current(ctx, st, *root.Owner); err != nil || c.ID() != ec.ID() {
		t.Fatalf("Current of the baseline vault: %v, %v; want the EC certificate", c, err)
	}
	pass, err := os.ReadFile(filepath.Join("testdata", "baseline-vault.passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	owner, err := root.UnlockOwner(ctx, keys.Passphrase(strings.TrimRight(string(pass), "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := Add(ctx, st, owner, rsa); err != nil {
		t.Fatal(err)
	}
	b, err := st.Load(ctx, Prefix+"000002", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := signed.Decode(b); err != nil || rec.Body == nil {
		t.Errorf("the rotation did not write a signed record: %s (%v)", b, err)
	}
	list, err := List(ctx, st, *root.Owner)
	if err != nil || len(list) != 2 || list[0].ID() != ec.ID() || list[1].ID() != rsa.ID() {
		t.Fatalf("List after the rotation: %+v, %v", list, err)
	}
}

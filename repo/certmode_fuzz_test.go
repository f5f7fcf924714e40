package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage/mem"
)

// Certificate-mode objects (certificates/<seq>, certkeys/<cert id>,
// sessions/<key id>) are read from storage that anyone who can write it
// controls. The seed corpora in testdata/fuzz hold what the real encoders
// wrote with the fixed keys below, so they stay valid as long as those do.

const (
	fuzzAreaID = "0123456789abcdef0123456789abcdef"
	fuzzCertID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
)

var fuzzPEM = []byte("-----BEGIN CERTIFICATE-----\nMIIBfuzz\n-----END CERTIFICATE-----\n")

func fuzzSecret(base byte) keys.Secret {
	var s keys.Secret
	for i := range s {
		s[i] = base + byte(i)
	}
	return s
}

func fuzzOwner() *keys.OwnerKeys {
	return &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x10), Escrow: fuzzSecret(0x30)}
}

// fuzzWrap and fuzzUnwrap stand in for a certificate's public and private
// key: authenticated, deterministic, cheap.
func fuzzWrap(secret, ad []byte) ([]byte, error) {
	return keys.SealOnce(fuzzSecret(0x50), secret, ad), nil
}

func fuzzUnwrap(wrapped, ad []byte) ([]byte, error) {
	return keys.OpenOnce(fuzzSecret(0x50), wrapped, ad)
}

// FuzzCertificates: a certificate object is listed whenever it decodes, but
// only the owner's signature makes it count, so nothing else may verify.
func FuzzCertificates(f *testing.F) {
	ctx := context.Background()
	owner := fuzzOwner()
	st := mem.New()
	if err := AddCertificate(ctx, st, owner, fuzzCertID, fuzzPEM); err != nil {
		f.Fatal(err)
	}
	valid, err := st.Load(ctx, certificatesPrefix+"000001", 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"id":"c0`), []byte(`"id":"d0`), 1))
	f.Add([]byte(`{"id":"` + fuzzCertID + `"}`))
	// Signed, by another owner.
	other, err := json.Marshal(certObject{ID: fuzzCertID, PEM: fuzzPEM, Sig: fuzzOtherOwner().Sign("certificate", certMessage(1, fuzzCertID, fuzzPEM))})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(other)
	f.Add([]byte(`{"id":"short","pem":"","sig":""}`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, b []byte) {
		st := mem.New()
		if err := st.Save(ctx, certificatesPrefix+"000001", b); err != nil {
			t.Fatal(err)
		}
		certs, err := Certificates(ctx, st)
		if err != nil {
			t.Fatalf("Certificates: %v", err)
		}
		if len(certs) == 0 {
			return
		}
		if len(certs) != 1 || certs[0].Seq != 1 || len(certs[0].ID) != 64 {
			t.Fatalf("Certificates returned %+v", certs)
		}
		ref := certs[0]
		if ref.Verify(owner.Public()) == nil && (ref.ID != fuzzCertID || !bytes.Equal(ref.PEM, fuzzPEM)) {
			t.Fatalf("certificate %s verifies, but the owner never signed it", ref.ID)
		}
		if ref.Verify(fuzzStranger().Public()) == nil {
			t.Fatalf("certificate %s verifies under a key that never signed anything", ref.ID)
		}
		again, err := json.Marshal(certObject{ID: ref.ID, PEM: ref.PEM, Sig: ref.Sig})
		if err != nil {
			t.Fatal(err)
		}
		st2 := mem.New()
		if err := st2.Save(ctx, certificatesPrefix+"000001", again); err != nil {
			t.Fatal(err)
		}
		back, err := Certificates(ctx, st2)
		if err != nil || len(back) != 1 || back[0].ID != ref.ID || !bytes.Equal(back[0].PEM, ref.PEM) || !bytes.Equal(back[0].Sig, ref.Sig) {
			t.Fatalf("round trip changed the certificate (%v): %+v -> %+v", err, ref, back)
		}
	})
}

func fuzzOtherOwner() *keys.OwnerKeys {
	return &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x11), Escrow: fuzzSecret(0x31)}
}

func fuzzStranger() *keys.OwnerKeys {
	return &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x12), Escrow: fuzzSecret(0x32)}
}

func fuzzCertKeySet() *keys.KeySet {
	ks := &keys.KeySet{Version: 1, Vault: fuzzAreaID, IDKey: fuzzSecret(0x70), IndexKey: fuzzSecret(0x90), ChunkerSeed: fuzzSecret(0xb0)}
	return ks.Epoch(fuzzCertID)
}

// FuzzOpenCertKey: certkeys/<cert id> opens only when it is what
// SaveCertKey wrote for the certificate; anything else is refused as
// damaged or as not opening with the private key.
func FuzzOpenCertKey(f *testing.F) {
	ctx := context.Background()
	ks := fuzzCertKeySet()
	st := mem.New()
	if err := SaveCertKey(ctx, st, ks, fuzzWrap); err != nil {
		f.Fatal(err)
	}
	valid, err := st.Load(ctx, certKeysPrefix+fuzzCertID, 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(`{"wrapped":"","sealed":""}`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := openCertKey(b, "m", fuzzAreaID, fuzzCertID, fuzzUnwrap)
		if err != nil {
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, keys.ErrAuth) {
				t.Fatalf("error %v wraps neither ErrDamaged nor ErrAuth", err)
			}
			return
		}
		if *got != *ks {
			t.Fatalf("opened a key set that SaveCertKey did not store")
		}
		if _, err := openCertKey(b, "m", fuzzAreaID, fuzzCertID[:63]+"1", fuzzUnwrap); err == nil {
			t.Fatalf("the certificate's keys open for another certificate")
		}
	})
}

// FuzzOpenSession: a session opens only under its own key ID and
// certificate; one that does not is foreign (nil), never a panic.
func FuzzOpenSession(f *testing.F) {
	key := fuzzSecret(0xd0)
	keyID := keys.NewDataSealer(key).KeyID()
	wrapped, err := fuzzWrap(key[:], sessionAD(fuzzAreaID, keyID))
	if err != nil {
		f.Fatal(err)
	}
	// As StartSession stores it.
	valid, err := json.Marshal(session{Certificate: fuzzCertID, Wrapped: wrapped})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, keyID[:])
	f.Add(valid, []byte("other id"))
	f.Add([]byte(`{"certificate":"`+fuzzCertID+`","wrapped":"AAAA"}`), keyID[:])
	f.Add([]byte(`{"certificate":7}`), keyID[:])

	f.Fuzz(func(t *testing.T, b, idBytes []byte) {
		var id [8]byte
		copy(id[:], idBytes)
		s, err := openSession(b, fuzzAreaID, fuzzCertID, id, fuzzUnwrap)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("error %v does not wrap ErrDamaged", err)
			}
			return
		}
		if s == nil {
			return
		}
		if id != keyID || s.KeyID() != keyID {
			t.Fatalf("session %x opened, but only %x was stored", id, keyID)
		}
		if s2, err := openSession(b, fuzzAreaID, fuzzCertID[:63]+"1", id, fuzzUnwrap); s2 != nil || err != nil {
			t.Fatalf("a session opens for another certificate (%v)", err)
		}
	})
}

package repo

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage/mem"
)

// Certificate-mode objects of a machine area (certkeys/<cert id>,
// sessions/<key id>) are read from storage that anyone who can write it
// controls. The seed corpora in testdata/fuzz hold what the real encoders
// wrote with the fixed keys below, so they stay valid as long as those do.

const (
	fuzzAreaID = "0123456789abcdef0123456789abcdef"
	fuzzCertID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
)

func fuzzSecret(base byte) keys.Secret {
	var s keys.Secret
	for i := range s {
		s[i] = base + byte(i)
	}
	return s
}

// fuzzWrap and fuzzUnwrap stand in for a certificate's public and private
// key: authenticated, deterministic, cheap.
func fuzzWrap(secret, ad []byte) ([]byte, error) {
	return keys.SealOnce(fuzzSecret(0x50), secret, ad), nil
}

func fuzzUnwrap(wrapped, ad []byte) ([]byte, error) {
	return keys.OpenOnce(fuzzSecret(0x50), wrapped, ad)
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

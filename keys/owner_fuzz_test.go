package keys_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
)

func fixedOwnerKeys(vault string) *keys.OwnerKeys {
	ok := &keys.OwnerKeys{Version: 1, Vault: vault}
	for i := range 32 {
		ok.SignSeed[i] = byte(0x10 + i)
		ok.Escrow[i] = byte(0x30 + i)
	}
	return ok
}

// FuzzParseOwnerKeys: owner keys are the plaintext of owner slots (after
// the passphrase opened them) and of keyring entries.
func FuzzParseOwnerKeys(f *testing.F) {
	for _, vault := range []string{"fuzz-vault", "0123456789abcdef0123456789abcdef"} {
		b, err := fixedOwnerKeys(vault).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"vault":"v","sign_seed":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","escrow":"AQ=="}`))
	f.Add([]byte(`{"version":2}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		ok, err := keys.ParseOwnerKeys(b)
		if err != nil {
			if !errors.Is(err, keys.ErrOwnerKeys) {
				t.Fatalf("error %v does not wrap ErrOwnerKeys", err)
			}
			return
		}
		pub := ok.Public()
		if len(pub.Sign) != 32 || len(pub.Escrow) != 32 {
			t.Fatalf("public keys of %d and %d bytes", len(pub.Sign), len(pub.Escrow))
		}
		if err := pub.Verify("fuzz", b, ok.Sign("fuzz", b)); err != nil {
			t.Fatalf("parsed owner keys do not verify their own signature: %v", err)
		}
		again, err := ok.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed owner keys: %v", err)
		}
		back, err := keys.ParseOwnerKeys(again)
		if err != nil || *back != *ok {
			t.Fatalf("round trip changed the owner keys (%v)", err)
		}
	})
}

// FuzzOpenAsOwner: machines' escrow objects (machines/<name>/escrow) are
// read from storage; only what SealToOwner sealed for the owner opens.
func FuzzOpenAsOwner(f *testing.F) {
	ok := fixedOwnerKeys("fuzz-vault")
	ad := []byte("azfs-escrow-fuzz")
	plains := [][]byte{nil, []byte(`{"version":1}`), bytes.Repeat([]byte{7}, 200)}
	for _, plain := range plains {
		sealed, err := ok.Public().SealToOwner(plain, ad)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add(make([]byte, 48))
	f.Add([]byte("short"))

	f.Fuzz(func(t *testing.T, sealed []byte) {
		in := bytes.Clone(sealed)
		plain, err := ok.OpenAsOwner(sealed, ad)
		if !bytes.Equal(in, sealed) {
			t.Fatalf("OpenAsOwner modified its input")
		}
		if err != nil {
			if !errors.Is(err, keys.ErrAuth) {
				t.Fatalf("error %v does not wrap ErrAuth", err)
			}
			return
		}
		found := false
		for _, p := range plains {
			found = found || bytes.Equal(p, plain)
		}
		if !found {
			t.Fatalf("OpenAsOwner opened %d bytes that were never sealed", len(plain))
		}
		if _, err := fixedOwnerKeys("other").OpenAsOwner(sealed, append(ad, 0)); err == nil {
			t.Fatalf("escrow opens under another AD")
		}
	})
}

// FuzzIDUnmarshalText: IDs are decoded from JSON in index files, points,
// marks and records read from storage.
func FuzzIDUnmarshalText(f *testing.F) {
	f.Add([]byte(keys.ID{1, 2, 3, 0xff}.String()))
	f.Add([]byte(strings.ToUpper(keys.ID{0xab}.String())))
	f.Add([]byte("0123"))
	f.Add([]byte(strings.Repeat("g", 64)))

	f.Fuzz(func(t *testing.T, b []byte) {
		var id keys.ID
		if err := id.UnmarshalText(b); err != nil {
			if !id.IsZero() {
				t.Fatalf("UnmarshalText failed but set the ID")
			}
			return
		}
		if !strings.EqualFold(id.String(), string(b)) {
			t.Fatalf("%q decoded to %s", b, id)
		}
		j, err := json.Marshal(id)
		if err != nil {
			t.Fatal(err)
		}
		var back keys.ID
		if err := json.Unmarshal(j, &back); err != nil || back != id {
			t.Fatalf("JSON round trip of %s: %v, %s", id, err, back)
		}
	})
}

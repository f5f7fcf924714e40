package keys_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/azfs/azfs/keys"
)

// The seed corpora in testdata/fuzz hold valid encodings made with
// fixedKeySet("fuzz-vault"), so they stay valid as long as it does.

func FuzzParseSlot(f *testing.F) {
	ks := fixedKeySet("fuzz-vault")
	for _, kdf := range []keys.KDF{cheapKDF, {Algorithm: "argon2id", Time: 2, MemoryKiB: 32, Threads: 4}} {
		slot, err := keys.NewPassphraseSlot(ks, "slot", testPass, kdf)
		if err != nil {
			f.Fatal(err)
		}
		b, err := slot.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"kind":"passphrase","kdf":{"algorithm":"argon2id","time":1,"memory_kib":4194305,"threads":1},"salt":"AAAAAAAAAAAAAAAAAAAAAA==","sealed":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"kind":"fido2"}`))
	f.Add([]byte("null"))

	f.Fuzz(func(t *testing.T, b []byte) {
		slot, err := keys.ParseSlot(b)
		if err != nil {
			if !errors.Is(err, keys.ErrSlot) {
				t.Fatalf("ParseSlot error %v does not wrap ErrSlot", err)
			}
			return
		}
		again, err := slot.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed slot: %v", err)
		}
		back, err := keys.ParseSlot(again)
		if err != nil {
			t.Fatalf("ParseSlot(Marshal(ParseSlot(b))): %v", err)
		}
		if !reflect.DeepEqual(back, slot) {
			t.Fatalf("round trip changed the slot:\n%+v\n%+v", slot.KDF, back.KDF)
		}
		// Only try cheap parameters: valid ones may legitimately cost
		// gigabytes, which is what the limits are for.
		if slot.KDF.Time <= 2 && slot.KDF.MemoryKiB <= 1024 {
			got, err := slot.Unlock("fuzz-vault", "slot", testPass)
			if err == nil {
				if *got != *ks {
					t.Fatalf("Unlock succeeded with a different key set")
				}
				return
			}
			if !errors.Is(err, keys.ErrWrongPassphrase) && !errors.Is(err, keys.ErrSlot) && !errors.Is(err, keys.ErrKeySet) {
				t.Fatalf("Unlock: unexpected error %v", err)
			}
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	for _, vault := range []string{"fuzz-vault", "0123456789abcdef0123456789abcdef", "\u00e9\u2028"} {
		b, err := fixedKeySet(vault).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"vault":"v","id_key":"AAAA"}`))
	f.Add([]byte(`{"version":2,"vault":"v"}`))
	f.Add([]byte(`{`))

	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := keys.ParseKeySet(b)
		if err != nil {
			if !errors.Is(err, keys.ErrKeySet) {
				t.Fatalf("ParseKeySet error %v does not wrap ErrKeySet", err)
			}
			return
		}
		if ks.Version != 1 || ks.Vault == "" {
			t.Fatalf("ParseKeySet accepted version %d, vault %q", ks.Version, ks.Vault)
		}
		again, err := ks.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed key set: %v", err)
		}
		back, err := keys.ParseKeySet(again)
		if err != nil {
			t.Fatalf("ParseKeySet(Marshal(ParseKeySet(b))): %v", err)
		}
		if *back != *ks {
			t.Fatalf("round trip changed the key set (vault %q -> %q)", ks.Vault, back.Vault)
		}
	})
}

func FuzzOpen(f *testing.F) {
	ks := fixedKeySet("fuzz-vault")
	s := ks.NewSealer()
	for i, payload := range [][]byte{nil, []byte("x"), []byte("a tree part, say"), bytes.Repeat([]byte{0xa5}, 300)} {
		kind := keys.Kind(1 + i%5)
		id := ks.ID(kind, payload)
		f.Add(byte(kind), id[:], s.Seal(nil, kind, id, payload))
	}
	f.Add(byte(keys.KindData), make([]byte, 32), make([]byte, keys.Overhead))
	f.Add(byte(0), []byte("short id"), []byte{keys.SealVersion})

	f.Fuzz(func(t *testing.T, kind byte, idBytes, sealed []byte) {
		var id keys.ID
		copy(id[:], idBytes)
		in := bytes.Clone(sealed)
		plain, err := s.Open(nil, keys.Kind(kind), id, sealed)
		if !bytes.Equal(in, sealed) {
			t.Fatalf("Open modified its input")
		}
		if err != nil {
			if !errors.Is(err, keys.ErrAuth) {
				t.Fatalf("Open error %v does not wrap ErrAuth", err)
			}
			if plain != nil {
				t.Fatalf("Open failed but returned %d bytes", len(plain))
			}
			return
		}
		// Sealing is deterministic, so the only input that opens is the
		// one Seal produces.
		if again := s.Seal(nil, keys.Kind(kind), id, plain); !bytes.Equal(again, sealed) {
			t.Fatalf("Open accepted %d bytes that Seal does not produce for the payload", len(sealed))
		}
	})
}

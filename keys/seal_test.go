package keys_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
)

func TestSealOpenRoundTrip(t *testing.T) {
	ks := fixedKeySet("v")
	s := ks.NewSealer()
	for _, size := range []int{0, 1, 57, 4096, 1 << 20} {
		payload := testfiles.RandomBytes(size, uint64(size))
		id := ks.ID(keys.KindData, payload)
		sealed := s.Seal(nil, keys.KindData, id, payload)
		if len(sealed) != size+keys.Overhead {
			t.Errorf("size %d: sealed is %d bytes, want %d", size, len(sealed), size+keys.Overhead)
		}
		if sealed[0] != keys.SealVersion {
			t.Errorf("size %d: first byte %d, want version %d", size, sealed[0], keys.SealVersion)
		}
		if size >= 16 && bytes.Contains(sealed, payload[:16]) {
			t.Errorf("size %d: sealed object contains the plaintext", size)
		}
		plain, err := s.Open(nil, keys.KindData, id, sealed)
		if err != nil {
			t.Fatalf("size %d: Open: %v", size, err)
		}
		if !bytes.Equal(plain, payload) {
			t.Errorf("size %d: Open returned different bytes", size)
		}
		// Seal and Open append to dst and leave what it holds alone.
		prefix := []byte("prefix")
		sealed2 := s.Seal(bytes.Clone(prefix), keys.KindData, id, payload)
		if !bytes.Equal(sealed2[:len(prefix)], prefix) || !bytes.Equal(sealed2[len(prefix):], sealed) {
			t.Errorf("size %d: Seal with a non-empty dst did not append the same sealed bytes", size)
		}
		plain2, err := s.Open(bytes.Clone(prefix), keys.KindData, id, sealed)
		if err != nil || !bytes.Equal(plain2, append(bytes.Clone(prefix), payload...)) {
			t.Errorf("size %d: Open with a non-empty dst = %d bytes, %v", size, len(plain2), err)
		}
		// Another Sealer from the same key set opens it as well.
		if _, err := fixedKeySet("v").NewSealer().Open(nil, keys.KindData, id, sealed); err != nil {
			t.Errorf("size %d: a second Sealer of the same keys cannot open: %v", size, err)
		}
	}
}

// TestOpenRejects checks that every kind of damage or misuse fails with ErrAuth.
func TestOpenRejects(t *testing.T) {
	ks := fixedKeySet("v")
	s := ks.NewSealer()
	payload := []byte("a payload of moderate length that spans more than one AES block")
	id := ks.ID(keys.KindData, payload)
	sealed := s.Seal(nil, keys.KindTree, id, payload)

	open := func(kind keys.Kind, id keys.ID, b []byte) error {
		plain, err := s.Open(nil, kind, id, b)
		if err == nil {
			return nil
		}
		if plain != nil {
			t.Errorf("Open failed but returned %d bytes", len(plain))
		}
		return err
	}

	t.Run("flipped byte", func(t *testing.T) {
		// Every position: version, key ID, synthetic IV, ciphertext and tag.
		for i := range sealed {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(sealed)
				b[i] ^= bit
				if err := open(keys.KindTree, id, b); !errors.Is(err, keys.ErrAuth) {
					t.Errorf("byte %d ^ %#x: err = %v, want ErrAuth", i, bit, err)
				}
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range len(sealed) {
			if err := open(keys.KindTree, id, sealed[:n]); !errors.Is(err, keys.ErrAuth) {
				t.Errorf("first %d of %d bytes: err = %v, want ErrAuth", n, len(sealed), err)
			}
		}
		if err := open(keys.KindTree, id, sealed[1:]); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("first byte dropped: err = %v, want ErrAuth", err)
		}
	})
	t.Run("extended", func(t *testing.T) {
		if err := open(keys.KindTree, id, append(bytes.Clone(sealed), 0)); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("one byte appended: err = %v, want ErrAuth", err)
		}
	})
	t.Run("wrong kind", func(t *testing.T) {
		for _, kind := range []keys.Kind{0, keys.KindData, keys.KindTrailer, keys.KindIndex, keys.KindPoint, 255} {
			if err := open(kind, id, sealed); !errors.Is(err, keys.ErrAuth) {
				t.Errorf("opened as %s: err = %v, want ErrAuth", kind, err)
			}
		}
	})
	t.Run("wrong id", func(t *testing.T) {
		for _, i := range []int{0, 17, 31} {
			other := id
			other[i] ^= 1
			if err := open(keys.KindTree, other, sealed); !errors.Is(err, keys.ErrAuth) {
				t.Errorf("ID byte %d changed: err = %v, want ErrAuth", i, err)
			}
		}
		if err := open(keys.KindTree, keys.ID{}, sealed); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("zero ID: err = %v, want ErrAuth", err)
		}
	})
	t.Run("another key set", func(t *testing.T) {
		other := newKeySet(t, "v")
		if _, err := other.NewSealer().Open(nil, keys.KindTree, id, sealed); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("random key set: err = %v, want ErrAuth", err)
		}
		// A data key that differs in a single bit fails too.
		near := fixedKeySet("v")
		near.DataKey[31] ^= 1
		if _, err := near.NewSealer().Open(nil, keys.KindTree, id, sealed); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("data key with one bit changed: err = %v, want ErrAuth", err)
		}
		// The ID key does not take part in sealing: a key set that differs
		// only in its ID key still opens (documents the construction).
		idOnly := fixedKeySet("v")
		idOnly.IDKey[0] ^= 1
		if _, err := idOnly.NewSealer().Open(nil, keys.KindTree, id, sealed); err != nil {
			t.Errorf("key set differing only in the ID key: %v", err)
		}
	})
	t.Run("swapped header", func(t *testing.T) {
		// The header of another object under the same key does not fit.
		other := s.Seal(nil, keys.KindTree, id, []byte("another payload of the same id"))
		b := bytes.Clone(sealed)
		copy(b[:1+8+32], other[:1+8+32])
		if err := open(keys.KindTree, id, b); !errors.Is(err, keys.ErrAuth) {
			t.Errorf("header of another object: err = %v, want ErrAuth", err)
		}
	})
}

func TestSealDeterministic(t *testing.T) {
	ks := fixedKeySet("v")
	s := ks.NewSealer()
	payload := []byte("same input, same output")
	id := ks.ID(keys.KindData, payload)
	a := s.Seal(nil, keys.KindData, id, payload)
	b := s.Seal(nil, keys.KindData, id, payload)
	if !bytes.Equal(a, b) {
		t.Fatalf("sealing the same input twice gave different outputs")
	}
	if c := fixedKeySet("v").NewSealer().Seal(nil, keys.KindData, id, payload); !bytes.Equal(a, c) {
		t.Fatalf("two Sealers of the same keys gave different outputs")
	}

	siv := func(b []byte) []byte { return b[9 : 9+32] }
	seen := map[string]string{string(siv(a)): "original"}
	for name, sealed := range map[string][]byte{
		"other payload, same id": s.Seal(nil, keys.KindData, id, []byte("same input, same outpuT")),
		"empty payload, same id": s.Seal(nil, keys.KindData, id, nil),
		"same payload, tree":     s.Seal(nil, keys.KindTree, id, payload),
		"same payload, other id": s.Seal(nil, keys.KindData, keys.ID{1}, payload),
	} {
		if prev, dup := seen[string(siv(sealed))]; dup {
			t.Errorf("%s has the same synthetic IV as %s", name, prev)
		}
		seen[string(siv(sealed))] = name
	}
	// The key ID is the same for every object of one key set and differs
	// between key sets.
	other := newKeySet(t, "v").NewSealer().Seal(nil, keys.KindData, id, payload)
	if !bytes.Equal(a[1:9], b[1:9]) || bytes.Equal(a[1:9], other[1:9]) {
		t.Errorf("key IDs: same keys %x/%x, other keys %x", a[1:9], b[1:9], other[1:9])
	}
}

func TestSealerConcurrent(t *testing.T) {
	ks := fixedKeySet("v")
	s := ks.NewSealer()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				payload := testfiles.RandomBytes(100+i*37, uint64(g*1000+i))
				id := ks.ID(keys.KindData, payload)
				sealed := s.Seal(nil, keys.KindData, id, payload)
				plain, err := s.Open(nil, keys.KindData, id, sealed)
				if err != nil || !bytes.Equal(plain, payload) {
					errs <- errors.Join(errors.New("concurrent round trip failed"), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestKindString(t *testing.T) {
	for kind, want := range map[keys.Kind]string{
		keys.KindData: "data", keys.KindTree: "tree", keys.KindTrailer: "trailer",
		keys.KindIndex: "index", keys.KindPoint: "point", keys.KindTombstone: "tombstone", 9: "kind(9)",
	} {
		if got := kind.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", byte(kind), got, want)
		}
	}
}

// TestIndexSealer: index files and trailers are sealed under the index key,
// which opens nothing sealed under the data key and vice versa.
func TestIndexSealer(t *testing.T) {
	ks := fixedKeySet("v")
	data, index := ks.NewSealer(), ks.NewIndexSealer()
	payload := []byte("index file contents")
	id := ks.ID(keys.KindIndex, payload)
	sealedIdx := index.Seal(nil, keys.KindIndex, id, payload)
	if got, err := index.Open(nil, keys.KindIndex, id, sealedIdx); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("index sealer round trip: %v", err)
	}
	if _, err := data.Open(nil, keys.KindIndex, id, sealedIdx); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("data sealer opened an index object: err = %v, want ErrAuth", err)
	}
	sealedData := data.Seal(nil, keys.KindIndex, id, payload)
	if _, err := index.Open(nil, keys.KindIndex, id, sealedData); !errors.Is(err, keys.ErrAuth) {
		t.Errorf("index sealer opened a data-key object: err = %v, want ErrAuth", err)
	}
	if bytes.Equal(sealedIdx[1:9], sealedData[1:9]) {
		t.Errorf("data and index sealers share a key ID")
	}
	// The index key alone decides: a key set with another data key still
	// opens index objects.
	other := fixedKeySet("v")
	other.DataKey[0] ^= 1
	if _, err := other.NewIndexSealer().Open(nil, keys.KindIndex, id, sealedIdx); err != nil {
		t.Errorf("index sealer of a key set with another data key: %v", err)
	}
}

package luks_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/azfs/azfs/diskimage/luks"
)

// FuzzOpen parses arbitrary bytes as a LUKS volume: Open either fails with
// ErrFormat or ErrUnsupported or returns a header; it never panics. The
// seeds in testdata are the headers cryptsetup wrote (the LUKS2 primary
// header, a LUKS1 header converted by cryptsetup convert).
func FuzzOpen(f *testing.F) {
	f.Add([]byte("LUKS\xba\xbe\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := luks.Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, luks.ErrFormat) && !errors.Is(err, luks.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("version %d", h.Version)
		}
	})
}

// FuzzAFMerge merges arbitrary key material: the result always has the key's
// length.
func FuzzAFMerge(f *testing.F) {
	f.Add(bytes.Repeat([]byte{7}, 64*4), 64)
	f.Add([]byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, material []byte, keyBytes int) {
		if keyBytes <= 0 || keyBytes > 64 || len(material) < keyBytes {
			return
		}
		stripes := len(material) / keyBytes
		key := luks.AFMerge(material[:stripes*keyBytes], keyBytes, stripes, sha256.New)
		if len(key) != keyBytes {
			t.Fatalf("%d-byte key, want %d", len(key), keyBytes)
		}
	})
}

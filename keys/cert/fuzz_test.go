package cert_test

import (
	"errors"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
)

// FuzzParseCertificate checks that no input panics, and that every
// certificate accepted survives its PEM round trip and can be wrapped to.
// Seeds are in testdata/fuzz/FuzzParseCertificate.
func FuzzParseCertificate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := cert.ParseCertificate(b)
		if err != nil {
			return
		}
		again, err := cert.ParseCertificate(c.PEM())
		if err != nil || again.ID() != c.ID() || again.Thumbprint() != c.Thumbprint() {
			t.Fatalf("PEM round trip: %v", err)
		}
		if _, err := c.Wrap(make([]byte, cert.MaxSecret), b); err != nil {
			t.Fatalf("Wrap: %v", err)
		}
	})
}

// FuzzParsePrivateKey checks that no input panics, and that every key
// accepted refuses a wrapped secret it did not make. Seeds are in
// testdata/fuzz/FuzzParsePrivateKey.
func FuzzParsePrivateKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, password string) {
		k, err := cert.ParsePrivateKey(b, password)
		if err != nil {
			return
		}
		for _, tag := range []byte{1, 2} {
			if _, err := k.Unwrap(append([]byte{tag}, b...), nil); !errors.Is(err, keys.ErrAuth) {
				t.Fatalf("Unwrap of junk: %v, want ErrAuth", err)
			}
		}
	})
}

// FuzzUnwrap checks that damaged or forged input never panics and is always
// refused with ErrAuth, unless it is a genuine wrap.
func FuzzUnwrap(f *testing.F) {
	c, err := cert.ParseCertificate(readFixture(f, "ec.crt"))
	if err != nil {
		f.Fatal(err)
	}
	k, err := cert.ParsePrivateKey(readFixture(f, "ec.key"), "")
	if err != nil {
		f.Fatal(err)
	}
	w, err := c.Wrap([]byte("secret"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(w, []byte("other ad"))
	f.Add(w[:len(w)-1], []byte("ad"))
	f.Add([]byte{2, 65}, []byte(nil))
	f.Fuzz(func(t *testing.T, wrapped, ad []byte) {
		plain, err := k.Unwrap(wrapped, ad)
		// Only a genuine wrap opens (the cached corpus holds wraps of
		// earlier runs, each with its own ephemeral key).
		if err == nil && (string(ad) != "ad" || string(plain) != "secret") {
			t.Fatalf("Unwrap of a forgery = %q", plain)
		}
		if err != nil && !errors.Is(err, keys.ErrAuth) {
			t.Fatalf("Unwrap: %v, want ErrAuth", err)
		}
	})
}

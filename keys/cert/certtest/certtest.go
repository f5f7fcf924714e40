// Package certtest gives other packages' tests the certificates of package
// cert's testdata, so that each does not read them by a relative path of
// its own.
package certtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/azfs/azfs/keys/cert"
)

// Certificate parses the certificate file name of keys/cert/testdata,
// failing t when it cannot.
func Certificate(t testing.TB, name string) *cert.Certificate {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cert.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

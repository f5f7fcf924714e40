package access

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The seed corpus in testdata/fuzz/FuzzParseCredentials holds files made by
// Issue and Marshal (one with a SAS token, as for a blob vault), and broken
// variants of them.

func FuzzParseCredentials(f *testing.F) {
	backup := fixedCredentials()
	backup.Access = AccessBackup
	for _, c := range []*Credentials{backup, fixedCredentials(), blobCredentials()} {
		b, err := c.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredentials(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseCredentials error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed credentials: %v", err)
		}
		back, err := ParseCredentials(again)
		if err != nil {
			t.Fatalf("ParseCredentials(Marshal(ParseCredentials(b))): %v\n%s", err, again)
		}
		if !equalCredentials(back, c) {
			t.Fatalf("round trip changed the credentials:\n%+v\n%+v", c, back)
		}
		if third, err := back.Marshal(); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("Marshal is not stable (%v):\n%s\n%s", err, again, third)
		}
	})
}

// TestFuzzCorpus keeps the seed corpus meaningful: valid-* files parse,
// broken-* files do not.
func TestFuzzCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/fuzz/FuzzParseCredentials/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no seed corpus (%v)", err)
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		header, value, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
		quoted, ok := strings.CutPrefix(value, "[]byte(")
		quoted, ok2 := strings.CutSuffix(quoted, ")")
		b, err := strconv.Unquote(quoted)
		if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a one-value fuzz corpus file", path)
		}
		_, err = ParseCredentials([]byte(b))
		switch name := filepath.Base(path); {
		case strings.HasPrefix(name, "valid-") && err != nil:
			t.Errorf("%s: %v", name, err)
		case strings.HasPrefix(name, "broken-") && err == nil:
			t.Errorf("%s parses", name)
		}
	}
}

package testfiles

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRandomBytes: the same seed gives the same bytes, another seed others.
func TestRandomBytes(t *testing.T) {
	a, b, c := RandomBytes(1000, 7), RandomBytes(1000, 7), RandomBytes(1000, 263)
	if len(a) != 1000 || !bytes.Equal(a, b) {
		t.Fatal("seed 7 twice: different bytes")
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 263: the same bytes")
	}
}

// TestWriteFile: parent directories are made, the content and mode are as given.
func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b", "f")
	WriteFile(t, p, []byte("x"))
	got, err := os.ReadFile(p)
	Must(t, err)
	if string(got) != "x" {
		t.Fatalf("content %q", got)
	}
	fi, err := os.Stat(p)
	Must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

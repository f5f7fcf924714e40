// Package testfiles holds the helpers tests share for making the files
// they back up, restore and compare: deterministic content, files written
// with their parent directories, and the check that FUSE is there. Tests
// only import it.
package testfiles

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RandomBytes returns n bytes that look random and are the same for the
// same seed (ChaCha8 keyed by the seed's two low bytes), so that a test's
// content is different per seed and reproducible.
func RandomBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// BytesAllocated returns the bytes f allocates per call, on average over
// runs calls after a first one (which may fill pools and caches).
func BytesAllocated(runs int, f func()) uint64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// WriteFile writes data to path (mode 0644), creating its parent
// directories (0755); a failure fails the test.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Must fails the test when err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// RequireFUSE skips the test when the machine has no /dev/fuse, except on
// CI (CI=true), where that is a failure: a test that needs a real mount
// must not pass there without one.
func RequireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no /dev/fuse on CI: %v", err)
		}
		t.Skipf("no /dev/fuse: %v", err)
	}
}

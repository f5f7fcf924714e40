// Package loopdevtest gives tests a loop device over a file: attached for
// the test, detached (that device, by its path) when it ends.
package loopdevtest

import (
	"context"
	"os"
	"testing"

	"github.com/azfs/azfs/internal/loopdev"
)

// Attach attaches a loop device to the file at path for the test t and
// returns its path. Without root or a free loop device the test fails
// under CI=true (no test may skip there) and is skipped elsewhere.
func Attach(t testing.TB, path string) string {
	t.Helper()
	RequireRoot(t)
	dev, err := loopdev.Attach(context.Background(), path, false)
	if err != nil {
		missing(t)(err)
	}
	t.Cleanup(func() {
		if err := loopdev.Detach(dev); err != nil {
			t.Error(err)
		}
	})
	return dev
}

// RequireRoot stops a test that needs loop devices or mounts unless it runs
// as root: it fails under CI=true (no test may skip there, and the suite
// runs as root) and is skipped elsewhere.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t)("loop devices and mounts need root")
	}
}

// missing returns how t stops for a missing prerequisite: Fatal under
// CI=true, Skip elsewhere.
func missing(t testing.TB) func(args ...any) {
	if os.Getenv("CI") == "true" {
		return t.Fatal
	}
	return t.Skip
}

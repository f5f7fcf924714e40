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
	missing := t.Skip
	if os.Getenv("CI") == "true" {
		missing = t.Fatal
	}
	if os.Geteuid() != 0 {
		missing("loop devices need root")
	}
	dev, err := loopdev.Attach(context.Background(), path, false)
	if err != nil {
		missing(err)
	}
	t.Cleanup(func() {
		if err := loopdev.Detach(dev); err != nil {
			t.Error(err)
		}
	})
	return dev
}

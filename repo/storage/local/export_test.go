package local

import "testing"

// WalkWithoutOpenat2 makes the package walk paths component by component,
// as on a kernel without openat2, until t ends.
func WalkWithoutOpenat2(t *testing.T) {
	old := noOpenat2.Load()
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(old) })
}

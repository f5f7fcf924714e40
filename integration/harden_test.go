package integration

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSizeFlagsRefused is finding 11 of issue 11: azmount took NaN,
// infinities and sizes that overflow to negative numbers as cache sizes.
// Each is refused before anything is opened, with one line naming the flag
// and the value.
func TestSizeFlagsRefused(t *testing.T) {
	e := newEnv(t)
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	for _, tc := range []struct{ flag, value string }{
		{"cache-size", "NaN"},
		{"cache-size", "Inf"},
		{"cache-size", "999999999TiB"},
		{"cache-size", "-1MiB"},
		{"disk-cache", "NaN"},
		{"disk-cache", "99999999999999999999"},
	} {
		r := e.run(azmountBin, "--"+tc.flag, tc.value, mnt)
		want := "azmount: --" + tc.flag + " " + strconv.Quote(tc.value) + ": "
		checkOneLineError(t, r, want)
		if r.code != 2 {
			t.Errorf("--%s %s: exit %d, want 2 (usage)", tc.flag, tc.value, r.code)
		}
		if strings.Contains(r.stderr, "vault") {
			t.Errorf("--%s %s: azmount went on to open a vault:\n%s", tc.flag, tc.value, r)
		}
	}
}

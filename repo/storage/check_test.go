package storage

import "testing"

func TestPrefixDirMayHold(t *testing.T) {
	for _, tc := range []struct {
		prefix, dir string
		holds, not  []string
	}{
		{"", "", []string{"data", "data/ab", "keys"}, nil},
		{"k", "", []string{"keys"}, []string{"data", "data/ab"}},
		{"data/ab", "data", []string{"data", "data/ab", "data/abc", "data/ab/x"}, []string{"data/cd", "keys"}},
		{"data/ab/", "data/ab", []string{"data", "data/ab", "data/ab/x"}, []string{"data/abc", "data/cd"}},
	} {
		if got := PrefixDir(tc.prefix); got != tc.dir {
			t.Errorf("PrefixDir(%q) = %q, want %q", tc.prefix, got, tc.dir)
		}
		for _, d := range tc.holds {
			if !MayHold(d, tc.prefix) {
				t.Errorf("MayHold(%q, %q) = false, want true", d, tc.prefix)
			}
		}
		for _, d := range tc.not {
			if MayHold(d, tc.prefix) {
				t.Errorf("MayHold(%q, %q) = true, want false", d, tc.prefix)
			}
		}
	}
}

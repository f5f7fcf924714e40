package selection

import (
	"strings"
	"testing"
)

// FuzzParsePattern: any pattern text either is refused with ErrBadPattern
// or matches any path without panicking, and a pattern never matches
// less of a path's descendants than of the path (a match covers all
// below it).
func FuzzParsePattern(f *testing.F) {
	for _, tc := range matchTests {
		f.Add(tc.pattern, tc.path)
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		for _, fold := range []bool{false, true} {
			p, err := ParsePattern(pattern, fold)
			if err != nil {
				continue
			}
			names := Names("/" + strings.Trim(path, "/"))
			if p.MatchNames(names) && !p.MatchNames(append(names[:len(names):len(names)], "child")) {
				t.Fatalf("%q matches %q but not a child of it", pattern, path)
			}
		}
	})
}

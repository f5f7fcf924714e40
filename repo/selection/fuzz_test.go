package selection

import (
	gopath "path"
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
	f.Add("*.[oa]", "main.o")
	f.Add("core.[0-9]*", "core.1234")
	f.Add("x[^]a]", "x]")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		// One name: the compiled part agrees with path.Match.
		if !strings.Contains(pattern, "/") && pattern != "**" {
			if want, err := gopath.Match(pattern, path); err == nil && !strings.Contains(path, "/") {
				if got := compilePart(pattern).matches(path); got != want {
					t.Fatalf("part %q matches %q: %v, path.Match says %v", pattern, path, got, want)
				}
			}
		}
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

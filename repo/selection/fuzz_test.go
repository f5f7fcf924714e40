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

// FuzzPatternsInWalk: in a walk, Patterns.Excluded, which matches each
// pattern against the whole path only, decides as restic's rule (the last
// pattern matching the path or an ancestor decides) does. The fuzzer
// picks a list of patterns and a path from small alphabets of names.
func FuzzPatternsInWalk(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6}, []byte{0, 1, 2})
	f.Add([]byte{7, 0, 9, 1}, []byte{3, 3, 3, 3})
	pieces := []string{"a", "b", "*", "**", "?", "[ab]", "!", "/"}
	names := []string{"a", "b", "c", "ab"}
	f.Fuzz(func(t *testing.T, pat, path []byte) {
		if len(pat) > 40 || len(path) > 8 {
			return
		}
		var ps Patterns
		var texts []string
		cur := ""
		for _, c := range append(pat, 255) {
			if c == 255 || c%9 == 8 { // end of a pattern
				if ps.Add(cur, false) == nil {
					texts = append(texts, cur)
				}
				cur = ""
				continue
			}
			piece := pieces[int(c)%len(pieces)]
			if piece != "!" && piece != "/" && cur != "" && !strings.HasSuffix(cur, "/") && !strings.HasSuffix(cur, "!") {
				cur += "/"
			}
			cur += piece
		}
		var p []string
		for _, c := range path {
			p = append(p, names[int(c)%len(names)])
		}
		restic := func(n []string) bool {
			excluded := false
			for _, text := range texts {
				q, _ := ParsePattern(text, false)
				m := q.MatchNames(n)
				if q.Negated() {
					excluded = excluded && !m
				} else {
					excluded = excluded || m
				}
			}
			return excluded
		}
		for i := 1; i <= len(p); i++ {
			fast, full := ps.Excluded(p[:i]), restic(p[:i])
			if byPath := ps.ExcludedPath("/" + strings.Join(p[:i], "/")); byPath != fast {
				t.Fatalf("patterns %q, path %q: ExcludedPath says %v, Excluded %v", texts, "/"+strings.Join(p[:i], "/"), byPath, fast)
			}
			if fast != full {
				t.Fatalf("patterns %q, path %q: Excluded says %v, restic's rule %v", texts, "/"+strings.Join(p[:i], "/"), fast, full)
			}
			if fast {
				break // the walk goes no deeper
			}
		}
	})
}

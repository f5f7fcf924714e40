// Package selection decides what a backup leaves out of the tree it walks:
// exclude patterns with restic's syntax (ParsePattern, Patterns), tag files
// that empty a directory (Tag, CacheTag), a size limit for files, and which
// mounted file systems the walk enters (FileSystems). Package backup asks
// it about every entry it meets; nothing here touches the vault.
package selection

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/azfs/azfs/internal/errkind"
)

// Pattern is one exclude pattern, as restic reads it:
//
//   - it is split at "/" into parts matched against whole names, each with
//     the wildcards of path.Match: "*" (any run of characters but "/"), "?"
//     (one character), "[a-z]" and "[^a-z]" classes, "\" to escape one;
//   - a part "**" matches any number of names, none included;
//   - a pattern starting with "/" is anchored at the root; one that does
//     not may match starting at any name of the path ("bar" is "**/bar");
//   - a pattern matches a path when it matches the path or one of its
//     ancestors: "/home/user/.cache" leaves out everything below it;
//   - "!" in front makes it a re-include (see Patterns);
//   - it is cleaned first: "/foo/../bar" is "/bar", a trailing "/" is
//     dropped (it matches files too, as in restic).
type Pattern struct {
	negate bool // "!": cancels an earlier match
	fold   bool // case-insensitive: parts and names compared lower-cased
	parts  []part
}

// part is one name of a pattern, compiled: most are a literal name or a
// "*" with a literal prefix or suffix, compared without path.Match.
type part struct {
	kind partKind
	text string // the literal, or the path.Match pattern for glob
	// A glob's literal prefix, and the class it ends with (or ""): cheap
	// checks that rule most names out before path.Match.
	prefix, last string
}

type partKind uint8

const (
	anyNames   partKind = iota // "**": any number of names
	anyName                    // "*"
	literal                    // a name without wildcards
	withSuffix                 // "*" then a literal suffix
	withPrefix                 // a literal prefix then "*"
	glob                       // anything else, through path.Match
)

// compilePart classifies one part of a pattern checked by path.Match.
func compilePart(s string) part {
	const meta = `*?[\`
	switch {
	case s == "**":
		return part{kind: anyNames}
	case s == "*":
		return part{kind: anyName}
	case !strings.ContainsAny(s, meta):
		return part{kind: literal, text: s}
	case strings.HasPrefix(s, "*") && !strings.ContainsAny(s[1:], meta):
		return part{kind: withSuffix, text: s[1:]}
	case strings.HasSuffix(s, "*") && !strings.ContainsAny(s[:len(s)-1], meta):
		return part{kind: withPrefix, text: s[:len(s)-1]}
	}
	return part{kind: glob, text: s, prefix: s[:strings.IndexAny(s, meta)], last: lastElement(s)}
}

// lastElement returns the class ("[a-z]") a glob ends with, which the
// last character of a name must match, or "" when it ends otherwise.
func lastElement(glob string) string {
	if !strings.HasSuffix(glob, "]") {
		return ""
	}
	open := strings.LastIndexByte(glob, '[')
	if open < 0 || strings.ContainsAny(glob[open+1:len(glob)-1], `[\`) || open > 0 && glob[open-1] == '\\' {
		return ""
	}
	return glob[open:]
}

// matches reports whether the part matches one name.
func (p part) matches(name string) bool {
	switch p.kind {
	case anyName:
		return true
	case literal:
		return name == p.text
	case withSuffix:
		return strings.HasSuffix(name, p.text)
	case withPrefix:
		return strings.HasPrefix(name, p.text)
	case glob:
		if !strings.HasPrefix(name, p.prefix) {
			return false
		}
		if p.last != "" {
			_, size := utf8.DecodeLastRuneInString(name)
			if ok, _ := path.Match(p.last, name[len(name)-size:]); !ok {
				return false
			}
		}
		ok, _ := path.Match(p.text, name) // checked by ParsePattern
		return ok
	}
	return false
}

// ErrBadPattern reports a pattern that cannot be read.
var ErrBadPattern = errkind.New(errkind.Invalid, "bad exclude pattern")

// ParsePattern reads one pattern; fold makes it case-insensitive (restic's
// --iexclude). The empty pattern, "/", and "!" alone are refused: they
// would match everything.
func ParsePattern(text string, fold bool) (Pattern, error) {
	p := Pattern{fold: fold}
	s := text
	if strings.HasPrefix(s, "!") {
		p.negate, s = true, s[1:]
	}
	if fold {
		s = strings.ToLower(s)
	}
	if strings.TrimSpace(s) == "" {
		return Pattern{}, fmt.Errorf("%w %q: empty", ErrBadPattern, text)
	}
	anchored := strings.HasPrefix(s, "/")
	s = strings.Trim(path.Clean("/"+s), "/")
	if s == "" {
		return Pattern{}, fmt.Errorf("%w %q: it would leave out everything", ErrBadPattern, text)
	}
	if !anchored {
		p.parts = append(p.parts, part{kind: anyNames})
	}
	for _, part := range strings.Split(s, "/") {
		if _, err := path.Match(part, ""); err != nil {
			return Pattern{}, fmt.Errorf("%w %q: %q is malformed (an unclosed [ or a trailing \\)", ErrBadPattern, text, part)
		}
		c := compilePart(part)
		if c.kind == anyNames && len(p.parts) > 0 && p.parts[len(p.parts)-1].kind == anyNames {
			continue // "**/**" is "**"
		}
		p.parts = append(p.parts, c)
	}
	return p, nil
}

// Negated reports whether p is a re-include ("!").
func (p Pattern) Negated() bool { return p.negate }

// Match reports whether p matches the absolute, clean path or one of its
// ancestors. Names are split from path as it comes, so the caller splits
// once for many patterns with MatchNames.
func (p Pattern) Match(path string) bool {
	return p.MatchNames(Names(path))
}

// Names splits an absolute, clean path into its names ("/" has none).
func Names(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// MatchNames is Match for a path already split by Names.
func (p Pattern) MatchNames(names []string) bool {
	return p.match(p.foldNames(names), false)
}

// foldNames lower-cases names for a case-insensitive pattern.
func (p Pattern) foldNames(names []string) []string {
	if !p.fold {
		return names
	}
	return lower(names)
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

// match reports whether p matches names whole (whole), or names or one
// of its ancestors (!whole). It is classic wildcard matching over names,
// backtracking to the last "**" only: at most names × parts comparisons,
// however many "**" a pattern holds.
func (p Pattern) match(names []string, whole bool) bool {
	parts := p.parts
	if whole && len(parts) > 0 && len(names) > 0 {
		// Most patterns end with a name that rules most paths out.
		if last := parts[len(parts)-1]; last.kind != anyNames && !last.matches(names[len(names)-1]) {
			return false
		}
	}
	pi, ni := 0, 0
	star, starAt := -1, 0
	for {
		if pi == len(parts) && (!whole || ni == len(names)) {
			return true
		}
		if pi < len(parts) && parts[pi].kind == anyNames {
			star, starAt = pi, ni
			pi++
			continue
		}
		if pi < len(parts) && ni < len(names) && parts[pi].matches(names[ni]) {
			pi++
			ni++
			continue
		}
		if star >= 0 && starAt < len(names) {
			starAt++
			pi, ni = star+1, starAt
			continue
		}
		return false
	}
}

// Patterns is an ordered list of patterns, read as restic reads one
// --exclude list: a path is excluded when a pattern matches it and no
// re-include ("!") after that pattern matches it too. A walk leaves an
// excluded directory out with all it holds, so a re-include cannot bring
// back something below an excluded directory: re-include the directory as
// well ("$HOME/**/*" then "!$HOME/Documents").
type Patterns struct {
	list    []Pattern
	negated bool // some pattern is a re-include
}

// Add parses text and appends it (see ParsePattern).
func (ps *Patterns) Add(text string, fold bool) error {
	p, err := ParsePattern(text, fold)
	if err != nil {
		return err
	}
	ps.list = append(ps.list, p)
	ps.negated = ps.negated || p.negate
	return nil
}

// AddFile appends the patterns of an exclude file (see ReadPatternFile).
func (ps *Patterns) AddFile(r io.Reader, name string, fold bool) error {
	texts, err := ReadPatternFile(r, name)
	if err != nil {
		return err
	}
	for _, text := range texts {
		if err := ps.Add(text, fold); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// ReadPatternFile returns the patterns of an exclude file, as restic reads
// one: one pattern a line, surrounding white space trimmed, blank lines
// and lines starting with "#" skipped, environment variables expanded
// ($HOME, ${HOME}; "$$" for a literal "$"). A pattern that does not parse
// is an error naming its line; name is for messages.
func ReadPatternFile(r io.Reader, name string) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var texts []string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = os.Expand(line, func(v string) string {
			if v == "$" {
				return "$"
			}
			return os.Getenv(v)
		})
		if _, err := ParsePattern(line, false); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		texts = append(texts, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return texts, nil
}

// ReadPatternFiles returns the patterns of the exclude files names, in
// order, each read as ReadPatternFile reads it.
func ReadPatternFiles(names []string) ([]string, error) {
	var texts []string
	for _, name := range names {
		file, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		patterns, err := ReadPatternFile(file, name)
		file.Close()
		if err != nil {
			return nil, err
		}
		texts = append(texts, patterns...)
	}
	return texts, nil
}

// ExcludedPath is Excluded for an absolute, clean path. Without
// re-includes, it first checks the last name against each pattern's last
// part, and splits the path only when one may match: most paths a walk
// meets match no pattern.
func (ps *Patterns) ExcludedPath(path string) bool {
	if len(ps.list) == 0 {
		return false
	}
	if !ps.negated {
		last := path[strings.LastIndexByte(path, '/')+1:]
		if !slices.ContainsFunc(ps.list, func(p Pattern) bool { return p.lastMayMatch(last) }) {
			return false
		}
	}
	return ps.Excluded(Names(path))
}

// lastMayMatch reports whether p may match a whole path whose last name
// is name.
func (p Pattern) lastMayMatch(name string) bool {
	last := p.parts[len(p.parts)-1]
	if last.kind == anyNames {
		return true
	}
	if p.fold {
		name = strings.ToLower(name)
	}
	return last.matches(name)
}

// Excluded reports whether the list excludes the path split into names
// (restic's rule: the last of the patterns matching it or an ancestor
// decides), given that its parent is not excluded, as in a walk that left
// excluded directories out. That lets a pattern be matched against the
// whole path only, not against each ancestor: an ancestor's match was
// cancelled by a later re-include, which matches the path too.
func (ps *Patterns) Excluded(names []string) bool {
	excluded := false
	var folded []string
	for _, p := range ps.list {
		if !p.negate && excluded || p.negate && !excluded {
			continue
		}
		n := names
		if p.fold {
			if folded == nil {
				folded = lower(names)
			}
			n = folded
		}
		if p.negate {
			excluded = !p.match(n, false)
			continue
		}
		if p.match(n, true) {
			if !ps.negated {
				return true // nothing can cancel it
			}
			excluded = true
		}
	}
	return excluded
}

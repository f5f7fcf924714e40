package selection

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Selection is what a backup leaves out. The zero Selection leaves out
// nothing.
type Selection struct {
	// Exclude and IExclude are restic's --exclude and --iexclude lists:
	// each is read on its own (a re-include in one does not cancel the
	// other), and a path either excludes is left out.
	Exclude, IExclude Patterns
	// Tags empty the directories that hold one of them: only the tag
	// file is kept (restic's --exclude-if-present, --exclude-caches).
	Tags []Tag
	// LargerThan, when above zero, leaves out regular files larger than
	// it, in bytes (restic's --exclude-larger-than).
	LargerThan int64
	// FileSystems says which mounted file systems a walk enters.
	FileSystems FileSystems
}

// ExcludedPath reports whether the absolute, clean path is left out by
// its name, given that its parent is not (Patterns.Excluded): a walk asks
// about a directory before what it holds, and leaves out all an excluded
// directory holds.
func (s *Selection) ExcludedPath(path string) bool {
	return s.Exclude.ExcludedPath(path) || s.IExclude.ExcludedPath(path)
}

// ExcludedSize reports whether a regular file of size bytes is left out.
func (s *Selection) ExcludedSize(size int64) bool {
	return s.LargerThan > 0 && size > s.LargerThan
}

// Tag marks a directory whose contents a backup leaves out: a file named
// Name in it, whose content starts with Content when Content is set.
type Tag struct {
	Name    string
	Content string
}

// CacheTag is the Cache Directory Tagging Specification's tag
// (https://bford.info/cachedir/), which --exclude-caches looks for.
var CacheTag = Tag{Name: "CACHEDIR.TAG", Content: "Signature: 8a477f597d28d172789f06886806bc55"}

// ParseTag reads NAME[:CONTENT], as --exclude-if-present takes it.
func ParseTag(s string) (Tag, error) {
	name, content, _ := strings.Cut(s, ":")
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return Tag{}, fmt.Errorf("exclude-if-present %q: NAME must be a file name (NAME or NAME:CONTENT)", s)
	}
	return Tag{Name: name, Content: content}, nil
}

// Marks reports whether r, the content of a file named t.Name, is the
// tag: it starts with t.Content. It reads no more than that.
func (t Tag) Marks(r io.Reader) bool {
	if t.Content == "" {
		return true
	}
	buf := make([]byte, len(t.Content))
	if _, err := io.ReadFull(r, buf); err != nil {
		return false
	}
	return bytes.Equal(buf, []byte(t.Content))
}

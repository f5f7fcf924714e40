package selection

import (
	"fmt"
	"slices"
	"strconv"
)

// Spec is a Selection as the flags of 'azfs backup' give it: texts, which
// a machine's policy stores for the agent (package repo/policy) and each
// backup compiles anew (Selection). Exclude files are read into their
// patterns before (ReadPatternFile).
type Spec struct {
	Exclude  []string `json:"exclude,omitempty"`  // --exclude patterns, in order
	IExclude []string `json:"iexclude,omitempty"` // --iexclude patterns, in order
	// ExcludeCaches leaves out directories tagged CACHEDIR.TAG (CacheTag).
	ExcludeCaches bool `json:"exclude_caches,omitempty"`
	// ExcludeIfPresent are --exclude-if-present's NAME[:CONTENT].
	ExcludeIfPresent []string `json:"exclude_if_present,omitempty"`
	// LargerThan, when above zero, leaves out larger files, in bytes.
	LargerThan    int64 `json:"exclude_larger_than,omitempty"`
	OneFileSystem bool  `json:"one_file_system,omitempty"`
	// IncludeFS are pseudo file system types entered anyway.
	IncludeFS []string `json:"include_fs,omitempty"`
}

// IsZero reports whether s leaves out nothing beyond the defaults.
func (s Spec) IsZero() bool {
	return len(s.Exclude) == 0 && len(s.IExclude) == 0 && !s.ExcludeCaches && len(s.ExcludeIfPresent) == 0 &&
		s.LargerThan == 0 && !s.OneFileSystem && len(s.IncludeFS) == 0
}

// Selection compiles s. A pattern or tag that does not parse is an error
// wrapping ErrBadPattern or naming the tag.
func (s Spec) Selection() (*Selection, error) {
	if s.LargerThan < 0 {
		return nil, fmt.Errorf("exclude-larger-than %d: negative", s.LargerThan)
	}
	sel := &Selection{
		LargerThan:  s.LargerThan,
		FileSystems: FileSystems{OneFileSystem: s.OneFileSystem, Include: slices.Clone(s.IncludeFS)},
	}
	for _, text := range s.Exclude {
		if err := sel.Exclude.Add(text, false); err != nil {
			return nil, err
		}
	}
	for _, text := range s.IExclude {
		if err := sel.IExclude.Add(text, true); err != nil {
			return nil, err
		}
	}
	if s.ExcludeCaches {
		sel.Tags = append(sel.Tags, CacheTag)
	}
	for _, text := range s.ExcludeIfPresent {
		tag, err := ParseTag(text)
		if err != nil {
			return nil, err
		}
		sel.Tags = append(sel.Tags, tag)
	}
	return sel, nil
}

// Flags writes s as the flags of 'azfs backup' that give it, each value
// quoted as Go quotes a string, for people.
func (s Spec) Flags() []string {
	var out []string
	add := func(flag string, values []string) {
		for _, v := range values {
			out = append(out, flag+" "+strconv.Quote(v))
		}
	}
	add("--exclude", s.Exclude)
	add("--iexclude", s.IExclude)
	if s.ExcludeCaches {
		out = append(out, "--exclude-caches")
	}
	add("--exclude-if-present", s.ExcludeIfPresent)
	if s.LargerThan > 0 {
		out = append(out, "--exclude-larger-than "+strconv.FormatInt(s.LargerThan, 10))
	}
	if s.OneFileSystem {
		out = append(out, "--one-file-system")
	}
	add("--include-fs", s.IncludeFS)
	return out
}

package selection

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// restic's documented behaviour of one pattern (its manual's "Excluding
// files" and the table its filter package checks), matched against
// absolute paths as a backup walk sees them.
var matchTests = []struct {
	pattern, path string
	match         bool
}{
	{"*.go", "/foo/bar/test.go", true},
	{"*.c", "/foo/bar/test.go", false},
	{"*", "/foo/bar/test.go", true},
	{"**", "/foo/bar/test.go", true},
	{"foo*", "/foo/bar/test.go", true},
	{"bar*", "/foo/bar/test.go", true},
	{"/bar*", "/foo/bar/test.go", false},
	{"bar/*", "/foo/bar/test.go", true},
	{"baz/*", "/foo/bar/test.go", false},
	{"bar/test.go", "/foo/bar/test.go", true},
	{"ba*/*.go", "/foo/bar/test.go", true},
	{"bb*/*.go", "/foo/bar/test.go", false},
	{"tesT.*", "/foo/bar/test.go", false},
	{"bar", "/foo/bar", true},
	{"/foo/bar", "/foo/bar", true},
	{"/foo/bar/", "/foo/bar", true},
	{"/foo/bar", "/foo/baz", false},
	{"/foo///bar", "/foo/bar", true},
	{"/foo/../bar", "/foo/bar", false},
	{"/foo/../bar", "/bar", true},
	{"/foo", "/foo/baz", true},
	{"/foo/*", "/foo", false},
	{"/foo/*", "/foo/baz", true},
	{"bar", "/foo/bar/baz", true},
	{"/foo/*test.*", "/foo/bar/test.go", false},
	{"/foo/*/test.*", "/foo/bar/test.go", true},
	{"/*/*/bar/test.*", "/foo/bar/test.go", false},
	{"/*/*/baz/test.*", "/foo/bar/baz/test.go", true},
	{"sdk", "/foo/bar/sdk/test/sdk_foo.go", true},
	{"sdk/*/cpp/*/*vars*.html", "/usr/share/doc/libreoffice/sdk/docs/cpp/ref/a00517.html", false},
	{"foo/**/bar/*.go", "/home/user/foo/work/special/project/bar/test.go", true},
	{"foo/**/bar/*.go", "/home/user/foo/bar/test.go", true},
	{"foo/**/bar/*.go", "/foo/bar/baz/bar/test.go", true},
	{"foo/**/bar/*.go", "/home/user/foo/test.c", false},
	{"foo/**/bar/*.go", "/bar/foo/main.go", false},
	{"foo/**/bar", "/home/user/foo/x/y/bar/main.go", true},
	{"foo/**/bar/**/x", "/home/user/foo/blaaa/blaz/bar/shared/work/x", true},
	{"user/**/important*", "/home/user/work/x/y/hidden/x", false},
	{"user/**/hidden*/**/c", "/home/user/work/x/y/hidden/z/a/b/c", true},
	{"/home/[uU]ser/?.go", "/home/user/F.go", true},
	{"/home/[^u]ser/?.go", "/home/user/F.go", false},
	{"/home/user/?.go", "/home/user/FF.go", false},
	{`/a/\*`, "/a/*", true},
	{`/a/\*`, "/a/b", false},
	// restic's manual: "*.o" anywhere, "node_modules" at any depth.
	{"node_modules", "/srv/app/node_modules/x/y.js", true},
	{"*~", "/home/user/notes.txt~", true},
	{"*~", "/home/user/notes.txt", false},
}

func TestPatternMatchesAsRestic(t *testing.T) {
	for _, tc := range matchTests {
		p, err := ParsePattern(tc.pattern, false)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
		}
		if got := p.Match(tc.path); got != tc.match {
			t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.path, got, tc.match)
		}
	}
}

func TestFoldedPatternIgnoresCase(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		match         bool
	}{
		{"tesT.*", "/foo/bar/test.go", true},
		{"/FOO/bar", "/foo/BAR/x", true},
		{"*.JPG", "/p/a.jpg", true},
		{"[A-C]*", "/b.txt", true},
		{"*.jpg", "/p/a.png", false},
	} {
		p, err := ParsePattern(tc.pattern, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tc.path); got != tc.match {
			t.Errorf("case-insensitive %q matches %q: %v, want %v", tc.pattern, tc.path, got, tc.match)
		}
	}
}

func TestBadPatternsRefused(t *testing.T) {
	for _, s := range []string{"", "  ", "!", "/", "/..", "!//", "/a/[b", `x\`, "a/**/[", "[]"} {
		if _, err := ParsePattern(s, false); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ParsePattern(%q) = %v, want ErrBadPattern", s, err)
		}
	}
}

// restic's list semantics: later re-includes cancel earlier matches.
func TestPatternsReinclude(t *testing.T) {
	home := []string{"/home/u/**/*", "!/home/u/Documents", "!/home/u/code", "node_modules", "*.o", "/home/u/code/linux/*", "!/home/u/code/linux/.git"}
	for _, tc := range []struct {
		path     string
		excluded bool
	}{
		{"/home/u", false},
		{"/home/u/Music", true},
		{"/home/u/Music/a.mp3", true},
		{"/home/u/Documents", false},
		{"/home/u/Documents/cv.pdf", false},
		{"/home/u/code/x/main.o", true},
		{"/home/u/code/app/node_modules", true},
		{"/home/u/code/linux/kernel", true},
		{"/home/u/code/linux/.git", false},
		{"/etc/passwd", false},
	} {
		var ps Patterns
		for _, s := range home {
			if err := ps.Add(s, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := walkExcludes(ps.Excluded, tc.path); got != tc.excluded {
			t.Errorf("%q excluded: %v, want %v", tc.path, got, tc.excluded)
		}
	}
	// A re-include before the exclude it should cancel does nothing.
	var ps Patterns
	_ = ps.Add("!*.keep", false)
	_ = ps.Add("*", false)
	if !walkExcludes(ps.Excluded, "/a.keep") {
		t.Error("a re-include listed before the exclude cancelled it")
	}
}

func TestExcludeAndIExcludeAreSeparateLists(t *testing.T) {
	var s Selection
	_ = s.Exclude.Add("*.log", false)
	_ = s.IExclude.Add("*.TMP", true)
	_ = s.IExclude.Add("!keep.tmp", true)
	for path, want := range map[string]bool{
		"/x/a.log": true, "/x/a.tmp": true, "/x/B.Tmp": true, "/x/KEEP.tmp": false, "/x/a.LOG": false, "/x/a.txt": false,
	} {
		if got := walkExcludes(func(n []string) bool { return s.ExcludedPath("/" + strings.Join(n, "/")) }, path); got != want {
			t.Errorf("%q excluded: %v, want %v", path, got, want)
		}
	}
	if (&Selection{}).ExcludedPath("/any") {
		t.Error("the zero Selection excluded a path")
	}
}

func TestExcludeFileAsRestic(t *testing.T) {
	t.Setenv("AZFS_TEST_HOME", "/home/u")
	file := "# comment\n\n   *.o   \n$AZFS_TEST_HOME/.cache\n${AZFS_TEST_HOME}/tmp\n/price/$$5\n  # indented comment\n"
	var ps Patterns
	if err := ps.AddFile(strings.NewReader(file), "excl", false); err != nil {
		t.Fatal(err)
	}
	if len(ps.list) != 4 {
		t.Fatalf("read %d patterns, want 4: %v", len(ps.list), ps.list)
	}
	for path, want := range map[string]bool{
		"/a/b.o": true, "/home/u/.cache/x": true, "/home/u/tmp": true, "/price/$5": true, "/home/u/doc": false,
	} {
		if got := walkExcludes(ps.Excluded, path); got != want {
			t.Errorf("%q excluded: %v, want %v", path, got, want)
		}
	}
	err := (&Patterns{}).AddFile(strings.NewReader("ok\n/a/[b\n"), "excl", false)
	if !errors.Is(err, ErrBadPattern) || !strings.Contains(err.Error(), "excl line 2") {
		t.Errorf("bad line: %v, want ErrBadPattern naming excl line 2", err)
	}
}

func TestTags(t *testing.T) {
	if !CacheTag.Marks(strings.NewReader(CacheTag.Content + "\n# This file is a cache directory tag.\n")) {
		t.Error("a standard CACHEDIR.TAG is not a cache tag")
	}
	if CacheTag.Marks(strings.NewReader("Signature: 0000")) {
		t.Error("a CACHEDIR.TAG with another signature is a cache tag")
	}
	tag, err := ParseTag(".nobackup")
	if err != nil || tag != (Tag{Name: ".nobackup"}) || !tag.Marks(strings.NewReader("")) {
		t.Errorf("ParseTag(.nobackup) = %v, %v", tag, err)
	}
	tag, err = ParseTag("x:a:b")
	if err != nil || tag != (Tag{Name: "x", Content: "a:b"}) {
		t.Errorf("ParseTag(x:a:b) = %v, %v", tag, err)
	}
	for _, s := range []string{"", ":x", "a/b", ".."} {
		if _, err := ParseTag(s); err == nil {
			t.Errorf("ParseTag(%q) accepted", s)
		}
	}
	s := Selection{LargerThan: 10}
	if s.ExcludedSize(10) || !s.ExcludedSize(11) || (&Selection{}).ExcludedSize(1<<40) {
		t.Error("ExcludedSize is wrong")
	}
}

// walkExcludes asks excluded about path as a walk does: about each
// ancestor first, stopping at the first excluded one.
func walkExcludes(excluded func(names []string) bool, path string) bool {
	names := Names(path)
	for i := 1; i <= len(names); i++ {
		if excluded(names[:i]) {
			return true
		}
	}
	return false
}

func TestFileSystemsEntered(t *testing.T) {
	def := FileSystems{}
	for fstype, want := range map[string]bool{"ext4": true, "tmpfs": true, "": true, "proc": false, "sysfs": false, "fuse.azfs": false, "cgroup2": false, "fuse.sshfs": true} {
		if got := def.Enters(fstype); got != want {
			t.Errorf("default enters %q: %v, want %v", fstype, got, want)
		}
	}
	if (&FileSystems{OneFileSystem: true}).Enters("ext4") {
		t.Error("-x enters another ext4")
	}
	if !(&FileSystems{Include: []string{"proc"}}).Enters("proc") {
		t.Error("--include-fs proc does not enter proc")
	}
}

// TestReadPatternFiles: the files' patterns in order; a bad line names its
// file and line, a file that does not open is an error naming it.
func TestReadPatternFiles(t *testing.T) {
	dir := t.TempDir()
	a, b, bad := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "bad")
	for name, text := range map[string]string{a: "*.o\n# c\n", b: "/tmp\n", bad: "ok\n/a/[b\n"} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadPatternFiles([]string{a, b})
	if want := []string{"*.o", "/tmp"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadPatternFiles = %q, %v; want %q", got, err, want)
	}
	if _, err := ReadPatternFiles([]string{a, bad}); !errors.Is(err, ErrBadPattern) || !strings.Contains(err.Error(), bad+" line 2") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ReadPatternFiles([]string{filepath.Join(dir, "none")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

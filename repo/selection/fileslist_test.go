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

func TestReadListAsRestic(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.txt", "b.txt", "c.log", " spaced ", "#hash"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	var warned []string
	warn := func(msg string) { warned = append(warned, msg) }

	text := "# comment\n\n  " + j("*.txt") + "  \n" + j("c.log") + "\r\n" + j("none*") + "\n"
	got, err := ReadList(strings.NewReader(text), "list", Lines, warn)
	if want := []string{j("a.txt"), j("b.txt"), j("c.log")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Lines: %q, %v; want %q", got, err, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "list line 5") {
		t.Errorf("warnings %q, want one about line 5", warned)
	}
	if _, err := ReadList(strings.NewReader(j("[")+"\n"), "list", Lines, warn); err == nil {
		t.Error("a bad glob was accepted")
	}

	text = j("*.txt") + "\n\n" + j(" spaced ") + "\n" + j("#hash") + "\n"
	got, err = ReadList(strings.NewReader(text), "list", Verbatim, warn)
	if want := []string{j("*.txt"), j(" spaced "), j("#hash")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Verbatim: %q, %v; want %q", got, err, want)
	}

	text = j("new\nline") + "\x00" + j(" spaced ") + "\x00\x00" + j("last")
	got, err = ReadList(strings.NewReader(text), "list", Raw, warn)
	if want := []string{j("new\nline"), j(" spaced "), j("last")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Raw: %q, %v; want %q", got, err, want)
	}
}

// TestReadListPatterns: LinePatterns reads a --files-from list's lines as
// Lines does, without expanding them; a malformed pattern is an error.
func TestReadListPatterns(t *testing.T) {
	text := "# comment\n  /home/*/.config  \n\n/etc/nothing-matches-*\n"
	got, err := ReadList(strings.NewReader(text), "list", LinePatterns, func(msg string) { t.Errorf("warned %q", msg) })
	if want := []string{"/home/*/.config", "/etc/nothing-matches-*"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadList = %q, %v; want %q", got, err, want)
	}
	if _, err := ReadList(strings.NewReader("/a\n/b[\n"), "list", LinePatterns, nil); err == nil || !strings.Contains(err.Error(), "list line 2") {
		t.Errorf("malformed pattern: %v, want an error naming line 2", err)
	}
}

// TestReadListFiles: the lists are read in order, "-" from stdin; a list
// that does not open is an error naming it.
func TestReadListFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.list")
	if err := os.WriteFile(a, []byte("/x\n\n/y z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadListFiles([]string{a, "-"}, strings.NewReader("/from stdin\n"), Verbatim, nil)
	if want := []string{"/x", "/y z", "/from stdin"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadListFiles = %q, %v; want %q", got, err, want)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ReadListFiles([]string{a, missing}, nil, Verbatim, nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing list: %v", err)
	}
}

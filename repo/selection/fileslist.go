package selection

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ListFormat is how a list of paths to back up is written, as restic's
// --files-from, --files-from-verbatim and --files-from-raw read it.
type ListFormat uint8

const (
	// Lines: one path a line, surrounding blanks trimmed, blank lines and
	// lines starting with "#" skipped, glob patterns (filepath.Glob)
	// expanded; a pattern that matches nothing is skipped with a warning.
	Lines ListFormat = iota
	// Verbatim: one path a line, taken as it is; only empty lines skipped.
	Verbatim
	// Raw: paths separated by NUL bytes (find -print0), taken as they are.
	Raw
	// LinePatterns reads a Lines list without expanding it: its glob
	// patterns as written (each must be well-formed), for expanding later
	// elsewhere (the machine a policy's set is backed up on).
	LinePatterns
)

// ReadList returns the paths that r, a list in format (name is for
// messages), names; warn is told about each pattern that matched nothing.
// A bad glob pattern is an error.
func ReadList(r io.Reader, name string, format ListFormat, warn func(msg string)) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if format == Raw {
		sc.Split(splitNUL)
	}
	var paths []string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch format {
		case Raw, Verbatim:
			if line != "" {
				paths = append(paths, line)
			}
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if format == LinePatterns {
			if _, err := filepath.Match(line, ""); err != nil {
				return nil, fmt.Errorf("%s line %d: pattern %q: %w", name, n, line, err)
			}
			paths = append(paths, line)
			continue
		}
		matches, err := filepath.Glob(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: pattern %q: %w", name, n, line, err)
		}
		if len(matches) == 0 {
			warn(fmt.Sprintf("%s line %d: %q matches nothing; skipped", name, n, line))
		}
		paths = append(paths, matches...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return paths, nil
}

// splitNUL is a bufio.SplitFunc for NUL-separated items.
func splitNUL(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ReadListFiles returns the paths the lists in the files names name, in
// order, each read in format as ReadList reads it; the name "-" is stdin.
func ReadListFiles(names []string, stdin io.Reader, format ListFormat, warn func(msg string)) ([]string, error) {
	var paths []string
	for _, name := range names {
		list, err := readListFile(name, stdin, format, warn)
		if err != nil {
			return nil, err
		}
		paths = append(paths, list...)
	}
	return paths, nil
}

// readListFile reads the one list file name ("-": stdin).
func readListFile(name string, stdin io.Reader, format ListFormat, warn func(msg string)) ([]string, error) {
	if name == "-" {
		return ReadList(stdin, "stdin", format, warn)
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return ReadList(file, name, format, warn)
}

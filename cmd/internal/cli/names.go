package cli

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// QuoteNameIfNeeded renders a file system name for tables and lists that
// separate names with spaces: a name of printable characters other than
// spaces, quotes and backslashes as it is, any other as %q does.
func QuoteNameIfNeeded(name string) string {
	if name != "" && strings.IndexFunc(name, func(r rune) bool {
		return r == utf8.RuneError || r == ' ' || r == '"' || r == '\\' || !unicode.IsGraphic(r)
	}) < 0 {
		return name
	}
	return strconv.Quote(name)
}

// NamedError renders err, a failure about the file system name path, as
// one line: the name quoted as %q does (so that a name holding a newline, a
// carriage return or a terminal escape cannot forge or rewrite a line of
// output), then what went wrong. When err is path's *fs.PathError the
// name is not repeated; elsewhere in the message it is quoted too.
func NamedError(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path && err.Error() == pe.Error() {
		return strconv.Quote(path) + ": " + pe.Op + ": " + Message(pe.Err)
	}
	msg := err.Error()
	if path != "" {
		msg = strings.ReplaceAll(msg, path, strconv.Quote(path))
	}
	return strconv.Quote(path) + ": " + OneLine(msg)
}

// OneLine returns s with newlines as spaces and every other control
// character, and bytes that are not UTF-8, escaped as %q escapes them.
func OneLine(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\n':
			b.WriteByte(' ')
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			q := strconv.Quote(s[i : i+1])
			b.WriteString(q[1 : len(q)-1])
		case r != '\t' && unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

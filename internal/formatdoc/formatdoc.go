// Package formatdoc reads the test vectors of docs/format.md (§16) for the
// tests that pin them, so that the document cannot drift from the code: a
// value changed on either side fails a test. Tests only.
package formatdoc

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Tables returns §16's tables in order (the keys and sealed objects, the
// owner keys, certificate mode), each row keyed by its first cell (as
// written, Markdown included), each value the second cell. It fails t when
// the document or the section cannot be found.
func Tables(t testing.TB) []map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "format.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## 16. Test vectors\n")
	if !ok {
		t.Fatal("docs/format.md has no section \"16. Test vectors\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var tables []map[string]string
	var rows map[string]string // the table being read; nil between tables
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || cells[0] != "" || cells[3] != "" {
			rows = nil
			continue
		}
		if rows == nil {
			rows = map[string]string{}
			tables = append(tables, rows)
		}
		key, value := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		if key == "value" || strings.Trim(key, "-") == "" {
			continue
		}
		if _, dup := rows[key]; dup {
			t.Fatalf("docs/format.md §16: two rows %q in one table", key)
		}
		rows[key] = value
	}
	return tables
}

// Row returns the value of the row whose first cell is key, failing t when
// there is none.
func Row(t testing.TB, rows map[string]string, key string) string {
	t.Helper()
	v, ok := rows[key]
	if !ok {
		t.Fatalf("docs/format.md §16 has no row %q", key)
	}
	return v
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// Hex returns the bytes of the hexadecimal code spans in value, in order,
// concatenated, with what is outside them ("‖ siv", "(keyID = …)") and
// spaces inside them left out.
func Hex(t testing.TB, value string) []byte {
	t.Helper()
	var out []byte
	for _, m := range codeSpan.FindAllStringSubmatch(value, -1) {
		b, err := hex.DecodeString(strings.ReplaceAll(m[1], " ", ""))
		if err != nil {
			t.Fatalf("docs/format.md §16 value %q: %v", value, err)
		}
		out = append(out, b...)
	}
	if out == nil {
		t.Fatalf("docs/format.md §16 value %q holds no hex", value)
	}
	return out
}

// Spans returns the code spans of value, in order.
func Spans(value string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(value, -1) {
		out = append(out, m[1])
	}
	return out
}

// Check reports, on t, a value the code computes (got) that differs from
// the document's (want).
func Check(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: code gives %x, docs/format.md §16 says %x", what, got, want)
	}
}

// Counting returns the 32 bytes first, first+1, …, first+31: the keys of
// §16 (DataKey = 00 01 … 1f, and so on).
func Counting(first byte) (b [32]byte) {
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(fmt.Errorf("no go.mod above the test's directory"))
		}
		dir = parent
	}
}

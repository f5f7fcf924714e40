package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestNamedError(t *testing.T) {
	evil := "/src/evil\nazfs: backup complete"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: evil, Err: syscall.EACCES}, `"/src/evil\nazfs: backup complete": open: permission denied`},
		{fmt.Errorf("read: %w", &fs.PathError{Op: "read", Path: evil, Err: syscall.EIO}), `"/src/evil\nazfs: backup complete": read: read "/src/evil\nazfs: backup complete": input/output error`},
		{errors.New("changed while read\r\033[Kdone"), `"/src/evil\nazfs: backup complete": changed while read\r\x1b[Kdone`},
	} {
		if got := NamedError(evil, tc.err); got != tc.want {
			t.Errorf("NamedError(%v)\n got %s\nwant %s", tc.err, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, tabs\tkept":       "plain text, tabs\tkept",
		"two\nlines":                   "two lines",
		"erase\r\033[Kline":            `erase\r\x1b[Kline`,
		"bell\a and del\x7f":           `bell\a and del\x7f`,
		"not utf-8 \xff, but é \ufffd": `not utf-8 \xff, but é ` + "\ufffd",
		"c1 \u009b control":            `c1 \u009b control`,
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuoteNameIfNeeded(t *testing.T) {
	for in, want := range map[string]string{
		"/home/alice":       "/home/alice",
		"/srv/café":         "/srv/café",
		"/my files":         `"/my files"`,
		"/evil\nazfs: done": `"/evil\nazfs: done"`,
		"/a\"b":             `"/a\"b"`,
		"/bad\xff":          `"/bad\xff"`,
		"":                  `""`,
	} {
		if got := QuoteNameIfNeeded(in); got != want {
			t.Errorf("QuoteNameIfNeeded(%q) = %s, want %s", in, got, want)
		}
	}
}

package storage_test

import (
	"errors"
	"io/fs"
	"math"
	"testing"

	"github.com/azfs/azfs/repo/storage"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"config":               true,
		"keys/0123abcd":        true,
		"data/ab/ab0123":       true,
		"index/a.b-c_d":        true,
		"a/b/c":                true,
		"":                     false,
		"/":                    false,
		"/config":              false,
		"config/":              false,
		"data//ab":             false,
		".":                    false,
		"..":                   false,
		"data/../config":       false,
		"data/./ab":            false,
		".tmp-1":               false,
		"data/ab/.tmp-1":       false,
		"nul\x00":              false,
		"tab\there":            false,
		"del\x7f":              false,
		`back\slash`:           false,
		"data/ab/\xff-binary":  true, // bytes >= 0x80 are left to the backend
		"points/with space ok": true,
	} {
		if got := storage.ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for prefix, want := range map[string]bool{
		"":         true,
		"c":        true,
		"config":   true,
		"data/":    true,
		"data/a":   true,
		"data/ab/": true,
		"data/.":   true, // a partial last element can only match nothing
		"/":        false,
		"/data":    false,
		"data//":   false,
		"../":      false,
		"./data":   false,
		"a/../b":   false,
		"data\x00": false,
		`data\`:    false,
	} {
		if got := storage.ValidPrefix(prefix); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func TestClampRange(t *testing.T) {
	for _, tc := range []struct {
		size, off, length, want int64
		wantErr                 bool
	}{
		{size: 10, off: 0, length: -1, want: 10},
		{size: 10, off: 0, length: 4, want: 4},
		{size: 10, off: 8, length: 4, want: 2},
		{size: 10, off: 8, length: math.MaxInt64, want: 2},
		{size: 10, off: 10, length: -1, want: 0},
		{size: 10, off: 10, length: 3, want: 0},
		{size: 0, off: 0, length: -1, want: 0},
		{size: 10, off: 11, length: -1, wantErr: true},
		{size: 10, off: -1, length: 1, wantErr: true},
	} {
		got, err := storage.ClampRange(tc.size, tc.off, tc.length)
		if tc.wantErr {
			if !errors.Is(err, storage.ErrRange) {
				t.Errorf("ClampRange(%d, %d, %d) error = %v, want ErrRange", tc.size, tc.off, tc.length, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ClampRange(%d, %d, %d) = %d, %v; want %d, nil", tc.size, tc.off, tc.length, got, err, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	err := error(&storage.Error{Op: "load", Name: "data/ab/cd", Err: storage.ErrNotFound})
	if got, want := err.Error(), "storage: load data/ab/cd: object not found"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists) {
		t.Errorf("errors.Is does not see through Unwrap correctly for %v", err)
	}
	err = &storage.Error{Op: "list", Err: fs.ErrPermission}
	if got, want := err.Error(), "storage: list: permission denied"; got != want {
		t.Errorf("Error() with empty name = %q, want %q", got, want)
	}
}

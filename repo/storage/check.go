package storage

import (
	"context"
	"strings"
)

// Check returns the error an operation op on name fails with before it
// touches a backend: ctx is done, or name is not valid. It returns nil
// otherwise. Backends call it first in Save, Load, Stat and Delete.
func Check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Name: name, Err: err}
	}
	if !ValidName(name) {
		return &Error{Op: op, Name: name, Err: ErrInvalidName}
	}
	return nil
}

// CheckList is [Check] for List and its prefix.
func CheckList(ctx context.Context, prefix string) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: "list", Name: prefix, Err: err}
	}
	if !ValidPrefix(prefix) {
		return &Error{Op: "list", Name: prefix, Err: ErrInvalidName}
	}
	return nil
}

// PrefixDir returns the directory whose subtree holds every object that
// matches prefix, for backends that store objects as files: "data/ab"
// gives "data", "data/ab/" gives "data/ab", and "k" the root, "".
func PrefixDir(prefix string) string {
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		return prefix[:i]
	}
	return ""
}

// MayHold reports whether the directory dir (an object name's directory
// part, such as "data/ab") may hold objects matching prefix: it is on the
// way to prefix, or below it.
func MayHold(dir, prefix string) bool {
	dirPrefix := dir + "/"
	return strings.HasPrefix(dirPrefix, prefix) || strings.HasPrefix(prefix, dirPrefix)
}

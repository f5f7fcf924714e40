package errkind_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/azfs/azfs/internal/errkind"
)

func TestOf(t *testing.T) {
	damaged := errkind.New(errkind.Damaged, "malformed thing")
	busy := errkind.New(errkind.Busy, "locked")
	_, statErr := os.Stat("/nonexistent/errkind")
	for _, c := range []struct {
		name string
		err  error
		want errkind.Kind
	}{
		{"nil", nil, errkind.Other},
		{"plain", errors.New("x"), errkind.Other},
		{"sentinel", damaged, errkind.Damaged},
		{"wrapped", fmt.Errorf("load %s: %w", "x", damaged), errkind.Damaged},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", busy)), errkind.Busy},
		{"outermost kind wins", fmt.Errorf("%w: %w", busy, damaged), errkind.Busy},
		{"a kind itself", fmt.Errorf("x: %w", errkind.Permission), errkind.Permission},
		{"canceled", fmt.Errorf("read: %w", context.Canceled), errkind.Canceled},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), errkind.Timeout},
		{"os not exist", statErr, errkind.NotFound},
		{"errno exists", &fs.PathError{Op: "mkdir", Path: "x", Err: syscall.EEXIST}, errkind.Exists},
		{"errno permission", &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, errkind.Permission},
	} {
		if got := errkind.Of(c.err); got != c.want {
			t.Errorf("%s: Of(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestIs(t *testing.T) {
	damaged := errkind.New(errkind.Damaged, "malformed thing")
	err := fmt.Errorf("open point: %w", damaged)
	if !errors.Is(err, errkind.Damaged) {
		t.Error("errors.Is(wrapped damaged sentinel, Damaged) = false")
	}
	if errors.Is(err, errkind.NotFound) {
		t.Error("errors.Is(damaged, NotFound) = true")
	}
	if !errors.Is(err, damaged) {
		t.Error("the sentinel no longer matches itself")
	}
	if other := errkind.New(errkind.Damaged, "malformed thing"); errors.Is(err, other) {
		t.Error("two sentinels of one kind and message match each other: each New must be distinct")
	}
	if err.Error() != "open point: malformed thing" {
		t.Errorf("message %q: the kind must not change it", err)
	}
}

func TestKindString(t *testing.T) {
	seen := map[string]errkind.Kind{}
	for k := errkind.Other; k <= errkind.Timeout; k++ {
		s := k.String()
		if prev, dup := seen[s]; dup || s == "unknown error kind" {
			t.Errorf("kind %d is named %q (also kind %d)", k, s, prev)
		}
		seen[s] = k
	}
}

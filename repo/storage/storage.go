// Package storage defines where a vault's objects live.
//
// A vault is a flat collection of immutable, already-encrypted objects
// addressed by name. The [Storage] interface is deliberately small so that
// backends (a local directory, memory, remote services) are easy to write and
// wrappers (caching, rate limiting, fault injection, metrics) compose around
// any of them. Every backend must pass the conformance suite in package
// storagetest.
//
// # Names
//
// Names are slash-separated relative paths such as "config", "keys/<hex>",
// "data/ab/<hex>", "index/<hex>" and "points/<hex>". A valid name (see
// [ValidName]) is non-empty, does not start or end with "/", has no empty
// elements, and no element begins with "." (which rules out "." and ".." and
// reserves dot-names such as ".tmp-*" for backend bookkeeping). Names must not
// contain control characters (including NUL) or backslashes, so that they map
// onto local, NFS and SMB filesystems unchanged. Operations given an invalid
// name fail with an error wrapping [ErrInvalidName] without touching the
// backend.
//
// A name must never be both an object and a directory-like prefix of another
// object (for example "config" and "config/x"); vault layouts never do this,
// and filesystem backends cannot represent it.
//
// # Errors
//
// All errors returned by backends, except errors returned by a List callback,
// are *[Error] values recording the operation and the object name. Callers
// test for conditions with [errors.Is] against the sentinel errors
// [ErrNotFound], [ErrExists], [ErrRange], [ErrInvalidName] and
// [ErrPermission], or against context.Canceled and operating-system errors
// such as syscall.ENOSPC, which backends keep in the chain.
//
// # Ranged loads
//
// Load(ctx, name, off, length) reads the bytes of name in [off, off+length):
//
//   - length < 0 reads from off to the end of the object;
//   - if off+length exceeds the size, the result is the short tail that
//     exists, with no error;
//   - off == size yields a zero-length result and no error;
//   - off > size, or off < 0, fails with an error wrapping [ErrRange];
//   - a missing object fails with [ErrNotFound] whatever the range.
package storage

import (
	"context"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
)

// Storage is a store of immutable named objects.
//
// Implementations must be safe for concurrent use by multiple goroutines and,
// where the backend is shared (a directory on a network filesystem, a bucket),
// by multiple processes. Every method first checks ctx and fails with an error
// wrapping ctx.Err() if it is already done.
type Storage interface {
	// Save stores data under name atomically: readers see either nothing or
	// all of it. It never overwrites: if name exists it returns an error
	// wrapping ErrExists and the existing object is unchanged. When several
	// callers Save the same name concurrently, exactly one succeeds. Save
	// does not retain data after it returns. When Save returns nil the
	// object is durable.
	Save(ctx context.Context, name string, data []byte) error

	// Load returns length bytes of name starting at off; length < 0 means
	// to the end. Reading past the end returns the bytes that exist (a short
	// result); off equal to the size returns a zero-length result; off
	// beyond the end, or negative, returns an error wrapping ErrRange. A
	// missing object returns an error wrapping ErrNotFound. The caller owns
	// the returned slice.
	Load(ctx context.Context, name string, off, length int64) ([]byte, error)

	// Stat returns the object's name, size and modification time, or an
	// error wrapping ErrNotFound when it is missing.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix, in no
	// particular order. The prefix is a plain string prefix, not a path
	// element: "data/ab" matches "data/ab/1" and "data/abc/2". An empty
	// prefix lists everything. If fn returns an error, List stops and
	// returns that error unchanged. Objects saved or deleted while List runs
	// may or may not be reported.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes name, or returns an error wrapping ErrNotFound when it
	// is missing. When Delete returns nil the removal is durable.
	Delete(ctx context.Context, name string) error
}

// Info describes a stored object.
type Info struct {
	Name string // object name, as passed to Save
	Size int64  // size in bytes
	// Modified is when the object was saved, by the storage's own clock
	// (a file's mtime, a blob's Last-Modified); zero when the backend does
	// not say. Objects are never rewritten, so it is their creation time.
	// Whoever can only create objects (a blob vault's backup SAS) cannot
	// choose it.
	Modified time.Time
}

// Sentinel errors. Backends wrap them in *[Error]; test with [errors.Is].
var (
	ErrNotFound    = errkind.New(errkind.NotFound, "object not found")
	ErrExists      = errkind.New(errkind.Exists, "object already exists")
	ErrRange       = errkind.New(errkind.Invalid, "offset beyond end of object")
	ErrInvalidName = errkind.New(errkind.Invalid, "invalid object name")
	// ErrPermission reports an operation the storage refused to the
	// credentials in use: a SAS token that does not allow it, or that
	// expired or was revoked. It is fs.ErrPermission, so that a
	// directory's EACCES and EPERM match it too.
	ErrPermission = fs.ErrPermission
)

// Error records a failed storage operation.
type Error struct {
	Op   string // "save", "load", "stat", "list", "delete", or a backend's own, such as "open"
	Name string // object name, List prefix, or backend location for Open-like operations
	Err  error  // underlying error
}

// Error returns "storage: <op> <name>: <err>", omitting name when empty.
func (e *Error) Error() string {
	if e.Name == "" {
		return "storage: " + e.Op + ": " + e.Err.Error()
	}
	return "storage: " + e.Op + " " + e.Name + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ValidName reports whether name is a valid object name as described in the
// package documentation.
func ValidName(name string) bool {
	if name == "" || !validChars(name) {
		return false
	}
	for elem := range strings.SplitSeq(name, "/") {
		if !validElem(elem) {
			return false
		}
	}
	return true
}

// ValidPrefix reports whether prefix is acceptable to List: either empty, or
// a string whose complete elements (those followed by "/") are valid name
// elements. The final, possibly partial or empty, element is unrestricted
// apart from the character rules, so "data/", "data/a" and "k" are valid
// while "/data", "data//" and "../x" are not.
func ValidPrefix(prefix string) bool {
	if !validChars(prefix) {
		return false
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return true
	}
	for elem := range strings.SplitSeq(prefix[:i], "/") {
		if !validElem(elem) {
			return false
		}
	}
	return true
}

func validElem(elem string) bool {
	return elem != "" && elem[0] != '.'
}

func validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// ClampRange applies the Load range semantics to an object of the given size:
// it returns how many bytes to read starting at off, or [ErrRange] if off is
// negative or beyond size. Backends use it so that all of them agree.
func ClampRange(size, off, length int64) (int64, error) {
	if off < 0 || off > size {
		return 0, ErrRange
	}
	if rest := size - off; length < 0 || length > rest {
		return rest, nil
	}
	return length, nil
}

// LoaderInto is a Storage that can read into a caller's buffer (a local
// directory): LoadInto appends what Load would return to dst, reading into
// dst's room when that suffices. Readers that recycle their buffers (the
// mount's chunk loads) use it through [LoadInto].
type LoaderInto interface {
	LoadInto(ctx context.Context, dst []byte, name string, off, length int64) ([]byte, error)
}

// LoadInto is st.Load appending to dst, into dst's room, when st is a
// [LoaderInto] (the wrappers of this package pass it on); otherwise it
// returns Load's bytes as they are when dst is empty, else appended to it.
func LoadInto(ctx context.Context, st Storage, dst []byte, name string, off, length int64) ([]byte, error) {
	if l, ok := st.(LoaderInto); ok {
		return l.LoadInto(ctx, dst, name, off, length)
	}
	b, err := st.Load(ctx, name, off, length)
	if err != nil || len(dst) == 0 {
		return b, err
	}
	return append(dst, b...), nil
}

// Close releases what st holds between calls, such as the files a local
// directory keeps open for reading, when st implements io.Closer; the
// wrappers of this package pass it on. The storage stays usable.
func Close(st Storage) error {
	if c, ok := st.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

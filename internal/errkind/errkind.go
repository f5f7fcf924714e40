// Package errkind is azfs's one vocabulary of what went wrong, in the style
// of upspin's errors.Kind: every package's sentinel errors carry a Kind
// (New), callers classify an error by its Kind (Of, or errors.Is(err,
// kind)), and the two places that turn errors into something else — the
// mount's errno (fs) and the commands' exit codes (cmd/internal/cli) — each
// do it in one table from Kind.
//
// It imports only the standard library, so every package, keys and
// repo/storage included, can use it.
package errkind

import (
	"context"
	"errors"
	"io/fs"
)

// Kind is the class of an error. The zero Kind is Other.
//
// A Kind is itself an error, so that errors.Is(err, errkind.Damaged) reports
// whether err carries that kind (see New). Of also classifies the standard
// library's errors, which carry no kind.
type Kind uint8

// The kinds.
const (
	Other      Kind = iota // not classified
	Invalid                // an argument's value is not acceptable: a name, a pattern, a duration, a file given
	Usage                  // the command line itself is wrong: a missing or unknown argument or flag
	NotFound               // the named thing does not exist
	Exists                 // the thing to create exists already
	Permission             // refused to these keys, credentials or passphrase
	Damaged                // stored data does not authenticate or does not parse
	Busy                   // another process holds what is needed (a lock)
	Partial                // done, but some of it was left out (a backup that skipped files)
	Canceled               // the caller gave up
	Timeout                // a deadline passed
)

var names = [...]string{
	Other:      "other error",
	Invalid:    "invalid input",
	Usage:      "usage error",
	NotFound:   "not found",
	Exists:     "already exists",
	Permission: "permission denied",
	Damaged:    "damaged data",
	Busy:       "busy",
	Partial:    "partial",
	Canceled:   "canceled",
	Timeout:    "timed out",
}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "unknown error kind"
}

// Error names the kind, so that a Kind can be an errors.Is target.
func (k Kind) Error() string { return k.String() }

// Kind returns k: a Kind is of its own kind.
func (k Kind) Kind() Kind { return k }

// kindError is a sentinel error of a kind.
type kindError struct {
	kind Kind
	msg  string
}

func (e *kindError) Error() string { return e.msg }

// Kind returns the error's kind.
func (e *kindError) Kind() Kind { return e.kind }

// Is makes errors.Is(err, kind) true for an err that wraps e.
func (e *kindError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.kind
}

// New returns a sentinel error of kind k with the message msg: like
// errors.New, each call gives a distinct error, and errors.Is(err, k) is
// true for every error that wraps it.
func New(k Kind, msg string) error { return &kindError{kind: k, msg: msg} }

// Of returns the kind of err: the kind of the outermost error in its chain
// that has one (its Kind method), else the kind of the standard library
// error it wraps (context's cancellation and deadline; io/fs's not-exist,
// exist and permission, which are also os's and syscall's), else Other. Of
// nil is Other.
func Of(err error) Kind {
	var k interface{ Kind() Kind }
	switch {
	case err == nil:
		return Other
	case errors.As(err, &k):
		return k.Kind()
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, fs.ErrNotExist):
		return NotFound
	case errors.Is(err, fs.ErrExist):
		return Exists
	case errors.Is(err, fs.ErrPermission):
		return Permission
	}
	return Other
}

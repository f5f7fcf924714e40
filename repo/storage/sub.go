package storage

import (
	"context"
	"strings"
)

// Sub returns the part of st under prefix (which must end in "/") as a
// storage of its own: names are relative to the prefix.
func Sub(st Storage, prefix string) Storage {
	return &sub{st: st, prefix: prefix}
}

type sub struct {
	st     Storage
	prefix string
}

func (s *sub) name(op, name string) (string, error) {
	if !ValidName(name) {
		return "", &Error{Op: op, Name: name, Err: ErrInvalidName}
	}
	return s.prefix + name, nil
}

func (s *sub) Save(ctx context.Context, name string, data []byte) error {
	full, err := s.name("save", name)
	if err != nil {
		return err
	}
	return s.rel(s.st.Save(ctx, full, data))
}

func (s *sub) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	full, err := s.name("load", name)
	if err != nil {
		return nil, err
	}
	b, err := s.st.Load(ctx, full, off, length)
	return b, s.rel(err)
}

// LoadInto is Load into dst's room when the whole storage can ([LoadInto]).
func (s *sub) LoadInto(ctx context.Context, dst []byte, name string, off, length int64) ([]byte, error) {
	full, err := s.name("load", name)
	if err != nil {
		return nil, err
	}
	b, err := LoadInto(ctx, s.st, dst, full, off, length)
	return b, s.rel(err)
}

func (s *sub) Stat(ctx context.Context, name string) (Info, error) {
	full, err := s.name("stat", name)
	if err != nil {
		return Info{}, err
	}
	fi, err := s.st.Stat(ctx, full)
	fi.Name = strings.TrimPrefix(fi.Name, s.prefix)
	return fi, s.rel(err)
}

func (s *sub) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if prefix != "" && !ValidPrefix(prefix) {
		return &Error{Op: "list", Name: prefix, Err: ErrInvalidName}
	}
	return s.rel(s.st.List(ctx, s.prefix+prefix, func(fi Info) error {
		fi.Name = strings.TrimPrefix(fi.Name, s.prefix)
		return fn(fi)
	}))
}

func (s *sub) Delete(ctx context.Context, name string) error {
	full, err := s.name("delete", name)
	if err != nil {
		return err
	}
	return s.rel(s.st.Delete(ctx, full))
}

var _ Storage = (*sub)(nil)

// rel rewrites a storage error to name the object as the caller did. An
// error that wraps one, such as one a wrapper added advice to, is left as
// it is: rewriting the one inside would drop what wraps it.
func (s *sub) rel(err error) error {
	e, ok := err.(*Error)
	if !ok || !strings.HasPrefix(e.Name, s.prefix) {
		return err
	}
	c := *e
	c.Name = strings.TrimPrefix(e.Name, s.prefix)
	return &c
}

// Close passes [Close] on to the whole storage.
func (s *sub) Close() error { return Close(s.st) }

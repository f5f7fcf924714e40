// Package mem implements an in-memory [storage.Storage] for unit tests.
//
// A [Store] is safe for concurrent use and copies data in and out, so callers
// may reuse the slices they pass to Save and modify the slices Load returns.
package mem

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/azfs/azfs/repo/storage"
)

// Store is an in-memory object store. The zero value is not usable; call [New].
type Store struct {
	// Clock, when set, says when objects are saved (their Info.Modified);
	// tests set it to make time pass. Default: time.Now.
	Clock func() time.Time

	mu      sync.RWMutex
	objects map[string][]byte
	saved   map[string]time.Time
}

var _ storage.Storage = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{objects: make(map[string][]byte), saved: make(map[string]time.Time)}
}

// Save stores a copy of data under name unless name already exists.
func (s *Store) Save(ctx context.Context, name string, data []byte) error {
	if err := storage.Check(ctx, "save", name); err != nil {
		return err
	}
	buf := append([]byte{}, data...)
	now := time.Now
	if s.Clock != nil {
		now = s.Clock
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; ok {
		return &storage.Error{Op: "save", Name: name, Err: storage.ErrExists}
	}
	s.objects[name] = buf
	s.saved[name] = now().UTC()
	return nil
}

// Load returns a copy of the requested range of name.
func (s *Store) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := storage.Check(ctx, "load", name); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, ok := s.objects[name]
	if !ok {
		return nil, &storage.Error{Op: "load", Name: name, Err: storage.ErrNotFound}
	}
	n, err := storage.ClampRange(int64(len(data)), off, length)
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	return append([]byte{}, data[off:off+n]...), nil
}

// Stat returns the size of name and when it was saved.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.Check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, ok := s.objects[name]
	if !ok {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: storage.ErrNotFound}
	}
	return storage.Info{Name: name, Size: int64(len(data)), Modified: s.saved[name]}, nil
}

// List calls fn for every object whose name starts with prefix. It takes a
// snapshot first and calls fn without holding the lock, so fn may use the
// store.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.CheckList(ctx, prefix); err != nil {
		return err
	}
	var infos []storage.Info
	s.mu.RLock()
	for name, data := range s.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, storage.Info{Name: name, Size: int64(len(data)), Modified: s.saved[name]})
		}
	}
	s.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes name.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.Check(ctx, "delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; !ok {
		return &storage.Error{Op: "delete", Name: name, Err: storage.ErrNotFound}
	}
	delete(s.objects, name)
	delete(s.saved, name)
	return nil
}

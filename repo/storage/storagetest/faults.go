package storagetest

import (
	"context"
	"errors"

	"github.com/azfs/azfs/repo/storage"
)

// ErrInjected is the error injected by FailingSaves.
var ErrInjected = errors.New("injected storage failure")

// FailingSaves wraps a storage so that Save fails, with an error wrapping
// ErrInjected, for every name Fail reports; everything else passes through.
type FailingSaves struct {
	storage.Storage
	Fail func(name string) bool
}

var _ storage.Storage = (*FailingSaves)(nil)

// Save fails for the names Fail selects and saves the others.
func (f *FailingSaves) Save(ctx context.Context, name string, data []byte) error {
	if f.Fail(name) {
		return &storage.Error{Op: "save", Name: name, Err: ErrInjected}
	}
	return f.Storage.Save(ctx, name, data)
}

// Package location turns a vault location, as a user writes it, into
// storage: a local directory, a directory of an SMB share
// (smb://[USER@]HOST/SHARE/PATH or \\HOST\SHARE\PATH), or an Azure Blob
// container (azblob://ACCOUNT/CONTAINER[/PREFIX] or its https URL). It
// chooses the credential a blob container is reached with ([Auth]), logs on
// to a share with the password its caller supplies ([Share]), wraps the
// storage of both in retries, and adds to the errors of requests the
// storage refuses what to do about them. It asks nothing of a user: the
// caller supplies passwords.
package location

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/smb"
)

// Options say how to reach a location's storage.
type Options struct {
	Blob  Auth  // a blob container's credential
	Share Share // a share's account
	// Counts, when set, tallies the requests of the storage Open returns.
	Counts *storage.Counts
}

// Open opens the storage at a vault location: a local directory, a
// directory of an SMB share (logged on as opts.Share says), or a blob
// container authenticated as opts.Blob says. It returns the storage
// (retried for a share or a blob container, and counted in opts.Counts),
// the location as the keyring records it (an absolute path, the share's
// smb:// URL or the container's URL) and, for a blob container, the
// container itself, unwrapped, for what only its owner does with it
// (minting and revoking SAS tokens); nil otherwise.
func Open(location string, opts Options) (storage.Storage, string, *azblob.Store, error) {
	st, name, container, err := open(location, opts)
	if err != nil || opts.Counts == nil {
		return st, name, container, err
	}
	return storage.Count(st, opts.Counts), name, container, nil
}

func open(location string, opts Options) (storage.Storage, string, *azblob.Store, error) {
	if smb.IsLocation(location) {
		st, name, err := openShare(location, opts.Share, smb.Open)
		return st, name, nil, err
	}
	if IsBlob(location) {
		return openBlob(location, opts.Blob, azblob.Open)
	}
	abs, err := filepath.Abs(location)
	if err != nil {
		return nil, "", nil, fmt.Errorf("vault location %s: %w", location, err)
	}
	st, err := local.Open(abs)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, abs, nil, fmt.Errorf("no vault at %s: the directory does not exist", abs)
		}
		return nil, abs, nil, fmt.Errorf("no vault at %s: %w", abs, err)
	}
	return st, abs, nil, nil
}

// Create returns the storage for a new vault at location and the location
// as the keyring records it: a blob container (created if missing,
// authenticated as opts.Blob says), or a directory, local or on an SMB
// share (created if missing, refused if it holds anything). Its requests
// are not counted.
func Create(location string, opts Options) (storage.Storage, string, error) {
	if smb.IsLocation(location) {
		st, name, err := openShare(location, opts.Share, smb.Create)
		if err != nil {
			return nil, name, err
		}
		return st, name, refuseUsed(st, name)
	}
	if IsBlob(location) {
		st, name, _, err := openBlob(location, opts.Blob, azblob.Create)
		return st, name, err
	}
	path, err := filepath.Abs(location)
	if err != nil {
		return nil, "", err
	}
	if entries, err := os.ReadDir(path); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(path, "config")); err == nil {
			return nil, path, fmt.Errorf("a vault already exists at %s", path)
		}
		return nil, path, fmt.Errorf("%s is not empty: a new vault needs an empty or missing directory", path)
	}
	st, err := local.Create(path)
	if err != nil {
		return nil, path, fmt.Errorf("create vault at %s: %w", path, err)
	}
	return st, path, nil
}

// IsLocal reports whether location names a directory rather than a blob
// container or an SMB share.
func IsLocal(location string) bool {
	return !IsBlob(location) && !smb.IsLocation(location)
}

// IsBlob reports whether location names an Azure Blob container
// (azblob://ACCOUNT/CONTAINER[/PREFIX] or an http(s) URL) rather than a
// directory.
func IsBlob(location string) bool {
	return strings.HasPrefix(location, "azblob://") || strings.HasPrefix(location, "https://") || strings.HasPrefix(location, "http://")
}

// Canonical returns location as Open names it and the keyring records it:
// an absolute path, a share's smb:// URL (logged on as shareUser when the
// location names no user), or a blob container's URL.
func Canonical(location, shareUser string) (string, error) {
	if smb.IsLocation(location) {
		loc, err := smb.ParseLocation(location, shareUser)
		if err != nil {
			return "", err
		}
		return loc.String(), nil
	}
	if IsBlob(location) {
		loc, err := azblob.ParseLocation(location)
		if err != nil {
			return "", err
		}
		return loc.String(), nil
	}
	abs, err := filepath.Abs(location)
	if err != nil {
		return "", fmt.Errorf("vault location %s: %w", location, err)
	}
	return abs, nil
}

// openBlob opens (or creates) a blob container vault with the credential
// auth chooses (see [Auth]). The storage it returns is retried, and adds
// to the errors of refused requests what to do.
func openBlob(location string, auth Auth, open func(context.Context, azblob.Location, azblob.Auth) (*azblob.Store, error)) (storage.Storage, string, *azblob.Store, error) {
	loc, err := azblob.ParseLocation(location)
	if err != nil {
		return nil, location, nil, err
	}
	name := loc.String()
	cred, src, err := auth.choose(os.Getenv)
	if err != nil {
		return nil, name, nil, fmt.Errorf("vault %s: %w", name, err)
	}
	if src == fromDefaultChain {
		if cred.Token, err = defaultCredential(); err != nil {
			return nil, name, nil, noCredential(name, err)
		}
	}
	c, err := open(context.Background(), loc, cred)
	if err != nil {
		var resp *azcore.ResponseError
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil, name, nil, fmt.Errorf("no vault at %s: the container does not exist", name)
		case errors.Is(err, storage.ErrPermission):
			return nil, name, nil, fmt.Errorf("vault %s: %w: %s", name, err, auth.refused(src))
		case src == fromDefaultChain && !errors.As(err, &resp):
			return nil, name, nil, noCredential(name, err)
		}
		return nil, name, nil, fmt.Errorf("vault %s: %w", name, err)
	}
	// Over a network, one failed request must not fail a whole backup.
	return explained{Storage: retry.Wrap(c, retry.DefaultPolicy), hint: auth.refused(src)}, name, c, nil
}

// explained adds what to do to the errors of requests the storage refuses
// to the credential in use.
type explained struct {
	storage.Storage
	hint string
}

func (e explained) explain(err error) error {
	if errors.Is(err, storage.ErrPermission) && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("%w: %s", err, e.hint)
	}
	return err
}

func (e explained) Save(ctx context.Context, name string, data []byte) error {
	return e.explain(e.Storage.Save(ctx, name, data))
}

func (e explained) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	b, err := e.Storage.Load(ctx, name, off, length)
	return b, e.explain(err)
}

func (e explained) Stat(ctx context.Context, name string) (storage.Info, error) {
	fi, err := e.Storage.Stat(ctx, name)
	return fi, e.explain(err)
}

func (e explained) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return e.explain(e.Storage.List(ctx, prefix, fn))
}

func (e explained) Delete(ctx context.Context, name string) error {
	return e.explain(e.Storage.Delete(ctx, name))
}

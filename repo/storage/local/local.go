// Package local implements [storage.Storage] on a local directory, which may
// also be an NFS or SMB mount.
//
// Each object is a regular file at the object's name below the root
// directory, so "data/ab/<hex>" is stored in <root>/data/ab/<hex>. Files are
// created with mode 0600 and directories with mode 0700.
//
// Save writes to a temporary file named ".tmp-*" in the target directory,
// fsyncs it, hard-links it to the final name and removes the temporary name,
// then fsyncs the directory. Because link(2) fails if the target exists,
// objects are never overwritten even with many concurrent writers, in this
// or other processes, and readers never see a partial object. The filesystem
// must therefore support hard links (local filesystems and NFS do; SMB
// mounts need the Unix extensions). A crash may leave ".tmp-*" files behind;
// they are never listed and may be deleted by hand.
//
// Delete leaves empty parent directories in place: removing them would race
// with concurrent Saves into the same directory.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/azfs/azfs/repo/storage"
)

// tmpPrefix starts the names of temporary files. Valid object names never
// have an element starting with ".", so these never collide with objects.
const tmpPrefix = ".tmp-"

// Dir is a vault stored in a local directory.
type Dir struct {
	root string // absolute path of the vault directory
}

var _ storage.Storage = (*Dir)(nil)

// Open returns the vault stored in dir, which must be an existing directory.
// A missing directory yields an error wrapping both [storage.ErrNotFound]
// and [fs.ErrNotExist].
func Open(dir string) (*Dir, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, &storage.Error{Op: "open", Name: dir, Err: err}
	}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &storage.Error{Op: "open", Name: dir, Err: fmt.Errorf("%w: %w", storage.ErrNotFound, err)}
	case err != nil:
		return nil, &storage.Error{Op: "open", Name: dir, Err: err}
	case !fi.IsDir():
		return nil, &storage.Error{Op: "open", Name: dir, Err: syscall.ENOTDIR}
	}
	return &Dir{root: root}, nil
}

// Create makes dir, and any missing parents, with mode 0700 if it does not
// exist, and returns the vault stored there. An existing directory is used
// as is, whether empty or not; the vault layer decides what to do with it.
func Create(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &storage.Error{Op: "create", Name: dir, Err: err}
	}
	return Open(dir)
}

// path returns the filesystem path of a validated object name.
func (d *Dir) path(name string) string {
	return filepath.Join(d.root, filepath.FromSlash(name))
}

// check validates the common preconditions of every operation.
func check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return &storage.Error{Op: op, Name: name, Err: err}
	}
	if !storage.ValidName(name) {
		return &storage.Error{Op: op, Name: name, Err: storage.ErrInvalidName}
	}
	return nil
}

// Save stores data under name atomically and durably, failing with
// [storage.ErrExists] if name already exists. A failed Save, including one
// that runs out of space (syscall.ENOSPC), leaves neither a final object nor
// a temporary file behind.
func (d *Dir) Save(ctx context.Context, name string, data []byte) error {
	if err := check(ctx, "save", name); err != nil {
		return err
	}
	final := d.path(name)
	// Cheap early answer for the common case of saving a known object; the
	// link below is what actually guarantees never overwriting.
	if _, err := os.Lstat(final); err == nil {
		return &storage.Error{Op: "save", Name: name, Err: storage.ErrExists}
	}
	dir := filepath.Dir(final)
	if err := d.mkdirAll(dir); err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	// Last chance to abort cheaply before the object becomes visible.
	err = ctx.Err()
	if err == nil {
		err = link(tmp, final)
	}
	// The temporary name goes whatever happened: on success the data lives
	// on under the final name. Failing to remove it is harmless (temporary
	// files are never listed), so that is deliberately not reported.
	os.Remove(tmp)
	if err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	// One directory sync makes both the link and the unlink durable.
	if err := syncDir(dir); err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir, syncs and closes it,
// and returns its path. On failure it removes the file.
func writeTemp(dir string, data []byte) (path string, err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// link hard-links tmp to final, translating "final exists" into
// [storage.ErrExists].
func link(tmp, final string) error {
	err := os.Link(tmp, final)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Over NFS a retransmitted LINK whose first attempt succeeded reports
	// EEXIST. If final is our temporary file, the link did succeed.
	tfi, terr := os.Stat(tmp)
	ffi, ferr := os.Stat(final)
	if terr == nil && ferr == nil && os.SameFile(tfi, ffi) {
		return nil
	}
	return fmt.Errorf("%w: %w", storage.ErrExists, err)
}

// mkdirAll is like [os.MkdirAll] with mode 0700, but also fsyncs the parent
// of every directory it creates so that the new entries are durable.
func (d *Dir) mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) || dir == d.root {
		return err
	}
	parent := filepath.Dir(dir)
	if err := d.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		// Another writer may have created it meanwhile.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so that entries added to or removed from it are
// durable. Filesystems that cannot sync directories (some network and FUSE
// filesystems report EINVAL or ENOTSUP) are accepted as they are.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load reads exactly the requested range of name with pread.
func (d *Dir) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := check(ctx, "load", name); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(name))
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: notFound(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &storage.Error{Op: "load", Name: name, Err: storage.ErrNotFound}
	}
	n, err := storage.ClampRange(fi.Size(), off, length)
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	buf := make([]byte, n)
	if got, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		if errors.Is(err, io.EOF) {
			// Objects are immutable, so this means outside interference.
			err = fmt.Errorf("file shrank while reading (%d of %d bytes at offset %d): %w", got, n, off, io.ErrUnexpectedEOF)
		}
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	return buf, nil
}

// Stat returns the size and modification time of name.
func (d *Dir) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(d.path(name))
	if err != nil {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: notFound(err)}
	}
	if !fi.Mode().IsRegular() {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: storage.ErrNotFound}
	}
	return storage.Info{Name: name, Size: fi.Size(), Modified: fi.ModTime().UTC()}, nil
}

// List walks only the directory subtree that prefix falls in, skipping
// subdirectories that cannot contain a match and temporary files.
func (d *Dir) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return &storage.Error{Op: "list", Name: prefix, Err: err}
	}
	if !storage.ValidPrefix(prefix) {
		return &storage.Error{Op: "list", Name: prefix, Err: storage.ErrInvalidName}
	}
	// "data/ab" walks data/, "data/ab/" walks data/ab/, "k" walks the root.
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = d.path(prefix[:i])
	}
	return filepath.WalkDir(start, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// The start directory does not exist (nothing matches), or
				// an entry vanished while walking.
				return nil
			}
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		if err := ctx.Err(); err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		if path == d.root {
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(e.Name(), ".") {
			// Temporary files, or anything else that cannot be an object.
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			// Descend only into directories on the way to prefix or below it.
			if dirPrefix := name + "/"; !strings.HasPrefix(dirPrefix, prefix) && !strings.HasPrefix(prefix, dirPrefix) {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		return fn(storage.Info{Name: name, Size: fi.Size(), Modified: fi.ModTime().UTC()})
	})
}

// Delete removes name and makes the removal durable.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := check(ctx, "delete", name); err != nil {
		return err
	}
	path := d.path(name)
	fi, err := os.Lstat(path)
	if err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: notFound(err)}
	}
	if !fi.Mode().IsRegular() {
		return &storage.Error{Op: "delete", Name: name, Err: storage.ErrNotFound}
	}
	if err := os.Remove(path); err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: notFound(err)}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: err}
	}
	return nil
}

// notFound maps "does not exist" errors, including a path element that is a
// file rather than a directory, to [storage.ErrNotFound] and returns other
// errors unchanged.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return storage.ErrNotFound
	}
	return err
}

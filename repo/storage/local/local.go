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
//
// No object is reached through a symbolic link: each operation opens the
// vault directory (which may itself be a link the user named) and resolves
// the rest from it with openat2 and RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH, or,
// where the kernel lacks openat2, one component at a time with O_NOFOLLOW.
// A link met on the way fails the operation with an error naming the link
// and its target (wrapping syscall.ELOOP), and List skips links. Whoever
// can write the vault directory therefore cannot make azfs, often root,
// write, read or delete anything outside it.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/storage"
)

// tmpPrefix starts the names of temporary files. Valid object names never
// have an element starting with ".", so these never collide with objects.
const tmpPrefix = ".tmp-"

// Dir is a vault stored in a local directory.
type Dir struct {
	root  string   // absolute path of the vault directory
	files *handles // objects kept open for Load
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
	return &Dir{root: root, files: newHandles(openFiles)}, nil
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

// openRoot opens the vault directory. It is the one path azfs follows
// symbolic links in: the directory may be a link the user named.
func (d *Dir) openRoot() (int, error) {
	fd, err := openat(unix.AT_FDCWD, d.root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: d.root, Err: err}
	}
	return fd, nil
}

// splitName returns the directory part of an object name ("" for the
// root) and its last element.
func splitName(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// openDir opens the directory rel below the vault directory (rel "" is
// the vault directory), following no symbolic link. The caller closes
// both descriptors it gets.
func (d *Dir) openDir(rel string) (root, dir int, err error) {
	root, err = d.openRoot()
	if err != nil {
		return -1, -1, err
	}
	dir, err = openBeneath(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		unix.Close(root)
		return -1, -1, pathError("open", d.root, rel, err)
	}
	return root, dir, nil
}

// Save stores data under name atomically and durably, failing with
// [storage.ErrExists] if name already exists. A failed Save, including one
// that runs out of space (syscall.ENOSPC), leaves neither a final object nor
// a temporary file behind.
func (d *Dir) Save(ctx context.Context, name string, data []byte) error {
	if err := storage.Check(ctx, "save", name); err != nil {
		return err
	}
	if err := d.save(ctx, name, data); err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	return nil
}

func (d *Dir) save(ctx context.Context, name string, data []byte) error {
	root, err := d.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	rel, base := splitName(name)
	dir, err := d.mkdirAll(root, rel)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	// Cheap early answer for the common case of saving a known object; the
	// link below is what actually guarantees never overwriting.
	var st unix.Stat_t
	if unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return storage.ErrExists
	}
	tmp, err := d.writeTemp(dir, rel, data)
	if err != nil {
		return err
	}
	// Last chance to abort cheaply before the object becomes visible.
	err = ctx.Err()
	if err == nil {
		err = d.link(dir, rel, tmp, base)
	}
	// The temporary name goes whatever happened: on success the data lives
	// on under the final name. Failing to remove it is harmless (temporary
	// files are never listed), so that is deliberately not reported.
	unix.Unlinkat(dir, tmp, 0)
	if err != nil {
		return err
	}
	// One directory sync makes both the link and the unlink durable.
	return d.syncDir(dir, rel)
}

// writeTemp writes data to a new temporary file in dir (rel below the
// vault directory), syncs and closes it, and returns its name. On failure
// it removes the file.
func (d *Dir) writeTemp(dir int, rel string, data []byte) (string, error) {
	var name string
	var fd int
	var err error
	for {
		name = tmpPrefix + strconv.FormatUint(rand.Uint64(), 36)
		fd, err = openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return "", pathError("create", d.root, path.Join(rel, name), err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.root, filepath.FromSlash(rel), name))
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dir, name, 0)
		return "", err
	}
	return name, nil
}

// link hard-links tmp to final, both in dir (rel below the vault
// directory), translating "final exists" into [storage.ErrExists].
func (d *Dir) link(dir int, rel, tmp, final string) error {
	err := unix.Linkat(dir, tmp, dir, final, 0)
	if err == nil {
		return nil
	}
	if err != unix.EEXIST {
		return pathError("link", d.root, path.Join(rel, final), err)
	}
	// Over NFS a retransmitted LINK whose first attempt succeeded reports
	// EEXIST. If final is our temporary file, the link did succeed.
	var tst, fst unix.Stat_t
	if unix.Fstatat(dir, tmp, &tst, unix.AT_SYMLINK_NOFOLLOW) == nil && unix.Fstatat(dir, final, &fst, unix.AT_SYMLINK_NOFOLLOW) == nil && tst.Dev == fst.Dev && tst.Ino == fst.Ino {
		return nil
	}
	return fmt.Errorf("%w: %w", storage.ErrExists, pathError("link", d.root, path.Join(rel, final), err))
}

// mkdirAll opens the directory rel below the vault directory root,
// creating it and its missing parents with mode 0700, following no
// symbolic link, and fsyncs the parent of every directory it creates so
// that the new entries are durable.
func (d *Dir) mkdirAll(root int, rel string) (int, error) {
	dir, err := openBeneath(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != unix.ENOENT {
		if err != nil {
			return -1, pathError("open", d.root, rel, err)
		}
		return dir, nil
	}
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	done := ""
	for _, p := range strings.Split(rel, "/") {
		done = path.Join(done, p)
		err := unix.Mkdirat(cur, p, 0o700)
		created := err == nil
		if err != nil && err != unix.EEXIST { // EEXIST: another writer made it meanwhile
			unix.Close(cur)
			return -1, pathError("mkdir", d.root, done, err)
		}
		if created {
			if err := d.syncDir(cur, path.Dir(done)); err != nil {
				unix.Close(cur)
				return -1, err
			}
		}
		next, err := openBeneath(cur, p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(cur)
		if errors.Is(err, errSymlink) {
			return -1, linkError(root, done, unix.ELOOP)
		}
		if err != nil {
			return -1, pathError("open", d.root, done, err)
		}
		cur = next
	}
	return cur, nil
}

// syncDir fsyncs the directory dir (rel below the vault directory) so that
// entries added to or removed from it are durable. Filesystems that cannot
// sync directories (some network and FUSE filesystems report EINVAL or
// ENOTSUP) are accepted as they are.
func (d *Dir) syncDir(dir int, rel string) error {
	err := unix.Fsync(dir)
	if err == nil || err == unix.EINVAL || err == unix.ENOTSUP {
		return nil
	}
	return pathError("sync", d.root, rel, err)
}

// Load reads exactly the requested range of name with pread, from the
// object's file kept open from an earlier Load when it is among the last
// few read (see handles).
func (d *Dir) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	return d.LoadInto(ctx, nil, name, off, length)
}

// LoadInto is Load appending to dst: the range is read into dst's room
// when that suffices (storage.LoaderInto).
func (d *Dir) LoadInto(ctx context.Context, dst []byte, name string, off, length int64) ([]byte, error) {
	if err := storage.Check(ctx, "load", name); err != nil {
		return nil, err
	}
	h, ok := d.files.get(name)
	if ok {
		h, ok = d.files.current(name, h)
	}
	if !ok {
		var err error
		if h, err = d.openObject(name); err != nil {
			return nil, &storage.Error{Op: "load", Name: name, Err: err}
		}
		h = d.files.keep(name, h)
	}
	buf, err := readRange(h, dst, off, length)
	if errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.ESTALE) {
		// Closed by a Load keeping other files open, or deleted by
		// another NFS client: open it again, for this read alone.
		if errors.Is(err, syscall.ESTALE) {
			d.files.drop(name)
		}
		if h, err = d.openObject(name); err != nil {
			return nil, &storage.Error{Op: "load", Name: name, Err: err}
		}
		buf, err = readRange(h, dst, off, length)
		h.f.Close()
	}
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	return buf, nil
}

// openObject opens the regular file of object name for reading, following
// no symbolic link, and finds its size.
func (d *Dir) openObject(name string) (handle, error) {
	root, err := d.openRoot()
	if err != nil {
		return handle{}, err
	}
	fd, err := openBeneath(root, name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	unix.Close(root)
	if err != nil {
		return handle{}, notFound(pathError("open", d.root, name, err))
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.root, filepath.FromSlash(name)))
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.ErrNotFound
	}
	if err != nil {
		f.Close()
		return handle{}, err
	}
	return handle{f: f, size: fi.Size()}, nil
}

// readRange appends length bytes at off (to the end when length < 0) of the
// object open as h to dst, reading into its room when that suffices.
func readRange(h handle, dst []byte, off, length int64) ([]byte, error) {
	n, err := storage.ClampRange(h.size, off, length)
	if err != nil {
		return nil, err
	}
	buf := slices.Grow(dst, int(n))[:len(dst)+int(n)]
	if got, err := h.f.ReadAt(buf[len(dst):], off); err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		if errors.Is(err, io.EOF) {
			// Objects are immutable, so this means outside interference.
			err = fmt.Errorf("file shrank while reading (%d of %d bytes at offset %d): %w", got, n, off, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	return buf, nil
}

// Close closes the files Load keeps open. The Dir stays usable: a later
// Load opens its object again.
func (d *Dir) Close() error {
	d.files.closeAll()
	return nil
}

// lstat returns what the object name is, without following a symbolic
// link: the descriptors of the vault directory and of name's directory,
// which the caller closes, and the stat of name itself. A symbolic link
// there fails with an error wrapping errSymlink.
func (d *Dir) lstat(name string) (root, dir int, st unix.Stat_t, err error) {
	rel, base := splitName(name)
	root, dir, err = d.openDir(rel)
	if err != nil {
		return -1, -1, st, notFound(err)
	}
	if err = unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		err = linkError(root, name, unix.ELOOP)
	}
	if err != nil {
		unix.Close(dir)
		unix.Close(root)
		return -1, -1, st, notFound(pathError("lstat", d.root, name, err))
	}
	return root, dir, st, nil
}

// Stat returns the size and modification time of name.
func (d *Dir) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.Check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	root, dir, st, err := d.lstat(name)
	if err != nil {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: err}
	}
	unix.Close(dir)
	unix.Close(root)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: storage.ErrNotFound}
	}
	return storage.Info{Name: name, Size: st.Size, Modified: time.Unix(st.Mtim.Unix()).UTC()}, nil
}

// List walks only the directory subtree that prefix falls in, skipping
// subdirectories that cannot contain a match, temporary files and symbolic
// links (which it never follows).
func (d *Dir) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.CheckList(ctx, prefix); err != nil {
		return err
	}
	start := storage.PrefixDir(prefix)
	root, dir, err := d.openDir(start)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) && !errors.Is(err, errSymlink) {
		return nil // nothing matches
	}
	if err != nil {
		return &storage.Error{Op: "list", Name: prefix, Err: err}
	}
	unix.Close(root)
	return d.walk(ctx, dir, start, prefix, fn)
}

// walk lists the objects matching prefix in the directory dir (rel below
// the vault directory) and below it, and closes dir.
func (d *Dir) walk(ctx context.Context, dir int, rel, prefix string, fn func(storage.Info) error) error {
	f := os.NewFile(uintptr(dir), filepath.Join(d.root, filepath.FromSlash(rel)))
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return &storage.Error{Op: "list", Name: prefix, Err: err}
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: err}
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue // temporary files, or anything else that cannot be an object
		}
		name := path.Join(rel, e.Name())
		switch {
		case e.IsDir():
			if !storage.MayHold(name, prefix) {
				continue
			}
			sub, err := openat(dir, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
				continue // deleted, or replaced by a file or a link, meanwhile
			}
			if err != nil {
				return &storage.Error{Op: "list", Name: prefix, Err: pathError("open", d.root, name, err)}
			}
			if err := d.walk(ctx, sub, name, prefix, fn); err != nil {
				return err
			}
		case e.Type().IsRegular() && strings.HasPrefix(name, prefix):
			var st unix.Stat_t
			err := unix.Fstatat(dir, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == unix.ENOENT || err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue // deleted or replaced meanwhile
			}
			if err != nil {
				return &storage.Error{Op: "list", Name: prefix, Err: pathError("lstat", d.root, name, err)}
			}
			if err := fn(storage.Info{Name: name, Size: st.Size, Modified: time.Unix(st.Mtim.Unix()).UTC()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes name and makes the removal durable.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := storage.Check(ctx, "delete", name); err != nil {
		return err
	}
	root, dir, st, err := d.lstat(name)
	if err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: err}
	}
	defer unix.Close(root)
	defer unix.Close(dir)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &storage.Error{Op: "delete", Name: name, Err: storage.ErrNotFound}
	}
	rel, base := splitName(name)
	if err := unix.Unlinkat(dir, base, 0); err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: notFound(pathError("unlink", d.root, name, err))}
	}
	d.files.drop(name)
	if err := d.syncDir(dir, rel); err != nil {
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

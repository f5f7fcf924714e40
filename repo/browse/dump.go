package browse

import (
	"archive/tar"
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// Archive is the format Dump writes a directory in.
type Archive uint8

const (
	// Tar is a POSIX (PAX) tar stream: owners by number and name, times
	// to the nanosecond, xattrs as SCHILY.xattr records, hard links,
	// symlinks, devices and FIFOs. Sockets, which tar cannot hold, are
	// left out. Holes are written as zeros (Go's archive/tar writes no
	// sparse entries).
	Tar Archive = iota
	// Zip is a zip archive (deflated): files, directories and symlinks
	// with their permissions and mtimes; devices, FIFOs and sockets,
	// which zip cannot hold, are left out.
	Zip
)

// ErrArchive reports an archive format that is neither tar nor zip.
var ErrArchive = errkind.New(errkind.Invalid, "unknown archive format")

// ParseArchive reads "tar" or "zip".
func ParseArchive(s string) (Archive, error) {
	switch s {
	case "tar":
		return Tar, nil
	case "zip":
		return Zip, nil
	}
	return 0, fmt.Errorf("%w %q: use tar or zip", ErrArchive, s)
}

// Dump writes the entry at p of the point whose root part is root to w: a
// file's content as is, anything else as an archive of it and all below it,
// named from the entry's name ("alice", "alice/notes.txt"; for the point's
// top level "." and then names below it, "home/alice"). onSkip, when set, is told of each entry the format
// cannot hold. It streams: one chunk ahead of the reader per file, a part
// per directory level.
func Dump(ctx context.Context, src ContentSource, root keys.ID, p string, format Archive, w io.Writer, onSkip func(path string)) error {
	n, err := Lookup(ctx, src, root, p)
	if err != nil {
		return err
	}
	if n.Type == tree.File {
		r := NewReader(ctx, src, n)
		defer r.Close()
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("dump %q: %w", p, err)
		}
		return nil
	}
	base := "."
	if p = CleanPath(p); p != "" {
		base = n.Name
	}
	a := newArchiver(format, w)
	links := make(map[linkKey]string)
	err = Walk(ctx, src, base, n, func(name string, n *tree.Node) error {
		var first string
		if n.Links > 1 && n.Type != tree.Dir {
			k := linkKey{n.Device, n.Inode}
			if first = links[k]; first == "" {
				links[k] = name
			}
		}
		err := a.add(ctx, src, name, n, first)
		if errors.Is(err, errCannotHold) {
			if onSkip != nil {
				onSkip(name)
			}
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dump %q: %w", p, err)
	}
	return a.close()
}

// linkKey names an inode of the backed-up file system.
type linkKey struct{ dev, ino uint64 }

// errCannotHold reports an entry the archive format has no place for.
var errCannotHold = errors.New("the archive format cannot hold this entry")

// archiver writes entries to an archive.
type archiver interface {
	// add writes n named name; first, when set, is the name an earlier
	// entry of the same hard-linked inode was written as.
	add(ctx context.Context, src ContentSource, name string, n *tree.Node, first string) error
	close() error
}

func newArchiver(format Archive, w io.Writer) archiver {
	if format == Zip {
		return &zipArchiver{w: zip.NewWriter(w)}
	}
	return &tarArchiver{w: tar.NewWriter(w)}
}

type tarArchiver struct{ w *tar.Writer }

// header returns n's tar header named name.
func tarHeader(name string, n *tree.Node) *tar.Header {
	h := &tar.Header{
		Name: name, Mode: int64(n.Mode), Uid: int(n.UID), Gid: int(n.GID), Uname: n.User, Gname: n.Group,
		ModTime: n.MTime.Time(), AccessTime: n.ATime.Time(), ChangeTime: n.CTime.Time(), Format: tar.FormatPAX,
	}
	for _, x := range n.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = make(map[string]string)
		}
		h.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
	}
	return h
}

func (a *tarArchiver) add(ctx context.Context, src ContentSource, name string, n *tree.Node, first string) error {
	h := tarHeader(name, n)
	switch {
	case first != "":
		h.Typeflag, h.Linkname = tar.TypeLink, first
		n = &tree.Node{} // no content follows
	case n.Type == tree.File:
		h.Typeflag, h.Size = tar.TypeReg, int64(n.Size)
	case n.Type == tree.Dir:
		h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(name, "/")+"/"
	case n.Type == tree.Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, n.Target
	case n.Type == tree.CharDev || n.Type == tree.BlockDev:
		h.Typeflag = tar.TypeChar
		if n.Type == tree.BlockDev {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(n.Rdev)), int64(unix.Minor(n.Rdev))
	case n.Type == tree.FIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return errCannotHold
	}
	if err := a.w.WriteHeader(h); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	if n.Type != tree.File {
		return nil
	}
	r := NewReader(ctx, src, n)
	defer r.Close()
	if _, err := io.Copy(a.w, r); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

func (a *tarArchiver) close() error { return a.w.Close() }

type zipArchiver struct{ w *zip.Writer }

// add writes n; zip has no hard links, so a further name of a hard-linked
// file is a copy.
func (a *zipArchiver) add(ctx context.Context, src ContentSource, name string, n *tree.Node, _ string) error {
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: n.MTime.Time()}
	h.SetMode(n.FileMode())
	switch n.Type {
	case tree.Dir:
		h.Name, h.Method = strings.TrimSuffix(name, "/")+"/", zip.Store
	case tree.File, tree.Symlink:
	default:
		return errCannotHold
	}
	f, err := a.w.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	switch n.Type {
	case tree.Symlink:
		_, err = io.WriteString(f, n.Target)
	case tree.File:
		r := NewReader(ctx, src, n)
		defer r.Close()
		_, err = io.Copy(f, r)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

func (a *zipArchiver) close() error { return a.w.Close() }

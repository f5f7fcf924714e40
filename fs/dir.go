package fs

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/internal/vhd"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// dirNode is a directory of a point. Its entries are loaded from its tree
// parts on demand.
type dirNode struct {
	gofs.Inode
	pt   *point
	path string // for messages: the directory's path
	ino  uint64 // the inode number its children's numbers derive from
	// root is the point's root part when this is a point's top level,
	// whose node is loaded on first use; zero otherwise.
	root keys.ID
	meta atomic.Pointer[dirMeta]
	// siblingsAhead is where the read-ahead of its files' first chunks
	// (fileNode.readAheadSiblings) last ended, as packSiblingsAhead packs
	// it; 0 until then.
	siblingsAhead atomic.Uint64
}

// dirMeta is a directory's tree node and attributes.
type dirMeta struct {
	node tree.Node
	attr fuse.Attr
}

var (
	_ gofs.NodeGetattrer      = (*dirNode)(nil)
	_ gofs.NodeLookuper       = (*dirNode)(nil)
	_ gofs.NodeReaddirer      = (*dirNode)(nil)
	_ gofs.NodeOpendirHandler = (*dirNode)(nil)
	_ gofs.NodeGetxattrer     = (*dirNode)(nil)
	_ gofs.NodeListxattrer    = (*dirNode)(nil)
	_ gofs.NodeStatfser       = (*dirNode)(nil)
	_ gofs.FileReaddirenter   = (*dirHandle)(nil)
	_ gofs.FileSeekdirer      = (*dirHandle)(nil)
	_ gofs.FileLookuper       = (*dirHandle)(nil)
	_ gofs.DirStream          = (*dirStream)(nil)
	_ gofs.FileSeekdirer      = (*dirStream)(nil)
)

// newPointDir returns the top-level directory of point pt, whose tree node
// is the single node of part root.
func newPointDir(pt *point, path string, root keys.ID) *dirNode {
	return &dirNode{pt: pt, path: path, ino: pt.rootIno(), root: root}
}

// setMeta sets the directory's tree node.
func (d *dirNode) setMeta(n *tree.Node) {
	d.meta.Store(&dirMeta{node: *n, attr: attrOf(n, d.ino)})
}

// dir returns the directory's tree node and attributes, loading a point's
// root part on first use.
func (d *dirNode) dir(ctx context.Context) (*dirMeta, syscall.Errno) {
	if m := d.meta.Load(); m != nil {
		return m, 0
	}
	n, err := d.pt.rootDir(ctx, d.root)
	if err != nil {
		return nil, d.pt.v.fail(err, "tree part", d.root, d.path)
	}
	d.setMeta(n)
	return d.meta.Load(), 0
}

// Getattr reports the directory's attributes.
func (d *dirNode) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	m, errno := d.dir(ctx)
	if errno != 0 {
		return errno
	}
	out.Attr = m.attr
	return 0
}

// Getxattr reads an extended attribute.
func (d *dirNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	m, errno := d.dir(ctx)
	if errno != 0 {
		return 0, errno
	}
	return getxattr(m.node.Xattrs, name, dest)
}

// Listxattr lists the extended attributes.
func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	m, errno := d.dir(ctx)
	if errno != 0 {
		return 0, errno
	}
	return listxattr(m.node.Xattrs, dest)
}

// Statfs reports file system statistics.
func (d *dirNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

// Lookup finds the entry called name, loading only the part that can hold
// it.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	m, errno := d.dir(ctx)
	if errno != 0 {
		return nil, errno
	}
	n, errno := d.find(ctx, m, name)
	if errno != 0 {
		return nil, errno
	}
	if n != nil {
		return d.child(ctx, n, out), 0
	}
	// NAME.contents, beside a disk image NAME.
	base, ok := strings.CutSuffix(name, diskimage.ContentsSuffix)
	if !ok {
		return nil, syscall.ENOENT
	}
	img, errno := d.find(ctx, m, base)
	if errno != 0 {
		return nil, errno
	}
	if img == nil {
		return nil, syscall.ENOENT
	}
	return d.contents(ctx, img, out)
}

// find returns the entry called name, or nil, loading only the part that
// can hold it.
func (d *dirNode) find(ctx context.Context, m *dirMeta, name string) (*tree.Node, syscall.Errno) {
	if len(m.node.Parts) == 0 {
		return nil, 0
	}
	ref := m.node.Parts[m.node.PartFor(name)]
	part, err := d.pt.v.parts.get(ctx, ref.ID)
	if err != nil {
		return nil, d.pt.v.fail(err, "tree part", ref.ID, d.path)
	}
	return part.Find(name), 0
}

// contentsIno returns the inode number of the contents directory of the
// file whose inode number is ino.
func contentsIno(ino uint64) uint64 {
	return newInoHash('c').addUint64(ino).ino()
}

// contents returns the inode of the contents directory of img, one of the
// directory's entries, or ENOENT when img is not a disk image azfs reads.
func (d *dirNode) contents(ctx context.Context, img *tree.Node, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	path := d.path + "/" + img.Name
	kind := d.pt.v.kindOf(img, path)
	if kind == diskimage.Unknown {
		return nil, syscall.ENOENT
	}
	fileIno := d.pt.childIno(d.ino, img)
	node := *img
	vol := &volume{r: &pointFile{v: d.pt.v, node: &node, path: path}, size: int64(img.Size), path: path,
		ino: contentsIno(fileIno), attr: attrOf(img, fileIno)}
	// A fixed VHD is the raw disk followed by its footer.
	if f, err := vhd.ReadFixed(vol.r, vol.size); err == nil {
		vol.size = int64(f.DiskSize)
	}
	ops, err := d.pt.v.contentsNode(kind, vol)
	if err != nil {
		return nil, d.pt.v.report(err, path, "cannot open the image")
	}
	var a fuse.AttrOut
	if errno := ops.(gofs.NodeGetattrer).Getattr(ctx, nil, &a); errno != 0 {
		return nil, errno
	}
	out.Attr = a.Attr
	return d.NewInode(ctx, ops, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: vol.ino}), 0
}

// child returns the inode of n, one of the directory's entries, and fills
// out with its attributes.
func (d *dirNode) child(ctx context.Context, n *tree.Node, out *fuse.EntryOut) *gofs.Inode {
	ino := d.pt.childIno(d.ino, n)
	path := d.path + "/" + n.Name
	var ops gofs.InodeEmbedder
	if n.Type == tree.Dir {
		c := &dirNode{pt: d.pt, path: path, ino: ino}
		c.setMeta(n)
		out.Attr = c.meta.Load().attr
		ops = c
	} else {
		l := leaf{pt: d.pt, path: path, node: *n, attr: attrOf(n, ino)}
		out.Attr = l.attr
		switch n.Type {
		case tree.File:
			ops = &fileNode{leaf: l}
		case tree.Symlink:
			ops = &symlinkNode{leaf: l}
		default:
			ops = &specialNode{leaf: l}
		}
	}
	// For a hard link whose other name is already known, go-fuse drops
	// the new node and returns the existing inode with the same number.
	return d.NewInode(ctx, ops, gofs.StableAttr{Mode: n.Type.StatType(), Ino: ino})
}

// Readdir returns a stream of the directory's entries that loads its parts
// one at a time.
func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	m, errno := d.dir(ctx)
	if errno != 0 {
		return nil, errno
	}
	return &dirStream{d: d, parts: m.node.Parts}, 0
}

// OpendirHandle opens the directory for listing. The listing is immutable,
// so the kernel may cache it (FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE).
func (d *dirNode) OpendirHandle(ctx context.Context, _ uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	s, errno := d.Readdir(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{s: s.(*dirStream)}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirStream lists a directory part by part: it holds at most one decoded
// part, fetched through the part cache when the previous one is exhausted.
type dirStream struct {
	d     *dirNode
	parts []tree.PartRef
	pi    int        // index in parts of the current part
	part  *tree.Part // the current part, nil until loaded
	i     int        // index in part.Nodes of the next entry
	off   uint64     // number of entries returned so far
	err   syscall.Errno
	last  *tree.Node // the entry returned last
	// contents is the name of the contents directory to list next, after
	// the disk image returned last; contentsIno is its inode number.
	contents    string
	contentsIno uint64
}

// fill makes the next entry available, loading parts as needed. A load
// error is kept in s.err until Next reports it.
func (s *dirStream) fill(ctx context.Context) {
	for s.err == 0 && s.pi < len(s.parts) {
		if s.part == nil {
			ref := s.parts[s.pi]
			// Not cancelled by an interrupted READDIRPLUS: a listing that
			// failed there with EINTR, under load, lost entries (go-fuse
			// replays and re-seeks a listing around a failed request; see
			// integration's TestWideDirectory), and a part load is short.
			p, err := s.d.pt.v.parts.get(context.WithoutCancel(ctx), ref.ID)
			if err != nil {
				s.err = s.d.pt.v.fail(err, "tree part", ref.ID, s.d.path)
				return
			}
			s.part, s.i = p, 0
		}
		if s.i < len(s.part.Nodes) {
			return
		}
		s.pi++
		s.part = nil
	}
}

func (s *dirStream) hasNext(ctx context.Context) bool {
	if s.contents != "" {
		return true
	}
	s.fill(ctx)
	return s.err != 0 || s.part != nil
}

func (s *dirStream) next(ctx context.Context) (fuse.DirEntry, syscall.Errno) {
	if s.contents != "" {
		s.off++
		e := fuse.DirEntry{Name: s.contents, Mode: syscall.S_IFDIR, Ino: s.contentsIno, Off: s.off}
		s.contents, s.last = "", nil
		return e, 0
	}
	s.fill(ctx)
	if s.err != 0 {
		// Report the error once; a later call retries the load.
		err := s.err
		s.err = 0
		return fuse.DirEntry{}, err
	}
	n := &s.part.Nodes[s.i]
	s.i++
	s.off++
	s.last = n
	ino := s.d.pt.childIno(s.d.ino, n)
	s.noteImage(ctx, n, ino)
	return fuse.DirEntry{
		Name: n.Name,
		Mode: n.Type.StatType(),
		Ino:  ino,
		Off:  s.off,
	}, 0
}

// noteImage makes the next entry listed n's contents directory when n,
// whose inode number is ino, is a disk image azfs reads and the directory
// has no entry of that name.
func (s *dirStream) noteImage(ctx context.Context, n *tree.Node, ino uint64) {
	if !isImageCandidate(n) || s.d.pt.v.images.off {
		return
	}
	name := n.Name + diskimage.ContentsSuffix
	if s.d.pt.v.kindOf(n, s.d.path+"/"+n.Name) == diskimage.Unknown {
		return
	}
	if m := s.d.meta.Load(); m != nil {
		if real, _ := s.d.find(ctx, m, name); real != nil {
			return
		}
	}
	s.contents, s.contentsIno = name, contentsIno(ino)
}

// HasNext reports whether there are more entries (or an error to report).
func (s *dirStream) HasNext() bool {
	return s.hasNext(context.Background())
}

// Next returns the next entry.
func (s *dirStream) Next() (fuse.DirEntry, syscall.Errno) {
	return s.next(context.Background())
}

// Close releases the stream.
func (s *dirStream) Close() {
	s.part, s.last = nil, nil
}

// Seekdir repositions the stream after the first off entries. Without
// contents directories it skips whole parts' entries at once; with them it
// steps entry by entry (the kinds of images are cached).
func (s *dirStream) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	s.pi, s.part, s.i, s.off, s.err, s.last, s.contents = 0, nil, 0, 0, 0, nil, ""
	for s.off < off {
		if !s.hasNext(ctx) {
			return syscall.EINVAL
		}
		if s.err != 0 {
			err := s.err
			s.err = 0
			return err
		}
		if !s.d.pt.v.images.off {
			if _, errno := s.next(ctx); errno != 0 {
				return errno
			}
			continue
		}
		skip := min(uint64(len(s.part.Nodes)-s.i), off-s.off)
		s.i += int(skip)
		s.off += skip
	}
	return 0
}

// dirHandle is an open directory. It serves READDIRPLUS lookups from the
// entry just listed, without searching the directory again.
type dirHandle struct {
	s *dirStream
	// entry is the entry Readdirent returned last: go-fuse copies it
	// before it asks for the next (one allocation per entry less).
	entry fuse.DirEntry
}

// Readdirent returns the next entry, or nil at the end. The entry is the
// handle's until the next call.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !h.s.hasNext(ctx) {
		return nil, 0
	}
	e, errno := h.s.next(ctx)
	if errno != 0 {
		return nil, errno
	}
	h.entry = e
	return &h.entry, 0
}

// Seekdir repositions the listing.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return h.s.Seekdir(ctx, off)
}

// Lookup returns the inode of the entry just listed.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n := h.s.last; n != nil && n.Name == name {
		return h.s.d.child(ctx, n, out), 0
	}
	return h.s.d.Lookup(ctx, name, out)
}

package fs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/diskimage"
	"github.com/azfs/azfs/diskimage/ext4"
	"github.com/azfs/azfs/diskimage/fat"
	"github.com/azfs/azfs/diskimage/luks"
	"github.com/azfs/azfs/diskimage/partition"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	hlru "github.com/hashicorp/golang-lru/v2"
)

// minImageSize is the smallest file looked into: no partitioned disk,
// LUKS volume, ext4 or FAT file system is smaller.
const minImageSize = 64 << 10

// detectCacheSize bounds the kinds remembered by first chunk.
const detectCacheSize = 4096

// images is what a mount knows about the disk images it serves.
type images struct {
	off  bool
	keys [][]byte
	// kinds remembers what images hold by their first chunk, which
	// covers the bytes Detect looks at.
	kinds *hlru.Cache[keys.ID, diskimage.Kind]
	// windows holds windows of images' blocks (see imageWindow).
	windows *lru.Cache[windowKey, *window]
	// spans keeps the span buffers of windows the cache let go.
	spans *spanBuffers
	// readAhead is how many windows past a sequential read are loaded
	// ahead of it: imageReadAhead, or what half the cache of windows
	// holds when that is fewer (a window loaded ahead must still be
	// there when its read comes).
	readAhead uint64

	mu sync.Mutex
	// unlocks holds each LUKS volume's unlocking, by the hash of its
	// header's first 4 KiB, so that a volume in many points is unlocked
	// once.
	unlocks map[[32]byte]*unlocking
	// reported holds the paths whose failures were logged.
	reported sync.Map
}

// unlocking is the unlocking of one LUKS volume, done once.
type unlocking struct {
	once sync.Once
	vol  *luks.Volume
	err  error
}

// imageReadAheadFor returns images.readAhead for a mount whose read-ahead
// option is readAhead (negative: none) and whose windows are held in
// windowBytes.
func imageReadAheadFor(readAhead int, windowBytes int64) uint64 {
	if readAhead < 0 {
		return 0
	}
	return uint64(min(imageReadAhead, max(windowBytes, 0)/imageWindow/2))
}

// newImages returns what a mount knows about disk images, its windows
// held in windowBytes, at most loads of them loading at once.
func newImages(opts Options, windowBytes int64, loads int) *images {
	kinds, err := hlru.New[keys.ID, diskimage.Kind](detectCacheSize)
	if err != nil {
		panic(fmt.Sprintf("image kind cache: %v", err)) // only for a size ≤ 0
	}
	windows, spans := newWindowCache(windowBytes, loads)
	return &images{off: opts.NoImageContents, keys: opts.LUKSKeys, kinds: kinds, windows: windows, spans: spans,
		readAhead: imageReadAheadFor(opts.ReadAhead, windowBytes*3/4), unlocks: make(map[[32]byte]*unlocking)}
}

// pointFile reads a point's file by windows of its blocks (see
// imageWindow): the bottom of every image's stack of readers.
type pointFile struct {
	v    *vault
	node *tree.Node
	path string
	seq  windowSeq
}

// windowSeq is where a point file's readers are, in windows: what read-ahead
// needs to know.
type windowSeq struct {
	mu sync.Mutex // guards the fields below
	// last is the last window of the previous read.
	last uint64
	// ahead is the first window not yet loaded ahead in the current
	// sequential run.
	ahead uint64
}

// ReadAt reads len(p) bytes at off; holes read as zeros. A chunk that fails
// to load is logged as fileNode.Read logs it.
func (f *pointFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %q at %d: negative offset", f.path, off)
	}
	if uint64(off) >= f.node.Size {
		return 0, io.EOF
	}
	start := uint64(off)
	end := min(start+uint64(len(p)), f.node.Size)
	if start == end {
		return 0, nil
	}
	first, last := start/imageWindow, (end-1)/imageWindow
	f.readAhead(first, last)
	// The read's later windows load in parallel with its first.
	for k := first + 1; k <= last; k++ {
		f.prefetchWindow(k)
	}
	if err := f.v.readWindows(context.Background(), f.node, f.path, p[:end-start], start); err != nil {
		return 0, err
	}
	n := int(end - start)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readWindows fills p with the bytes of the file node (at path) from start
// on, window by window, loading each block a window lacks alone through
// the chunk cache. Holes read as zeros.
func (v *vault) readWindows(ctx context.Context, node *tree.Node, path string, p []byte, start uint64) error {
	end := start + uint64(len(p))
	pos := start
	exts := node.Extents
	var w *window // pinned while its blocks are copied
	defer func() {
		if w != nil {
			w.unpin(v.images.spans)
		}
	}()
	k, first := ^uint64(0), 0
	for i := node.FindExtent(start); i < len(exts) && exts[i].Offset < end; i++ {
		e := exts[i]
		if e.Offset > pos {
			clear(p[pos-start : e.Offset-start])
			pos = e.Offset
		}
		if e.Offset/imageWindow != k {
			if w != nil {
				w.unpin(v.images.spans)
			}
			k = e.Offset / imageWindow
			w, first = v.window(ctx, node, k)
		}
		if w != nil && w.chunks[i-first] != nil {
			pos += uint64(copy(p[pos-start:], w.chunks[i-first][pos-e.Offset:]))
			continue
		}
		c, err := v.pinChunk(ctx, e)
		if err != nil {
			v.fail(err, "chunk", e.ID, path)
			return err
		}
		pos += uint64(copy(p[pos-start:], c.data[pos-e.Offset:]))
		c.unpin(v.free)
	}
	clear(p[pos-start:])
	return nil
}

// window returns window k of the file node, loaded or from the cache of
// windows, pinned for the caller, who unpins it, and the index in
// node.Extents of its first extent; a nil window when none of its blocks
// loaded, or when the cache lets go of it before it can be pinned
// pinnedTries times over (a cache too small for the loads in flight).
func (v *vault) window(ctx context.Context, node *tree.Node, k uint64) (*window, int) {
	i, j := windowExtents(node, k)
	exts := node.Extents[i:j]
	key := keyOf(exts, k*imageWindow)
	for range pinnedTries {
		w, err := v.images.windows.GetOrLoad(ctx, key, func(ctx context.Context) (*window, error) {
			return v.loadWindow(ctx, exts)
		})
		if err != nil {
			return nil, i
		}
		if w.pin() {
			return w, i
		}
	}
	return nil, i
}

// prefetchWindow starts loading window k in the background, behind the
// windows readers wait for, unless it is cached or loading. It reports
// false when the queue of read-ahead is full.
func (f *pointFile) prefetchWindow(k uint64) bool {
	i, j := windowExtents(f.node, k)
	if i == j {
		return true // a hole
	}
	exts := f.node.Extents[i:j]
	return f.v.images.windows.Prefetch(context.Background(), keyOf(exts, k*imageWindow), func(ctx context.Context) (*window, error) {
		return f.v.loadWindow(ctx, exts)
	})
}

// readAhead notes a read of windows first to last: when it continues a
// sequential run, it starts loading the images.readAhead windows after last
// that it has not started yet, as many as the queue of read-ahead takes.
func (f *pointFile) readAhead(first, last uint64) {
	seq := &f.seq
	seq.mu.Lock()
	defer seq.mu.Unlock()
	prev := seq.last
	seq.last = last
	if first+1 < prev || first > prev+1 {
		seq.ahead = 0
		return
	}
	windows := (f.node.Size + imageWindow - 1) / imageWindow
	for k := max(last+1, seq.ahead); k < min(last+1+f.v.images.readAhead, windows); k++ {
		if !f.prefetchWindow(k) {
			return
		}
		seq.ahead = k + 1
	}
}

// volume is a byte range that may hold an image: a backed-up file, a
// partition, a decrypted LUKS volume.
type volume struct {
	r    io.ReaderAt
	size int64
	// path names it in messages: its path in the mount.
	path string
	// ino is the inode number of its contents directory.
	ino uint64
	// attr is the attributes of the file that holds it: its contents
	// take their owner and times.
	attr fuse.Attr
}

// isImageCandidate reports whether n may be a disk image worth reading
// the first bytes of: a file of whole 512-byte sectors, at least
// minImageSize long.
func isImageCandidate(n *tree.Node) bool {
	return n.Type == tree.File && n.Size >= minImageSize && n.Size%512 == 0
}

// kindOf tells what the point file n holds, reading its first
// diskimage.HeadSize bytes unless its first chunk's kind is known. A read
// failure counts as "not an image".
//
// When the first chunk holds the head (nearly always), only that chunk is
// read, through the chunk cache and with no read-ahead: a listing detects
// every candidate it lists (ls -lR of the bench corpus spent a third of the
// mount's CPU loading the windows read ahead of 8 heads), and a copy that
// then reads the file finds the chunk cached.
func (v *vault) kindOf(n *tree.Node, path string) diskimage.Kind {
	if v.images.off || !isImageCandidate(n) {
		return diskimage.Unknown
	}
	if len(n.Extents) == 0 || n.Extents[0].Offset != 0 || n.Extents[0].Length < diskimage.HeadSize {
		return detect(&pointFile{v: v, node: n, path: path}, int64(n.Size))
	}
	first := n.Extents[0]
	if k, ok := v.images.kinds.Get(first.ID); ok {
		return k
	}
	k := diskimage.Unknown
	if c, err := v.pinChunk(context.Background(), first); err != nil {
		v.fail(err, "chunk", first.ID, path)
	} else {
		k = diskimage.Detect(c.data[:diskimage.HeadSize])
		c.unpin(v.free)
	}
	v.images.kinds.Add(first.ID, k)
	return k
}

// detect reads the head of r, size bytes long, and tells what it holds.
func detect(r io.ReaderAt, size int64) diskimage.Kind {
	head := make([]byte, min(size, diskimage.HeadSize))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return diskimage.Unknown
	}
	return diskimage.Detect(head)
}

// kernelHint ends the errors about ext4 features azfs does not read: the
// kernel reads them.
const kernelHint = "; azfs image mount (as root) mounts it with the kernel"

// report logs err, a failure to read inside the image at path, once per
// path, and returns the errno for it.
func (v *vault) report(err error, path, what string) syscall.Errno {
	if errors.Is(err, ext4.ErrUnsupported) {
		err = fmt.Errorf("%w%s", err, kernelHint)
	}
	if _, seen := v.images.reported.LoadOrStore(path+"\x00"+what, struct{}{}); !seen && !isDamage(err) {
		v.log.Error(what, "path", path, "err", err)
	}
	return errno(err)
}

// contentsNode returns the node of vol's contents directory: the root of
// its file system, or a directory of its partitions or of its decrypted
// volume.
func (v *vault) contentsNode(kind diskimage.Kind, vol *volume) (gofs.InodeEmbedder, error) {
	switch kind {
	case diskimage.Ext4, diskimage.FAT:
		var fsys imageFS
		var err error
		if kind == diskimage.Ext4 {
			fsys, err = ext4.Open(vol.r, vol.size)
		} else {
			fsys, err = fat.Open(vol.r, vol.size)
		}
		if err != nil {
			return nil, fmt.Errorf("open %s in %q: %w", kind, vol.path, err)
		}
		root, err := fsys.Root()
		if err != nil {
			return nil, fmt.Errorf("open %s in %q: %w", kind, vol.path, err)
		}
		return &imageDir{imageNode: imageNode{v: v, fs: fsys, node: root, path: vol.path + diskimage.ContentsSuffix, attr: imageAttr(&root, vol.ino)}}, nil
	case diskimage.PartitionTable:
		return &lazyDir{staticDir: staticDir{attr: contentsAttr(vol)}, build: func(ctx context.Context, d *lazyDir) { v.addPartitions(ctx, d, vol) }}, nil
	case diskimage.LUKS:
		return &lazyDir{staticDir: staticDir{attr: contentsAttr(vol)}, build: func(ctx context.Context, d *lazyDir) { v.addDecrypted(ctx, d, vol) }}, nil
	}
	return nil, fmt.Errorf("%q holds no image azfs reads", vol.path)
}

// contentsAttr returns the attributes of vol's contents directory: read
// and search for whoever may read vol, its owner and times.
func contentsAttr(vol *volume) fuse.Attr {
	a := vol.attr
	a.Ino = vol.ino
	r := vol.attr.Mode & 0o444
	a.Mode = syscall.S_IFDIR | r | r>>2
	a.Size, a.Blocks, a.Nlink = 0, 0, 2
	return a
}

// subVolume returns the volume of child name, size bytes read from r, in
// the contents directory of vol.
func subVolume(vol *volume, name string, r io.ReaderAt, size int64, mode uint32) (*volume, fuse.Attr) {
	a := vol.attr
	a.Ino = newInoHash('v').addUint64(vol.ino).addString(name).ino()
	a.Mode = syscall.S_IFREG | mode
	a.Size = uint64(size)
	a.Blocks = (a.Size + 511) / 512
	a.Nlink = 1
	sub := &volume{r: r, size: size, path: vol.path + diskimage.ContentsSuffix + "/" + name, attr: a,
		ino: newInoHash('c').addUint64(a.Ino).ino()}
	return sub, a
}

// addVolumeFile adds to d the file name holding sub, and its contents
// directory when it holds an image azfs reads.
func (v *vault) addVolumeFile(ctx context.Context, d *lazyDir, name string, sub *volume, attr fuse.Attr) {
	f := &volumeFile{v: v, vol: sub, attr: attr}
	d.AddChild(name, d.NewPersistentInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: attr.Ino}), false)
	kind := detect(sub.r, sub.size)
	if kind == diskimage.Unknown {
		return
	}
	node, err := v.contentsNode(kind, sub)
	if err != nil {
		v.report(err, sub.path, "cannot open the image")
		return
	}
	d.AddChild(name+diskimage.ContentsSuffix, d.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: sub.ino}), false)
}

// addPartitions fills d with vol's partitions: pN files, their contents
// directories and by-partlabel symlinks for named GPT partitions.
func (v *vault) addPartitions(ctx context.Context, d *lazyDir, vol *volume) {
	t, err := partition.Read(vol.r, vol.size)
	if err != nil {
		v.report(err, vol.path, "cannot read the partition table")
		return
	}
	var labels *gofs.Inode
	seen := make(map[string]bool)
	for _, p := range t.Partitions {
		name := "p" + strconv.Itoa(p.Number)
		sub, attr := subVolume(vol, name, io.NewSectionReader(vol.r, p.Start, p.Size), p.Size, vol.attr.Mode&0o444)
		v.addVolumeFile(ctx, d, name, sub, attr)
		label := labelName(p.Name)
		if label == "" || seen[label] {
			continue
		}
		seen[label] = true
		if labels == nil {
			a := contentsAttr(vol)
			a.Ino = newInoHash('L').addUint64(vol.ino).ino()
			labels = d.NewPersistentInode(ctx, &staticDir{attr: a}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: a.Ino})
			d.AddChild(diskimage.PartLabelDir, labels, false)
		}
		target := "../" + name
		la := attr
		la.Mode = syscall.S_IFLNK | 0o777
		la.Size = uint64(len(target))
		la.Ino = newInoHash('l').addUint64(vol.ino).addString(label).ino()
		labels.AddChild(label, d.NewPersistentInode(ctx, &staticLink{target: target, attr: la}, gofs.StableAttr{Mode: syscall.S_IFLNK, Ino: la.Ino}), false)
	}
}

// labelName returns a GPT partition name as a file name: "/" and NUL
// become "_"; "", "." and ".." give none.
func labelName(s string) string {
	if s == "" || s == "." || s == ".." {
		return ""
	}
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(s)
}

// addDecrypted fills d with vol's decrypted volume and its contents
// directory, when one of the mount's keys unlocks it; otherwise it logs,
// once, why not, and d stays empty.
func (v *vault) addDecrypted(ctx context.Context, d *lazyDir, vol *volume) {
	h, err := luks.Open(vol.r, vol.size)
	if err != nil {
		v.report(err, vol.path, "cannot read the LUKS header")
		return
	}
	dec, err := v.unlock(h, vol)
	if err != nil {
		v.report(err, vol.path, "LUKS volume not unlocked")
		return
	}
	// The decrypted volume is for its owner's eyes only.
	sub, attr := subVolume(vol, diskimage.DecryptedName, dec, dec.Size(), 0o400)
	v.addVolumeFile(ctx, d, diskimage.DecryptedName, sub, attr)
}

// errNoLUKSKeys reports a LUKS volume in a mount given no keys.
var errNoLUKSKeys = errors.New("no passphrase or key file given (azmount --luks-passphrase-file, --luks-key-file)")

// unlock unlocks LUKS volume h in vol with the mount's keys, once per
// volume header however many points hold it.
func (v *vault) unlock(h *luks.Header, vol *volume) (*luks.Volume, error) {
	if len(v.images.keys) == 0 {
		return nil, errNoLUKSKeys
	}
	head := make([]byte, 4096)
	if _, err := vol.r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read the LUKS header: %w", err)
	}
	sum := sha256.Sum256(head)
	v.images.mu.Lock()
	u, ok := v.images.unlocks[sum]
	if !ok {
		u = &unlocking{}
		v.images.unlocks[sum] = u
	}
	v.images.mu.Unlock()
	u.once.Do(func() {
		for _, key := range v.images.keys {
			u.vol, u.err = h.Unlock(vol.r, key)
			if !errors.Is(u.err, luks.ErrKey) {
				return
			}
		}
		if len(v.images.keys) > 1 {
			u.err = fmt.Errorf("%w (tried %d keys)", u.err, len(v.images.keys))
		}
	})
	if u.err != nil {
		return nil, u.err
	}
	return u.vol.On(vol.r), nil
}

// lazyDir is a synthesized directory whose persistent children are added
// by build when it is first looked in or opened.
type lazyDir struct {
	staticDir
	once  sync.Once
	build func(ctx context.Context, d *lazyDir)
}

var (
	_ gofs.NodeLookuper  = (*lazyDir)(nil)
	_ gofs.NodeOpendirer = (*lazyDir)(nil)
)

func (d *lazyDir) built(ctx context.Context) {
	d.once.Do(func() { d.build(ctx, d) })
}

// Lookup returns the child called name.
func (d *lazyDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.built(ctx)
	return d.staticDir.Lookup(ctx, name, out)
}

// Opendir builds the children, which go-fuse then lists.
func (d *lazyDir) Opendir(ctx context.Context) syscall.Errno {
	d.built(ctx)
	return 0
}

// volumeFile is a partition or a decrypted volume, as a file.
type volumeFile struct {
	gofs.Inode
	v    *vault
	vol  *volume
	attr fuse.Attr
}

var (
	_ gofs.NodeGetattrer = (*volumeFile)(nil)
	_ gofs.NodeOpener    = (*volumeFile)(nil)
	_ gofs.NodeReader    = (*volumeFile)(nil)
	_ gofs.NodeStatfser  = (*volumeFile)(nil)
)

// Getattr reports the file's attributes.
func (f *volumeFile) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = f.attr
	return 0
}

// Open answers ENOSYS, as fileNode.Open does for the whole mount.
func (f *volumeFile) Open(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, syscall.ENOSYS
}

// Read reads the volume.
func (f *volumeFile) Read(_ context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readResult(f.v, f.vol.r.ReadAt, f.vol.path, dest, off)
}

// readResult reads len(dest) bytes at off with readAt for a FUSE read of
// the file at path; the end of the data gives a short result.
func readResult(v *vault, readAt func([]byte, int64) (int, error), path string, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	n, err := readAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, v.report(err, path, "cannot read inside the image")
	}
	// A vector is written with writev: go-fuse would try to splice plain
	// data through a pipe, which a 1 MiB read and its header overflow
	// (a wasted attempt and a "trySplice" log line per read).
	return fuse.ReadResultVector([][]byte{dest[:n]}), 0
}

// Statfs reports file system statistics.
func (f *volumeFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

// imageFS is a file system read from an image (ext4.FS, fat.FS).
type imageFS interface {
	Root() (diskimage.Node, error)
	ReadDir(dir *diskimage.Node, cursor int64, fn func(n diskimage.Node, next int64) bool) error
	Lookup(dir *diskimage.Node, name string) (diskimage.Node, error)
	ReadAt(f *diskimage.Node, p []byte, off int64) (int, error)
	Readlink(l *diskimage.Node) (string, error)
}

// imageAttr returns the attributes of n, whose inode number is ino.
func imageAttr(n *diskimage.Node, ino uint64) fuse.Attr {
	a := fuse.Attr{
		Ino:     ino,
		Size:    n.Size,
		Blocks:  (n.Size + 511) / 512,
		Mode:    n.Mode,
		Nlink:   max(n.Links, 1),
		Blksize: blockSize,
		Rdev:    fuseDev(n.Rdev),
	}
	a.Uid, a.Gid = n.UID, n.GID
	a.Atime, a.Atimensec = uint64(n.Atime.Sec), n.Atime.Nsec
	a.Mtime, a.Mtimensec = uint64(n.Mtime.Sec), n.Mtime.Nsec
	a.Ctime, a.Ctimensec = uint64(n.Ctime.Sec), n.Ctime.Nsec
	return a
}

// imageNode is what the nodes of a file system in an image share.
type imageNode struct {
	v    *vault
	fs   imageFS
	node diskimage.Node
	path string
	attr fuse.Attr
}

// Getattr reports the node's attributes.
func (n *imageNode) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = n.attr
	return 0
}

// Statfs reports file system statistics.
func (n *imageNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

// imageDir is a directory of a file system in an image.
type imageDir struct {
	gofs.Inode
	imageNode
}

var (
	_ gofs.NodeGetattrer      = (*imageDir)(nil)
	_ gofs.NodeLookuper       = (*imageDir)(nil)
	_ gofs.NodeOpendirHandler = (*imageDir)(nil)
	_ gofs.NodeStatfser       = (*imageDir)(nil)
	_ gofs.FileReaddirenter   = (*imageDirHandle)(nil)
	_ gofs.FileSeekdirer      = (*imageDirHandle)(nil)
	_ gofs.FileLookuper       = (*imageDirHandle)(nil)
)

// Lookup finds the entry called name.
func (d *imageDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n, err := d.fs.Lookup(&d.node, name)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, d.v.report(err, d.path, "cannot read a directory inside the image")
	}
	return d.child(ctx, n, out), 0
}

// child returns the inode of n, one of the directory's entries.
func (d *imageDir) child(ctx context.Context, n diskimage.Node, out *fuse.EntryOut) *gofs.Inode {
	ino := newInoHash('i').addUint64(d.attr.Ino).addString(n.Name).ino()
	c := imageNode{v: d.v, fs: d.fs, node: n, path: d.path + "/" + n.Name, attr: imageAttr(&n, ino)}
	out.Attr = c.attr
	var ops gofs.InodeEmbedder
	switch n.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		ops = &imageDir{imageNode: c}
	case syscall.S_IFREG:
		ops = &imageFile{imageNode: c}
	case syscall.S_IFLNK:
		ops = &imageLink{imageNode: c}
	default:
		ops = &imageSpecial{imageNode: c}
	}
	return d.NewInode(ctx, ops, gofs.StableAttr{Mode: n.Mode & syscall.S_IFMT, Ino: ino})
}

// OpendirHandle opens the directory for listing; the kernel may cache the
// listing.
func (d *imageDir) OpendirHandle(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &imageDirHandle{d: d}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirBatch is how many entries an image directory listing reads at once.
const dirBatch = 128

// imageDirHandle lists an image directory a batch of entries at a time;
// an entry's offset is the file system's cursor after it.
type imageDirHandle struct {
	d       *imageDir
	cursor  int64
	batch   []imageEntry
	done    bool
	last    *diskimage.Node
	lastIno uint64
}

// imageEntry is a listed entry and the cursor after it.
type imageEntry struct {
	node diskimage.Node
	next int64
}

// Readdirent returns the next entry, or nil at the end.
func (h *imageDirHandle) Readdirent(context.Context) (*fuse.DirEntry, syscall.Errno) {
	if len(h.batch) == 0 && !h.done {
		err := h.d.fs.ReadDir(&h.d.node, h.cursor, func(n diskimage.Node, next int64) bool {
			h.batch = append(h.batch, imageEntry{n, next})
			return len(h.batch) < dirBatch
		})
		if err != nil {
			h.batch = h.batch[:0]
			return nil, h.d.v.report(err, h.d.path, "cannot read a directory inside the image")
		}
		h.done = len(h.batch) < dirBatch
	}
	if len(h.batch) == 0 {
		return nil, 0
	}
	e := h.batch[0]
	h.batch = h.batch[1:]
	h.cursor = e.next
	h.last = &e.node
	ino := newInoHash('i').addUint64(h.d.attr.Ino).addString(e.node.Name).ino()
	return &fuse.DirEntry{Name: e.node.Name, Mode: e.node.Mode & syscall.S_IFMT, Ino: ino, Off: uint64(e.next)}, 0
}

// Seekdir goes back to offset off, a cursor a listed entry gave (0: the
// start).
func (h *imageDirHandle) Seekdir(_ context.Context, off uint64) syscall.Errno {
	h.cursor, h.batch, h.done, h.last = int64(off), nil, false, nil
	return 0
}

// Lookup returns the inode of the entry just listed.
func (h *imageDirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if h.last != nil && h.last.Name == name {
		return h.d.child(ctx, *h.last, out), 0
	}
	return h.d.Lookup(ctx, name, out)
}

// imageFile is a regular file of a file system in an image.
type imageFile struct {
	gofs.Inode
	imageNode
}

var (
	_ gofs.NodeGetattrer = (*imageFile)(nil)
	_ gofs.NodeOpener    = (*imageFile)(nil)
	_ gofs.NodeReader    = (*imageFile)(nil)
	_ gofs.NodeStatfser  = (*imageFile)(nil)
)

// Open answers ENOSYS, as fileNode.Open does for the whole mount.
func (f *imageFile) Open(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, syscall.ENOSYS
}

// Read reads the file.
func (f *imageFile) Read(_ context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return readResult(f.v, func(p []byte, off int64) (int, error) { return f.fs.ReadAt(&f.node, p, off) }, f.path, dest, off)
}

// imageLink is a symlink of a file system in an image.
type imageLink struct {
	gofs.Inode
	imageNode
}

var (
	_ gofs.NodeGetattrer  = (*imageLink)(nil)
	_ gofs.NodeReadlinker = (*imageLink)(nil)
	_ gofs.NodeStatfser   = (*imageLink)(nil)
)

// Readlink returns the link's target.
func (l *imageLink) Readlink(context.Context) ([]byte, syscall.Errno) {
	target, err := l.fs.Readlink(&l.node)
	if err != nil {
		return nil, l.v.report(err, l.path, "cannot read a symlink inside the image")
	}
	return []byte(target), 0
}

// imageSpecial is a device, FIFO or socket of a file system in an image:
// only its attributes are served.
type imageSpecial struct {
	gofs.Inode
	imageNode
}

var (
	_ gofs.NodeGetattrer = (*imageSpecial)(nil)
	_ gofs.NodeStatfser  = (*imageSpecial)(nil)
)

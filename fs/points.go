package fs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// latestName is the symlink in each machine's directory that names the
// newest point's directory.
const latestName = "latest"

// errPoints reports points that cannot be laid out.
var errPoints = errors.New("bad points")

// machine is one machine's directory in the all-points layout.
type machine struct {
	name   string
	points []namedPoint // sorted by time, then ID: the last is the newest
}

type namedPoint struct {
	Point
	name string
}

// NewAllPointsRoot returns the root node of a mount showing all points: the
// root holds one directory per machine; inside, one directory per point
// named by its time in UTC as "2006-01-02T15-04-05Z" (points of equal time
// get "-<first 8 hex digits of the ID>" appended), plus a symlink "latest"
// to the newest point's directory. Points' root parts are loaded on first
// use.
func NewAllPointsRoot(src Source, points []Point, opts Options) (gofs.InodeEmbedder, error) {
	machines, err := layout(points)
	if err != nil {
		return nil, fmt.Errorf("new all-points root: %w", err)
	}
	return &pointsRoot{v: newVault(src, opts), machines: machines}, nil
}

// layout groups points by machine and names their directories.
func layout(points []Point) ([]machine, error) {
	byMachine := make(map[string][]namedPoint)
	seen := make(map[keys.ID]bool, len(points))
	for _, p := range points {
		if seen[p.ID] {
			return nil, fmt.Errorf("%w: point %s listed twice", errPoints, p.ID)
		}
		seen[p.ID] = true
		dir := machineDir(p.Machine)
		byMachine[dir] = append(byMachine[dir], namedPoint{Point: p})
	}
	machines := make([]machine, 0, len(byMachine))
	for name, ps := range byMachine {
		slices.SortFunc(ps, func(a, b namedPoint) int {
			return cmp.Or(a.Time.Compare(b.Time), slices.Compare(a.ID[:], b.ID[:]))
		})
		for i := range ps {
			ps[i].name = ps[i].Time.UTC().Format(repo.PointNameLayout)
		}
		for i := 0; i < len(ps); {
			j := i + 1
			for j < len(ps) && ps[j].name == ps[i].name {
				j++
			}
			if j-i > 1 {
				for k := i; k < j; k++ {
					ps[k].name += "-" + ps[k].ID.Short()
				}
			}
			i = j
		}
		for i := 1; i < len(ps); i++ {
			if ps[i].name == ps[i-1].name {
				return nil, fmt.Errorf("%w: machine %q: points %s and %s both named %s", errPoints, name, ps[i-1].ID, ps[i].ID, ps[i].name)
			}
		}
		machines = append(machines, machine{name: name, points: ps})
	}
	slices.SortFunc(machines, func(a, b machine) int { return strings.Compare(a.name, b.name) })
	return machines, nil
}

// machineDir returns the directory name for a machine: its name, with
// characters that cannot appear in a file name replaced, so that one oddly
// named machine never hides the others.
func machineDir(s string) string {
	switch s {
	case "":
		return "_unnamed"
	case ".", "..":
		return "_" + s
	}
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(s)
}

// pointsRoot is the root of the all-points layout. Its tree of machines
// and points is built when the file system starts, as persistent inodes.
type pointsRoot struct {
	staticDir
	v        *vault
	machines []machine
}

var _ gofs.NodeOnAdder = (*pointsRoot)(nil)

// OnAdd builds the machine directories, the point directories and the
// "latest" symlinks.
func (r *pointsRoot) OnAdd(ctx context.Context) {
	var newest int64
	for i, m := range r.machines {
		latest := m.points[len(m.points)-1]
		mtime := latest.Time.UnixNano()
		if i == 0 || mtime > newest {
			newest = mtime
		}
		md := &staticDir{attr: staticAttr(syscall.S_IFDIR|0o555, mtime)}
		md.attr.Nlink = uint32(2 + len(m.points))
		mIno := newInoHash('m').addString(m.name).ino()
		mNode := r.NewPersistentInode(ctx, md, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: mIno})
		r.AddChild(m.name, mNode, false)
		for _, p := range m.points {
			pt := &point{v: r.v, id: p.ID}
			d := newPointDir(pt, m.name+"/"+p.name, p.Root)
			mNode.AddChild(p.name, r.NewPersistentInode(ctx, d, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: d.ino}), false)
		}
		link := &staticLink{target: latest.name, attr: staticAttr(syscall.S_IFLNK|0o777, mtime)}
		link.attr.Size = uint64(len(latest.name))
		lIno := newInoHash('l').addString(m.name).ino()
		mNode.AddChild(latestName, r.NewPersistentInode(ctx, link, gofs.StableAttr{Mode: syscall.S_IFLNK, Ino: lIno}), false)
	}
	r.attr = staticAttr(syscall.S_IFDIR|0o555, newest)
	r.attr.Nlink = uint32(2 + len(r.machines))
}

// staticAttr returns the attributes of a synthesized node: owned by root,
// all times mtime (ns since the epoch).
func staticAttr(mode uint32, mtime int64) fuse.Attr {
	a := fuse.Attr{Mode: mode, Nlink: 1, Blksize: blockSize}
	a.Mtime, a.Mtimensec = fuseTime(tree.UnixTime(0, mtime))
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
	return a
}

// staticDir is a synthesized directory whose entries are its persistent
// children.
type staticDir struct {
	gofs.Inode
	attr fuse.Attr
}

var (
	_ gofs.NodeGetattrer = (*staticDir)(nil)
	_ gofs.NodeLookuper  = (*staticDir)(nil)
	_ gofs.NodeStatfser  = (*staticDir)(nil)
)

// Getattr reports the directory's attributes.
func (s *staticDir) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = s.attr
	return 0
}

// Lookup returns the child called name with its attributes; a point
// directory whose root part fails to load gives that error.
func (s *staticDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch := s.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	var a fuse.AttrOut
	if errno := ch.Operations().(gofs.NodeGetattrer).Getattr(ctx, nil, &a); errno != 0 {
		return nil, errno
	}
	out.Attr = a.Attr
	return ch, 0
}

// Statfs reports file system statistics.
func (s *staticDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

// staticLink is a synthesized symlink.
type staticLink struct {
	gofs.Inode
	target string
	attr   fuse.Attr
}

var (
	_ gofs.NodeGetattrer  = (*staticLink)(nil)
	_ gofs.NodeReadlinker = (*staticLink)(nil)
	_ gofs.NodeStatfser   = (*staticLink)(nil)
)

// Getattr reports the link's attributes.
func (l *staticLink) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = l.attr
	return 0
}

// Readlink returns the link's target.
func (l *staticLink) Readlink(context.Context) ([]byte, syscall.Errno) {
	return []byte(l.target), 0
}

// Statfs reports file system statistics.
func (l *staticLink) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return statfs(out)
}

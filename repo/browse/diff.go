package browse

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"path"
	"slices"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// Change is one difference between two points, as azfs diff prints it
// (--json: this shape, stable; fields are only ever added).
type Change struct {
	// Path is the entry's path from the points' top level, starting with
	// "/".
	Path string `json:"path"`
	// What is "added", "removed" or "modified". An entry whose type
	// changed is removed and added.
	What string `json:"change"`
	// Type is the entry's type (its new one when modified).
	Type string `json:"type"`
	// Content says a modified file's bytes or a symlink's target differ.
	Content bool `json:"content,omitempty"`
	// Metadata names what else of a modified entry differs: "mode",
	// "owner", "mtime", "xattrs", "device".
	Metadata []string `json:"metadata,omitempty"`
}

// Mark is c's one-letter mark in azfs diff's listing: "+" added, "-"
// removed, "M" modified in content, "U" modified in metadata only.
func (c Change) Mark() string {
	switch {
	case c.What == "added":
		return "+"
	case c.What == "removed":
		return "-"
	case c.Content:
		return "M"
	}
	return "U"
}

// DiffStats sums up a Diff.
type DiffStats struct {
	Added    uint64 `json:"added"`
	Removed  uint64 `json:"removed"`
	Modified uint64 `json:"modified"`
	// BytesAdded and BytesRemoved are the sizes of files added and
	// removed.
	BytesAdded   uint64 `json:"bytes_added"`
	BytesRemoved uint64 `json:"bytes_removed"`
	// SubtreesSkipped counts directories whose listing is the same tree
	// parts in both points: nothing below them was read.
	SubtreesSkipped uint64 `json:"subtrees_skipped"`
}

// Diff calls fn for every difference between the points whose root parts
// are a (before) and b (after), in path order. A directory whose parts
// are the same in both (tree part IDs are content hashes) is skipped
// without reading it: nothing below it differs. It holds one part per
// directory level of each point.
func Diff(ctx context.Context, src Source, a, b keys.ID, fn func(Change) error) (DiffStats, error) {
	ra, err := Root(ctx, src, a)
	if err != nil {
		return DiffStats{}, err
	}
	rb, err := Root(ctx, src, b)
	if err != nil {
		return DiffStats{}, err
	}
	d := &differ{ctx: ctx, src: src, fn: fn}
	err = d.dirs("/", ra, rb)
	return d.stats, err
}

type differ struct {
	ctx   context.Context
	src   Source
	fn    func(Change) error
	stats DiffStats
}

// dirs compares what directories x and y, both at p, hold.
func (d *differ) dirs(p string, x, y *tree.Node) error {
	if slices.Equal(x.Parts, y.Parts) {
		d.stats.SubtreesSkipped++
		return nil
	}
	nextX, stopX := iter.Pull2(Entries(d.ctx, d.src, x))
	defer stopX()
	nextY, stopY := iter.Pull2(Entries(d.ctx, d.src, y))
	defer stopY()
	pull := func(next func() (*tree.Node, error, bool)) (*tree.Node, error) {
		n, err, ok := next()
		if !ok {
			return nil, nil
		}
		return n, err
	}
	nx, err := pull(nextX)
	if err != nil {
		return fmt.Errorf("list %q: %w", p, err)
	}
	ny, err := pull(nextY)
	if err != nil {
		return fmt.Errorf("list %q: %w", p, err)
	}
	for nx != nil || ny != nil {
		switch {
		case ny == nil || nx != nil && nx.Name < ny.Name:
			if err := d.all("removed", path.Join(p, nx.Name), nx); err != nil {
				return err
			}
			if nx, err = pull(nextX); err != nil {
				return fmt.Errorf("list %q: %w", p, err)
			}
		case nx == nil || ny.Name < nx.Name:
			if err := d.all("added", path.Join(p, ny.Name), ny); err != nil {
				return err
			}
			if ny, err = pull(nextY); err != nil {
				return fmt.Errorf("list %q: %w", p, err)
			}
		default:
			if err := d.entries(path.Join(p, nx.Name), nx, ny); err != nil {
				return err
			}
			if nx, err = pull(nextX); err != nil {
				return fmt.Errorf("list %q: %w", p, err)
			}
			if ny, err = pull(nextY); err != nil {
				return fmt.Errorf("list %q: %w", p, err)
			}
		}
	}
	return d.ctx.Err()
}

// entries compares x and y, the same name at p in both points.
func (d *differ) entries(p string, x, y *tree.Node) error {
	if x.Type != y.Type {
		if err := d.all("removed", p, x); err != nil {
			return err
		}
		return d.all("added", p, y)
	}
	c := Change{Path: p, What: "modified", Type: y.Type.String()}
	switch x.Type {
	case tree.File:
		c.Content = x.Size != y.Size || !slices.Equal(x.Extents, y.Extents)
	case tree.Symlink:
		c.Content = x.Target != y.Target
	}
	c.Metadata = metadataChanges(x, y)
	if c.Content || len(c.Metadata) > 0 {
		d.stats.Modified++
		if err := d.fn(c); err != nil {
			return err
		}
	}
	if x.Type == tree.Dir {
		return d.dirs(p, x, y)
	}
	return nil
}

// metadataChanges names the metadata that differs between x and y, of one
// type: what a user sees change (not atime, ctime or the inode number).
func metadataChanges(x, y *tree.Node) []string {
	var out []string
	if x.Mode != y.Mode {
		out = append(out, "mode")
	}
	if x.UID != y.UID || x.GID != y.GID || x.User != y.User || x.Group != y.Group {
		out = append(out, "owner")
	}
	if x.MTime != y.MTime {
		out = append(out, "mtime")
	}
	if !slices.EqualFunc(x.Xattrs, y.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
		out = append(out, "xattrs")
	}
	if x.Rdev != y.Rdev {
		out = append(out, "device")
	}
	return out
}

// all reports n at p, and everything below it, as added or removed.
func (d *differ) all(what, p string, n *tree.Node) error {
	return Walk(d.ctx, d.src, p, n, func(p string, n *tree.Node) error {
		if what == "added" {
			d.stats.Added++
			d.stats.BytesAdded += fileSize(n)
		} else {
			d.stats.Removed++
			d.stats.BytesRemoved += fileSize(n)
		}
		return d.fn(Change{Path: p, What: what, Type: n.Type.String()})
	})
}

func fileSize(n *tree.Node) uint64 {
	if n.Type != tree.File {
		return 0
	}
	return n.Size
}

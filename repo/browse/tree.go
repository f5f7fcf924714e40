// Package browse reads recovery points without mounting them, as the mount
// does (package fs) but through plain calls: a point's tree by path
// (Lookup), a directory's entries streamed one tree part at a time
// (Entries), a depth-first walk (Walk) and a file's content as a stream
// (NewReader). On them it builds what azfs ls, find, diff, dump and stats
// do: entries with a stable JSON shape (Entry), Find, Diff (unchanged
// subtrees are skipped by their tree part IDs, never read), Dump (a file,
// or a directory as a tar or zip stream) and Stats.
//
// Nothing here holds a whole directory or file: listings hold one decoded
// part (at most tree.PartEntries nodes) per directory level being read, and
// content is read a few chunks ahead.
package browse

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"iter"
	"path"
	"strings"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// Source supplies decoded, authenticated tree parts (*repo.Area is one).
type Source interface {
	Part(ctx context.Context, id keys.ID) (*tree.Part, error)
}

// ContentSource also supplies decrypted, authenticated chunks.
type ContentSource interface {
	Source
	Chunk(ctx context.Context, id keys.ID) ([]byte, error)
}

// ErrNotDir reports a path that goes through something that is not a
// directory.
var ErrNotDir = errkind.New(errkind.NotFound, "not a directory")

// Root returns a point's top-level directory: the single node, of type
// directory and named repo.RootName, of its root part.
func Root(ctx context.Context, src Source, root keys.ID) (*tree.Node, error) {
	part, err := src.Part(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("root of point: %w", err)
	}
	if len(part.Nodes) != 1 || part.Nodes[0].Type != tree.Dir || part.Nodes[0].Name != repo.RootName {
		return nil, fmt.Errorf("root part %s: %w: not one directory named %q", root.Short(), repo.ErrDamaged, repo.RootName)
	}
	return &part.Nodes[0], nil
}

// CleanPath returns p as a clean path relative to a point's top level, ""
// for the top level itself: "/home/alice/" and "home/alice" are
// "home/alice".
func CleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// Lookup returns the node at p (see CleanPath) in the point whose root part
// is root, loading only the parts that can hold each name, as the mount's
// lookups do. A name that is not there wraps io/fs.ErrNotExist.
func Lookup(ctx context.Context, src Source, root keys.ID, p string) (*tree.Node, error) {
	n, err := Root(ctx, src, root)
	if err != nil {
		return nil, err
	}
	p = CleanPath(p)
	if p == "" {
		return n, nil
	}
	done := ""
	for _, name := range strings.Split(p, "/") {
		if n.Type != tree.Dir {
			return nil, fmt.Errorf("%q: %w", done, ErrNotDir)
		}
		done = path.Join(done, name)
		if n, err = Child(ctx, src, n, name); err != nil {
			return nil, fmt.Errorf("%q: %w", done, err)
		}
	}
	return n, nil
}

// Child returns the entry called name of directory dir, loading the one
// part that can hold it; io/fs.ErrNotExist when there is none.
func Child(ctx context.Context, src Source, dir *tree.Node, name string) (*tree.Node, error) {
	if len(dir.Parts) == 0 {
		return nil, iofs.ErrNotExist
	}
	ref := dir.Parts[dir.PartFor(name)]
	part, err := src.Part(ctx, ref.ID)
	if err != nil {
		return nil, err
	}
	n := part.Find(name)
	if n == nil {
		return nil, iofs.ErrNotExist
	}
	return n, nil
}

// Entries yields the entries of directory dir in name order, loading its
// parts one at a time; a failed load is yielded as an error and ends the
// sequence. Nodes are valid until the sequence ends.
func Entries(ctx context.Context, src Source, dir *tree.Node) iter.Seq2[*tree.Node, error] {
	return func(yield func(*tree.Node, error) bool) {
		for _, ref := range dir.Parts {
			part, err := src.Part(ctx, ref.ID)
			if err != nil {
				yield(nil, fmt.Errorf("tree part %s: %w", ref.ID.Short(), err))
				return
			}
			for i := range part.Nodes {
				if !yield(&part.Nodes[i], nil) {
					return
				}
			}
		}
	}
}

// WalkFunc is called by Walk for each entry with its path (relative to the
// walk's start, joined with "/"). Returning io/fs.SkipDir from a directory
// skips what it holds; any other error stops the walk and is returned.
type WalkFunc func(path string, n *tree.Node) error

// Walk calls fn for dir (path p) and, depth first in name order, for
// everything below it. It holds one part per directory level.
func Walk(ctx context.Context, src Source, p string, dir *tree.Node, fn WalkFunc) error {
	if err := fn(p, dir); err != nil {
		if errors.Is(err, iofs.SkipDir) {
			return nil
		}
		return err
	}
	if dir.Type != tree.Dir {
		return nil
	}
	for n, err := range Entries(ctx, src, dir) {
		if err != nil {
			return fmt.Errorf("list %q: %w", p, err)
		}
		if err := Walk(ctx, src, path.Join(p, n.Name), n, fn); err != nil {
			return err
		}
	}
	return ctx.Err()
}

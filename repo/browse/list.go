package browse

import (
	"context"
	iofs "io/fs"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// List calls fn for what 'azfs ls' lists at p (relative to the point's
// top level; "" or "/" is the top level) of the point whose root part is
// root: the entries of the directory p names, or the one entry p names
// when it is no directory; with recursive, everything below p too, depth
// first in name order. It holds one part per directory level.
func List(ctx context.Context, src Source, root keys.ID, p string, recursive bool, fn func(Entry) error) error {
	p = "/" + CleanPath(p)
	n, err := Lookup(ctx, src, root, p)
	if err != nil {
		return err
	}
	return Walk(ctx, src, p, n, func(q string, c *tree.Node) error {
		if q == p && c.Type == tree.Dir {
			return nil // list what it holds
		}
		if err := fn(EntryOf(q, c)); err != nil {
			return err
		}
		if c.Type == tree.Dir && !recursive {
			return iofs.SkipDir
		}
		return nil
	})
}

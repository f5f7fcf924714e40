package fs

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/azfs/azfs/cache/lru"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// partCache is the mount's byte-bounded LRU of decoded tree parts, with
// concurrent loads of one part merged into a single Source call under
// cache/lru's cancellation rule.
type partCache struct {
	src Source
	lru *lru.Cache[keys.ID, *tree.Part]
}

// partLoads is how many tree parts load at once. The loads run on
// goroutines that stay for the next one (cache/lru's LimitLoads), so that
// a listing of many directories, one part each, grows the deep stack of a
// load (read, decrypt, decompress, decode) once, not for every part.
const partLoads = 16

func newPartCache(src Source, maxBytes int64) *partCache {
	c := lru.New[keys.ID](maxBytes, partBytes)
	c.LimitLoads(partLoads)
	return &partCache{src: src, lru: c}
}

// get returns the part id from the cache or loads it. A caller whose ctx
// ends stops waiting without failing the load for the others.
func (c *partCache) get(ctx context.Context, id keys.ID) (*tree.Part, error) {
	p, err := c.lru.GetOrLoad(ctx, id, func(ctx context.Context) (*tree.Part, error) {
		return c.src.Part(ctx, id)
	})
	if err != nil {
		return nil, fmt.Errorf("load tree part %s: %w", id.Short(), err)
	}
	return p, nil
}

// cached returns the part id if the cache holds it, loading nothing.
func (c *partCache) cached(id keys.ID) (*tree.Part, bool) {
	return c.lru.Get(id)
}

// Sizes in memory of what a decoded part holds, for partBytes.
const (
	nodeBytes    = int64(unsafe.Sizeof(tree.Node{}))
	extentBytes  = int64(unsafe.Sizeof(tree.Extent{}))
	partRefBytes = int64(unsafe.Sizeof(tree.PartRef{}))
	xattrBytes   = int64(unsafe.Sizeof(tree.Xattr{}))
)

// partBytes is about the memory a decoded part holds: its nodes, their
// strings, extents, listing references and xattrs.
func partBytes(p *tree.Part) int64 {
	n := int64(len(p.Nodes)) * nodeBytes
	for i := range p.Nodes {
		nd := &p.Nodes[i]
		n += int64(len(nd.Name)+len(nd.User)+len(nd.Group)+len(nd.Target)) +
			int64(len(nd.Extents))*extentBytes + int64(len(nd.Parts))*partRefBytes
		for _, x := range nd.Xattrs {
			n += xattrBytes + int64(len(x.Name)+len(x.Value))
		}
		for _, r := range nd.Parts {
			n += int64(len(r.First))
		}
	}
	return n
}

package fs

import (
	"context"
	"fmt"
	"sync"

	hlru "github.com/hashicorp/golang-lru/v2"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

// partCache is a count-bounded LRU of decoded tree parts. Concurrent loads
// of one part are merged into a single Source call.
type partCache struct {
	src Source
	lru *hlru.Cache[keys.ID, *tree.Part]

	mu    sync.Mutex
	loads map[keys.ID]*partLoad
}

// partLoad is one Source.Part call in flight; done closes when it ends.
type partLoad struct {
	done chan struct{}
	part *tree.Part
	err  error
}

func newPartCache(src Source, size int) *partCache {
	c, err := hlru.New[keys.ID, *tree.Part](size)
	if err != nil {
		// Only a non-positive size fails, and the size is a constant.
		panic(fmt.Sprintf("part cache: %v", err))
	}
	return &partCache{src: src, lru: c, loads: make(map[keys.ID]*partLoad)}
}

// get returns the part id from the cache or loads it. The load runs on its
// own, so a caller whose ctx ends stops waiting without failing the load
// for the others.
func (c *partCache) get(ctx context.Context, id keys.ID) (*tree.Part, error) {
	if p, ok := c.lru.Get(id); ok {
		return p, nil
	}
	c.mu.Lock()
	l, ok := c.loads[id]
	if !ok {
		// A load may have finished between the lookup above and the lock.
		if p, ok := c.lru.Get(id); ok {
			c.mu.Unlock()
			return p, nil
		}
		l = &partLoad{done: make(chan struct{})}
		c.loads[id] = l
		go c.load(context.WithoutCancel(ctx), id, l)
	}
	c.mu.Unlock()
	select {
	case <-l.done:
		return l.part, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("load tree part %s: %w", id.Short(), ctx.Err())
	}
}

func (c *partCache) load(ctx context.Context, id keys.ID, l *partLoad) {
	p, err := c.src.Part(ctx, id)
	if err != nil {
		l.err = fmt.Errorf("load tree part %s: %w", id.Short(), err)
	} else {
		l.part = p
		c.lru.Add(id, p)
	}
	c.mu.Lock()
	delete(c.loads, id)
	c.mu.Unlock()
	close(l.done)
}

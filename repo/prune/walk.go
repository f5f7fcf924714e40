package prune

import (
	"context"
	"fmt"
	"sync"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/tree"
)

// walkers is how many tree parts are loaded at once.
const walkers = 16

// walk adds to reach every blob reachable from roots (tree parts and
// chunks). Parts already in reach are not loaded again, so a later walk of
// new points only loads what they do not share. Memory: reach, and the IDs
// of the parts still to load.
func walk(ctx context.Context, v *repo.Area, roots []keys.ID, reach map[keys.ID]struct{}) error {
	w := &walker{v: v, reach: reach}
	w.cond = sync.NewCond(&w.mu)
	for _, r := range roots {
		w.push(r)
	}
	var wg sync.WaitGroup
	for range walkers {
		wg.Add(1)
		go func() { defer wg.Done(); w.work(ctx) }()
	}
	wg.Wait()
	return w.err
}

type walker struct {
	v      *repo.Area
	mu     sync.Mutex
	cond   *sync.Cond
	reach  map[keys.ID]struct{}
	todo   []keys.ID // parts to load
	active int       // parts being loaded
	err    error
}

// push queues a part unless it was reached before; call with mu held (or
// before the workers start).
func (w *walker) push(id keys.ID) {
	if _, ok := w.reach[id]; ok {
		return
	}
	w.reach[id] = struct{}{}
	w.todo = append(w.todo, id)
}

func (w *walker) work(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.todo) == 0 && w.active > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.todo) == 0 || w.err != nil {
			w.cond.Broadcast()
			return
		}
		id := w.todo[len(w.todo)-1]
		w.todo = w.todo[:len(w.todo)-1]
		w.active++
		w.mu.Unlock()
		part, err := w.load(ctx, id)
		w.mu.Lock()
		w.active--
		if err != nil {
			if w.err == nil {
				w.err = err
			}
		} else {
			w.add(part)
		}
		w.cond.Broadcast()
	}
}

func (w *walker) load(ctx context.Context, id keys.ID) (*tree.Part, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	part, err := w.v.Part(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("walk the points' trees: %w", err)
	}
	return part, nil
}

// add records the blobs a part references; call with mu held.
func (w *walker) add(part *tree.Part) {
	for i := range part.Nodes {
		n := &part.Nodes[i]
		for _, ref := range n.Parts {
			w.push(ref.ID)
		}
		for _, e := range n.Extents {
			w.reach[e.ID] = struct{}{}
		}
	}
}

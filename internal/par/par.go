// Package par runs a function over many items with bounded concurrency:
// the storage requests of a vault (listing points, reading index files and
// pack trailers) go out a few at a time, never one goroutine per object.
package par

import (
	"context"
	"sync"
)

// Range calls fn(ctx, i) for i in [0, count), at most n calls at a time.
// After the first error, or once ctx is done, it starts no more calls,
// cancels the context of those running, waits for them, and returns that
// error (or ctx's cause).
func Range(ctx context.Context, count, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for i := range count {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Each is Range over the items of a slice.
func Each[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	return Range(ctx, len(items), n, func(ctx context.Context, i int) error { return fn(ctx, items[i]) })
}

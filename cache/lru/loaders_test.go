package lru

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLimitLoadsBoundsLoadsInFlight: with LimitLoads(3), 30 callers of
// different keys run at most 3 loads at once, and all get their values.
func TestLimitLoadsBoundsLoadsInFlight(t *testing.T) {
	c := NewBytes[int](1 << 20)
	c.LimitLoads(3)
	var running, peak atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			v, err := c.GetOrLoad(context.Background(), i, func(context.Context) ([]byte, error) {
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				<-release
				return []byte{byte(i)}, nil
			})
			if err != nil || len(v) != 1 || v[0] != byte(i) {
				errs <- fmt.Errorf("GetOrLoad(%d) = %v, %v", i, v, err)
			}
		})
	}
	if err := waitUntil("3 loads run", func() bool { return running.Load() == 3 }); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("at most %d loads ran at once, want 3", p)
	}
	if err := waitUntil("the loader goroutines end", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.loaders.running == 0
	}); err != nil {
		t.Error(err)
	}
}

// TestReadsBeforeReadAhead: queued loads a caller waits for run before
// queued read-ahead, a read-ahead load a caller comes to wait for moves up,
// and Prefetch starts nothing when the read-ahead queue is full.
func TestReadsBeforeReadAhead(t *testing.T) {
	c := NewBytes[string](1 << 20)
	c.LimitLoads(1)
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	loadOf := func(key string) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) {
			mu.Lock()
			order = append(order, key)
			mu.Unlock()
			if key == "block" {
				<-release
			}
			return []byte(key), nil
		}
	}
	var wg sync.WaitGroup
	get := func(key string) {
		wg.Go(func() {
			if v, err := c.GetOrLoad(context.Background(), key, loadOf(key)); err != nil || string(v) != key {
				t.Errorf("GetOrLoad(%s) = %q, %v", key, v, err)
			}
		})
	}
	queued := func(reads, aheads int) func() bool {
		return func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.loaders.reads) == reads && len(c.loaders.aheads) == aheads
		}
	}
	get("block")
	if err := waitUntil("the loader busy", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 1 }); err != nil {
		t.Fatal(err)
	}
	if !c.Prefetch(context.Background(), "a1", loadOf("a1")) {
		t.Fatal("Prefetch(a1) refused with room in the queue")
	}
	if c.Prefetch(context.Background(), "a2", loadOf("a2")) {
		t.Error("Prefetch(a2) started a load with the read-ahead queue full")
	}
	if !c.Prefetch(context.Background(), "a1", loadOf("a1")) {
		t.Error("Prefetch of a key being loaded reported false")
	}
	get("r")
	if err := waitUntil("r queued", queued(1, 1)); err != nil {
		t.Fatal(err)
	}
	get("a1") // moves up: a caller waits for it now
	if err := waitUntil("a1 queued behind r", queued(2, 0)); err != nil {
		t.Fatal(err)
	}
	if !c.Prefetch(context.Background(), "a3", loadOf("a3")) {
		t.Error("Prefetch(a3) refused with the read-ahead queue empty")
	}
	close(release)
	wg.Wait()
	if err := waitUntil("a3 loaded", func() bool { _, ok := c.Get("a3"); return ok }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"block", "r", "a1", "a3"}; !slices.Equal(order, want) {
		t.Errorf("loads ran in order %v, want %v", order, want)
	}
}

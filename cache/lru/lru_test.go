package lru

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond until it holds and reports an error after a timeout.
// It returns an error rather than failing the test so that it can be used
// from load functions, which run on their own goroutines.
func waitUntil(what string, cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// waiters returns how many callers wait for the load of key in progress.
func (c *Cache[K, V]) waiters(key K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.inflight[key]; ok {
		return cl.waiters
	}
	return 0
}

// checkInvariants asserts that the byte count matches the cached values and
// respects the bound.
func checkInvariants[K comparable](t *testing.T, c *Cache[K, []byte]) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum int64
	for _, v := range c.lru.Values() {
		sum += int64(len(v))
	}
	if sum != c.bytes {
		t.Fatalf("byte count %d, but cached values total %d", c.bytes, sum)
	}
	if c.bytes > max(c.maxBytes, 0) {
		t.Fatalf("byte count %d exceeds bound %d", c.bytes, c.maxBytes)
	}
}

func TestByteBoundUnderManyAdds(t *testing.T) {
	const maxBytes = 10_000
	c := NewBytes[int](maxBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		key := rng.IntN(300) // repeats exercise replacement
		c.Add(key, make([]byte, rng.IntN(3000)))
		if b := c.Bytes(); b > maxBytes {
			t.Fatalf("after add %d: Bytes() = %d > %d", i, b, maxBytes)
		}
		if i%97 == 0 {
			checkInvariants(t, c)
		}
	}
	checkInvariants(t, c)
	if c.Len() == 0 || c.Bytes() < maxBytes/2 {
		t.Errorf("cache nearly empty after many adds: Len %d, Bytes %d", c.Len(), c.Bytes())
	}
}

func TestRecentlyUsedSurvives(t *testing.T) {
	c := NewBytes[string](300)
	for _, k := range []string{"a", "b", "c"} {
		c.Add(k, bytes.Repeat([]byte(k), 100))
	}
	if _, ok := c.Get("a"); !ok {
		t.Fatal("a missing before eviction")
	}
	c.Add("d", make([]byte, 100)) // evicts b, the least recently used

	if _, ok := c.Get("b"); ok {
		t.Error("b survived although it was least recently used")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	if v, _ := c.Get("a"); !bytes.Equal(v, bytes.Repeat([]byte("a"), 100)) {
		t.Errorf("Get(a) returned wrong value %q", v)
	}
	if c.Len() != 3 || c.Bytes() != 300 {
		t.Errorf("Len %d, Bytes %d; want 3, 300", c.Len(), c.Bytes())
	}

	// A large value evicts as many old entries as needed.
	c.Add("e", make([]byte, 250))
	if c.Len() != 1 || c.Bytes() != 250 {
		t.Errorf("after large add: Len %d, Bytes %d; want 1, 250", c.Len(), c.Bytes())
	}
}

func TestOversizeValuesNotCached(t *testing.T) {
	c := NewBytes[int](100)
	c.Add(1, make([]byte, 101))
	if _, ok := c.Get(1); ok || c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("oversize value cached: Len %d, Bytes %d", c.Len(), c.Bytes())
	}
	c.Add(2, make([]byte, 100))
	if _, ok := c.Get(2); !ok {
		t.Error("value of exactly maxBytes not cached")
	}
	// Replacing a cached value with an oversize one drops the old value.
	c.Add(2, make([]byte, 101))
	if _, ok := c.Get(2); ok || c.Bytes() != 0 {
		t.Errorf("stale value kept after oversize replacement: Bytes %d", c.Bytes())
	}
}

func TestReplaceKeepsByteCount(t *testing.T) {
	c := NewBytes[int](1000)
	c.Add(1, make([]byte, 400))
	c.Add(1, make([]byte, 100))
	if c.Len() != 1 || c.Bytes() != 100 {
		t.Errorf("Len %d, Bytes %d; want 1, 100", c.Len(), c.Bytes())
	}
	checkInvariants(t, c)
}

func TestZeroMaxBytesCachesNothing(t *testing.T) {
	for _, maxBytes := range []int64{0, -1} {
		c := NewBytes[int](maxBytes)
		c.Add(1, []byte{})
		c.Add(2, []byte("x"))
		if c.Len() != 0 || c.Bytes() != 0 {
			t.Errorf("New(%d): Len %d, Bytes %d after adds; want 0, 0", maxBytes, c.Len(), c.Bytes())
		}
	}
}

// testMergedLoads starts n concurrent GetOrLoad calls for one key whose load
// blocks until all n callers wait for it, and checks that load ran once and
// every caller got its result.
func testMergedLoads(t *testing.T, c *Cache[string, []byte], n int) {
	t.Helper()
	var calls atomic.Int32
	want := []byte("value")
	load := func(context.Context) ([]byte, error) {
		calls.Add(1)
		if err := waitUntil("all callers wait", func() bool { return c.waiters("k") == n }); err != nil {
			return nil, err
		}
		return want, nil
	}

	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = c.GetOrLoad(t.Context(), "k", load)
		})
	}
	wg.Wait()

	if got := calls.Load(); got != 1 {
		t.Errorf("load ran %d times, want 1", got)
	}
	for i := range n {
		if errs[i] != nil || !bytes.Equal(results[i], want) {
			t.Errorf("caller %d got (%q, %v), want (%q, nil)", i, results[i], errs[i], want)
		}
	}
}

func TestGetOrLoadMergesConcurrentLoads(t *testing.T) {
	c := NewBytes[string](1 << 20)
	testMergedLoads(t, c, 50)
	if v, ok := c.Get("k"); !ok || string(v) != "value" {
		t.Errorf("loaded value not cached: %q, %v", v, ok)
	}
	// A cached value is returned without loading.
	v, err := c.GetOrLoad(t.Context(), "k", func(context.Context) ([]byte, error) {
		t.Error("load called for a cached key")
		return nil, nil
	})
	if err != nil || string(v) != "value" {
		t.Errorf("GetOrLoad of cached key = (%q, %v)", v, err)
	}
}

func TestGetOrLoadMergesWithoutCaching(t *testing.T) {
	c := NewBytes[string](0)
	testMergedLoads(t, c, 20)
	if c.Len() != 0 {
		t.Errorf("Len %d with maxBytes 0, want 0", c.Len())
	}
}

func TestGetOrLoadErrorsNotCached(t *testing.T) {
	c := NewBytes[string](1 << 20)
	errLoad := errors.New("load failed")
	const n = 10
	var calls atomic.Int32
	failing := func(context.Context) ([]byte, error) {
		calls.Add(1)
		if err := waitUntil("all callers wait", func() bool { return c.waiters("k") == n }); err != nil {
			return nil, err
		}
		return nil, errLoad
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if v, err := c.GetOrLoad(t.Context(), "k", failing); !errors.Is(err, errLoad) || v != nil {
				t.Errorf("GetOrLoad = (%q, %v), want (nil, %v)", v, err, errLoad)
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("failing load ran %d times, want 1", got)
	}
	if c.Len() != 0 {
		t.Errorf("Len %d after failed load, want 0", c.Len())
	}

	// The next call loads again.
	v, err := c.GetOrLoad(t.Context(), "k", func(context.Context) ([]byte, error) {
		calls.Add(1)
		return []byte("ok"), nil
	})
	if err != nil || string(v) != "ok" || calls.Load() != 2 {
		t.Errorf("retry = (%q, %v) after %d loads, want (ok, nil) after 2", v, err, calls.Load())
	}
}

func TestCancelledWaiterDoesNotCancelLoad(t *testing.T) {
	c := NewBytes[string](1 << 20)
	release := make(chan struct{})
	var loadErr atomic.Value
	var loads atomic.Int32
	load := func(ctx context.Context) ([]byte, error) {
		loads.Add(1)
		<-release
		if err := ctx.Err(); err != nil {
			loadErr.Store(err)
			return nil, err
		}
		return []byte("value"), nil
	}

	// The first caller starts the load and gives up while it runs.
	ctx1, cancel1 := context.WithCancel(t.Context())
	res1 := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoad(ctx1, "k", load)
		res1 <- err
	}()
	if err := waitUntil("the first caller waits", func() bool { return c.waiters("k") == 1 }); err != nil {
		t.Fatal(err)
	}

	// A second caller joins the same load.
	type result struct {
		v   []byte
		err error
	}
	res2 := make(chan result, 1)
	go func() {
		v, err := c.GetOrLoad(t.Context(), "k", load)
		res2 <- result{v, err}
	}()
	if err := waitUntil("both callers wait", func() bool { return c.waiters("k") == 2 }); err != nil {
		t.Fatal(err)
	}

	cancel1()
	if err := <-res1; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want %v", err, context.Canceled)
	}
	close(release)
	if r := <-res2; r.err != nil || string(r.v) != "value" {
		t.Errorf("remaining caller got (%q, %v), want (value, nil)", r.v, r.err)
	}
	if err := loadErr.Load(); err != nil {
		t.Errorf("load saw a cancelled context: %v", err)
	}
	if _, ok := c.Get("k"); !ok {
		t.Error("value not cached after the load completed")
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("loaded %d times, want 1: the remaining caller refetched", n)
	}
}

func TestLoadCancelledWhenAllWaitersGiveUp(t *testing.T) {
	c := NewBytes[string](1 << 20)
	loadDone := make(chan error, 1)
	load := func(ctx context.Context) ([]byte, error) {
		<-ctx.Done()
		loadDone <- ctx.Err()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoad(ctx, "k", load)
		res <- err
	}()
	if err := waitUntil("the caller waits", func() bool { return c.waiters("k") == 1 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("caller got %v, want %v", err, context.Canceled)
	}
	select {
	case err := <-loadDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("load context error %v, want %v", err, context.Canceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("load not cancelled after its only caller gave up")
	}

	// A new caller starts a fresh load instead of joining the abandoned one.
	v, err := c.GetOrLoad(t.Context(), "k", func(context.Context) ([]byte, error) { return []byte("fresh"), nil })
	if err != nil || string(v) != "fresh" {
		t.Errorf("GetOrLoad after abandoned load = (%q, %v), want (fresh, nil)", v, err)
	}
}

func TestConcurrentMixedUse(t *testing.T) {
	const maxBytes = 4096
	c := NewBytes[int](maxBytes)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range 2000 {
				key := rng.IntN(64)
				switch rng.IntN(3) {
				case 0:
					c.Add(key, make([]byte, rng.IntN(1024)))
				case 1:
					c.Get(key)
				default:
					size := key * 16
					v, err := c.GetOrLoad(t.Context(), key, func(context.Context) ([]byte, error) {
						return make([]byte, size), nil
					})
					if err != nil || v == nil {
						t.Errorf("GetOrLoad(%d) = (%d bytes, %v)", key, len(v), err)
					}
				}
				if b := c.Bytes(); b > maxBytes {
					t.Errorf("Bytes() = %d > %d", b, maxBytes)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
}

// TestLoadCancelledOnlyWhenEveryWaiterGaveUp: of two waiters, the first
// giving up leaves the load running; the second giving up cancels it.
func TestLoadCancelledOnlyWhenEveryWaiterGaveUp(t *testing.T) {
	c := NewBytes[string](1 << 20)
	loadDone := make(chan error, 1)
	load := func(ctx context.Context) ([]byte, error) {
		<-ctx.Done()
		loadDone <- ctx.Err()
		return nil, ctx.Err()
	}
	var cancels []context.CancelFunc
	res := make(chan error, 2)
	for i := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		go func() {
			_, err := c.GetOrLoad(ctx, "k", load)
			res <- err
		}()
		if err := waitUntil("the callers wait", func() bool { return c.waiters("k") == i+1 }); err != nil {
			t.Fatal(err)
		}
	}
	cancels[0]()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller got %v, want %v", err, context.Canceled)
	}
	select {
	case err := <-loadDone:
		t.Fatalf("load ended (%v) while a caller still waited", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancels[1]()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("second caller got %v, want %v", err, context.Canceled)
	}
	select {
	case <-loadDone:
	case <-time.After(10 * time.Second):
		t.Fatal("load not cancelled after every caller gave up")
	}
}

// sized is a value that is not a byte slice, counted by its own measure.
type sized struct {
	name  string
	bytes int64
}

// TestByteBoundOfSizedValues: values other than byte slices are bounded by
// what the size function says they hold.
func TestByteBoundOfSizedValues(t *testing.T) {
	c := New[int](1000, func(v *sized) int64 { return v.bytes })
	for i := range 10 {
		c.Add(i, &sized{name: fmt.Sprint(i), bytes: 300})
		if c.Bytes() > 1000 {
			t.Fatalf("after %d adds: %d bytes cached, bound 1000", i+1, c.Bytes())
		}
	}
	if c.Len() != 3 || c.Bytes() != 900 {
		t.Errorf("Len %d, Bytes %d; want 3, 900", c.Len(), c.Bytes())
	}
	for i := 7; i < 10; i++ {
		if v, ok := c.Get(i); !ok || v.name != fmt.Sprint(i) {
			t.Errorf("Get(%d) = %v, %v; want the newest three kept", i, v, ok)
		}
	}
	c.Add(11, &sized{name: "huge", bytes: 1001})
	if _, ok := c.Get(11); ok {
		t.Error("a value larger than the bound was cached")
	}
}

// TestDiscard: a copy found bad is dropped so the next reader loads anew;
// a newer copy another reader put in its place stays.
func TestDiscard(t *testing.T) {
	c := NewBytes[string](1 << 20)
	bad := []byte("bad")
	c.Add("k", bad)
	isBad := func(v []byte) bool { return &v[0] == &bad[0] }
	if newer := c.Discard("k", isBad); newer {
		t.Error("Discard of the only copy reports a newer one")
	}
	if _, ok := c.Get("k"); ok {
		t.Error("discarded value still cached")
	}
	good := []byte("good")
	c.Add("k", good)
	if newer := c.Discard("k", isBad); !newer {
		t.Error("Discard with a newer copy cached does not report it")
	}
	if v, ok := c.Get("k"); !ok || string(v) != "good" {
		t.Errorf("newer copy dropped: %q, %v", v, ok)
	}
	c = NewBytes[string](1 << 20)
	release := make(chan struct{})
	go c.GetOrLoad(t.Context(), "k", func(context.Context) ([]byte, error) { <-release; return good, nil })
	if err := waitUntil("the load runs", func() bool { return c.waiters("k") == 1 }); err != nil {
		t.Fatal(err)
	}
	if newer := c.Discard("k", isBad); !newer {
		t.Error("Discard during another reader's load does not report it")
	}
	close(release)
}

// TestOnEvict: every value that leaves the cache (evicted, replaced,
// discarded) is handed to OnEvict's function once; a value the cache never
// held (larger than its bound) is not.
func TestOnEvict(t *testing.T) {
	c := NewBytes[string](10)
	var gone []string
	c.OnEvict(func(b []byte) { gone = append(gone, string(b)) })
	c.Add("a", []byte("aaaa"))
	c.Add("b", []byte("bbbb"))
	c.Add("c", []byte("cccc")) // evicts a
	c.Add("b", []byte("BB"))   // replaces b
	c.Add("x", []byte("xxxxxxxxxxxx"))
	c.Discard("c", func([]byte) bool { return true })
	if _, err := c.GetOrLoad(context.Background(), "d", func(context.Context) ([]byte, error) { return []byte("dddd"), nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"aaaa", "bbbb", "cccc"}
	if fmt.Sprint(gone) != fmt.Sprint(want) {
		t.Errorf("handed back %q, want %q", gone, want)
	}
}

// TestPublisherHandsValueOutEarly: a load that publishes its value early
// (Publisher) answers its waiters and fills the cache while it goes on;
// what it returns afterwards, even an error, is dropped; it keeps its slot
// among LimitLoads' until it returns; outside a load there is no publisher.
func TestPublisherHandsValueOutEarly(t *testing.T) {
	if _, ok := Publisher[[]byte](context.Background()); ok {
		t.Fatal("Publisher outside a load")
	}
	c := NewBytes[string](1 << 20)
	c.LimitLoads(1)
	published, finish, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	load := func(ctx context.Context) ([]byte, error) {
		defer close(returned)
		publish, ok := Publisher[[]byte](ctx)
		if !ok {
			return nil, errors.New("no publisher in a load's context")
		}
		publish([]byte("early"))
		publish([]byte("twice"))
		close(published)
		<-finish
		return []byte("late"), errors.New("failed after publishing")
	}
	got, err := c.GetOrLoad(context.Background(), "k", load)
	if err != nil || string(got) != "early" {
		t.Fatalf("GetOrLoad = %q, %v; want the value published early", got, err)
	}
	<-published
	if v, ok := c.Get("k"); !ok || string(v) != "early" {
		t.Errorf("cache holds %q, %v while the load goes on; want the published value", v, ok)
	}
	// The one loader is still busy: a prefetch waits behind it.
	other := make(chan struct{})
	c.Prefetch(context.Background(), "other", func(context.Context) ([]byte, error) { close(other); return []byte("o"), nil })
	select {
	case <-other:
		t.Error("a second load ran while the publishing load held the only slot")
	case <-time.After(20 * time.Millisecond):
	}
	close(finish)
	<-returned
	<-other
	if err := waitUntil("the other load is cached", func() bool { _, ok := c.Get("other"); return ok }); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get("k"); !ok || string(v) != "early" {
		t.Errorf("after the load returned, cache holds %q, %v; want the published value", v, ok)
	}
	checkInvariants(t, c)
}

package diskcache

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// value returns the test object of key: size bytes derived from the key.
func value(key string, size int) []byte {
	var seed [32]byte
	copy(seed[:], key)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func open(t *testing.T, dir string, maxBytes int64) *Cache {
	t.Helper()
	c, err := Open(dir, Options{MaxBytes: maxBytes})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// onDisk returns the objects in dir (names not beginning with a dot) and
// their sizes.
func onDisk(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fi.Size()
	}
	return out
}

// checkConsistent asserts that the cache's accounting matches the
// directory and respects the bound.
func checkConsistent(t *testing.T, c *Cache) {
	t.Helper()
	files := onDisk(t, c.dir)
	var total int64
	for _, n := range files {
		total += n
	}
	s := c.Stats()
	if s.Objects != len(files) || s.Bytes != total {
		t.Errorf("Stats: %d objects, %d bytes; the directory holds %d files, %d bytes", s.Objects, s.Bytes, len(files), total)
	}
	if total > c.opts.MaxBytes {
		t.Errorf("the directory holds %d bytes, over the bound of %d", total, c.opts.MaxBytes)
	}
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestPutGetPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "area")
	c := open(t, dir, 1<<20)
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get on an empty cache hit")
	}
	want := map[string][]byte{"a": value("a", 1000), "b-1": value("b-1", 5000), "index-ff": nil}
	for k, v := range want {
		c.Put(k, v)
	}
	got, ok := c.Get("a")
	if !ok || !bytes.Equal(got, want["a"]) {
		t.Fatalf("Get(a) = %d bytes, %v", len(got), ok)
	}
	got[0] ^= 0xff // the caller owns it
	if again, _ := c.Get("a"); !bytes.Equal(again, want["a"]) {
		t.Fatal("modifying a returned slice changed the cached object")
	}
	c.Put("a", []byte("other")) // immutable: the first object stays
	checkConsistent(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("a"); ok {
		t.Error("Get after Close hit")
	}

	c = open(t, dir, 1<<20)
	for k, v := range want {
		got, ok := c.Get(k)
		if !ok || !bytes.Equal(got, v) {
			t.Errorf("after reopening: Get(%s) = %d bytes, %v; want %d bytes", k, len(got), ok, len(v))
		}
	}
	checkConsistent(t, c)
	if s := c.Stats(); s.Objects != 3 || s.Hits != 3 {
		t.Errorf("Stats = %+v, want 3 objects, 3 hits", s)
	}

	for _, fi := range []string{dir, filepath.Join(dir, "a")} {
		st, err := os.Stat(fi)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if st.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", fi, st.Mode().Perm(), want)
		}
	}
}

func TestKeysAndSizesRefused(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 100)
	for _, k := range []string{"", ".lock", ".tmp-x", "a/b", "../x", "a b", strings.Repeat("k", maxKeyLen+1)} {
		c.Put(k, []byte("v"))
		if _, ok := c.Get(k); ok {
			t.Errorf("invalid key %q: Get hit", k)
		}
		c.Remove(k)
	}
	c.Put("big", value("big", 101))
	if _, ok := c.Get("big"); ok {
		t.Error("an object over the bound was cached")
	}
	if files := onDisk(t, dir); len(files) != 0 {
		t.Errorf("files written: %v", keys(files))
	}
}

func TestBoundAndLRUOrder(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 3000)
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, value(k, 1000))
	}
	c.Get("a") // b is now the least recently used
	c.Put("d", value("d", 1000))
	if got := keys(onDisk(t, dir)); !slicesEqual(got, []string{"a", "c", "d"}) {
		t.Errorf("after evicting one object: %v, want [a c d]", got)
	}
	checkConsistent(t, c)
	if s := c.Stats(); s.Evictions != 1 {
		t.Errorf("Evictions = %d, want 1", s.Evictions)
	}

	// Recency survives a reopen: c, then a, are now the oldest.
	c.Get("d")
	c.Close()
	c = open(t, dir, 3000)
	c.Put("e", value("e", 1500)) // evicts c, then a
	if got := keys(onDisk(t, dir)); !slicesEqual(got, []string{"d", "e"}) {
		t.Errorf("after reopening and evicting two: %v, want [d e]", got)
	}
	checkConsistent(t, c)

	// A smaller bound at Open evicts down to it, oldest first.
	c.Get("d")
	c.Close()
	c = open(t, dir, 1200)
	if got := keys(onDisk(t, dir)); !slicesEqual(got, []string{"d"}) {
		t.Errorf("after reopening with a smaller bound: %v, want [d]", got)
	}
	checkConsistent(t, c)
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	for _, k := range []string{"short", "long", "gone", "dir", "kept"} {
		c.Put(k, value(k, 1000))
	}
	mustDo(t, os.Truncate(filepath.Join(dir, "short"), 10))
	mustDo(t, os.WriteFile(filepath.Join(dir, "long"), value("x", 2000), 0o600))
	mustDo(t, os.Remove(filepath.Join(dir, "gone")))
	mustDo(t, os.Remove(filepath.Join(dir, "dir")))
	mustDo(t, os.Mkdir(filepath.Join(dir, "dir"), 0o700))
	for _, k := range []string{"short", "long", "gone", "dir"} {
		if b, ok := c.Get(k); ok {
			t.Errorf("Get(%s) of a file changed behind the cache's back: hit with %d bytes", k, len(b))
		}
		if _, err := os.Stat(filepath.Join(dir, k)); err == nil {
			t.Errorf("the damaged file %s was left in place", k)
		}
	}
	if b, ok := c.Get("kept"); !ok || !bytes.Equal(b, value("kept", 1000)) {
		t.Errorf("Get(kept) = %d bytes, %v", len(b), ok)
	}
	checkConsistent(t, c)
	c.Close()

	// Left behind by a crash, or not the cache's: temporary files are
	// removed, anything else is neither counted nor served.
	for _, name := range []string{".tmp-123", ".other", "with space"} {
		mustDo(t, os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600))
	}
	mustDo(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	// A file truncated while the cache was closed has its new length: the
	// caller's authentication rejects it and Removes it.
	mustDo(t, os.Truncate(filepath.Join(dir, "kept"), 10))
	c = open(t, dir, 1<<20)
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); err == nil {
		t.Error("Open left a temporary file")
	}
	if s := c.Stats(); s.Objects != 1 || s.Bytes != 10 {
		t.Errorf("Stats after reopening = %+v, want 1 object of 10 bytes", s)
	}
	if b, ok := c.Get("kept"); !ok || len(b) != 10 {
		t.Errorf("Get(kept) = %d bytes, %v; want its 10 remaining bytes", len(b), ok)
	}
	c.Remove("kept")
	if _, ok := c.Get("kept"); ok {
		t.Error("Get after Remove hit")
	}
	if s := c.Stats(); s.Objects != 0 || s.Bytes != 0 {
		t.Errorf("Stats after Remove = %+v, want empty", s)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 100)
	if _, err := Open(dir, Options{MaxBytes: 100}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of a directory in use: err = %v, want ErrLocked", err)
	}
	c.Close()
	c2, err := Open(dir, Options{MaxBytes: 100})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	c2.Close()
}

func TestPutErrorsAreSwallowed(t *testing.T) {
	t.Run("directory gone", func(t *testing.T) {
		// An unwritable directory, whoever runs the test (root writes
		// into a read-only directory).
		dir := filepath.Join(t.TempDir(), "cache")
		var reported []error
		c, err := Open(dir, Options{MaxBytes: 1 << 20, OnPutError: func(err error) { reported = append(reported, err) }})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Put("a", value("a", 100))
		mustDo(t, os.Rename(dir, dir+".away"))
		mustDo(t, os.WriteFile(dir, nil, 0o600))
		c.Put("b", value("b", 100))
		c.Put("c", value("c", 100))
		if _, ok := c.Get("a"); ok {
			t.Error("Get hit in a vanished directory")
		}
		if _, ok := c.Get("b"); ok {
			t.Error("Get hit an object that could not be written")
		}
		s := c.Stats()
		if s.PutErrors != 2 || s.Puts != 1 || s.Objects != 0 || s.Bytes != 0 {
			t.Errorf("Stats = %+v, want 1 put, 2 errors, nothing cached", s)
		}
		if len(reported) != 1 || !errors.Is(reported[0], syscall.ENOTDIR) {
			t.Errorf("OnPutError calls: %v, want one ENOTDIR", reported)
		}
	})
	t.Run("write fails", func(t *testing.T) {
		// As a full disk would: here the file size limit makes writes
		// beyond 4 KiB fail (EFBIG instead of ENOSPC).
		dir := t.TempDir()
		c := open(t, dir, 1<<20)
		signal.Ignore(syscall.SIGXFSZ)
		defer signal.Reset(syscall.SIGXFSZ)
		var old unix.Rlimit
		mustDo(t, unix.Getrlimit(unix.RLIMIT_FSIZE, &old))
		mustDo(t, unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 4096, Max: old.Max}))
		c.Put("small", value("small", 1000))
		c.Put("large", value("large", 10000))
		mustDo(t, unix.Setrlimit(unix.RLIMIT_FSIZE, &old))
		if _, ok := c.Get("large"); ok {
			t.Error("Get hit an object whose write failed")
		}
		if b, ok := c.Get("small"); !ok || !bytes.Equal(b, value("small", 1000)) {
			t.Error("the object that fitted was not cached")
		}
		if s := c.Stats(); s.PutErrors != 1 {
			t.Errorf("PutErrors = %d, want 1", s.PutErrors)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 { // .lock, small
			t.Errorf("the failed write left files behind: %v", entries)
		}
		checkConsistent(t, c)
	})
}

func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	const bound = 64 << 10
	c := open(t, dir, bound)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 500 {
				k := fmt.Sprintf("k%d", r.IntN(40))
				size := 1000 + len(k)*500 // the same for every Put of k
				switch r.IntN(10) {
				case 0:
					c.Remove(k)
				case 1, 2, 3:
					c.Put(k, value(k, size))
				default:
					if b, ok := c.Get(k); ok && !bytes.Equal(b, value(k, size)) {
						errs <- fmt.Errorf("Get(%s) returned other bytes", k)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkConsistent(t, c)
	if s := c.Stats(); s.Hits == 0 || s.Evictions == 0 {
		t.Errorf("Stats = %+v: the test exercised no hits or no evictions", s)
	}
}

package objcache

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "objects-m")
	c := Open(path)
	if _, ok := c.Get("points/a"); ok {
		t.Fatal("an empty cache has an entry")
	}
	c.Put("points/a", []byte("sealed a"))
	c.Put("points/b", []byte("sealed b"))
	c.Put("tombstones/c", nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("cache file mode %#o, want 0600", perm)
	}

	// Read back; a Get returns a copy.
	c = Open(path)
	b, ok := c.Get("points/a")
	if !ok || string(b) != "sealed a" {
		t.Fatalf("Get(points/a) = %q, %v", b, ok)
	}
	b[0] = 'X'
	if again, _ := c.Get("points/a"); string(again) != "sealed a" {
		t.Errorf("changing what Get returned changed the cache: %q", again)
	}
	if b, ok := c.Get("tombstones/c"); !ok || len(b) != 0 {
		t.Errorf("empty entry: %q, %v", b, ok)
	}
	// Nothing added: Close leaves the file alone, b and all.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = Open(path)
	if _, ok := c.Get("points/b"); !ok {
		t.Fatal("points/b lost by a Close that changed nothing")
	}
	// Something added: only the entries used since Open are kept.
	c.Put("points/d", []byte("sealed d"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = Open(path)
	for key, want := range map[string]bool{"points/a": false, "points/b": true, "tombstones/c": false, "points/d": true} {
		if _, ok := c.Get(key); ok != want {
			t.Errorf("after a write, %s cached: %v, want %v", key, ok, want)
		}
	}
	c.Remove("points/b")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := Open(path).Get("points/b"); ok {
		t.Error("a removed entry came back")
	}
}

// TestDamagedFile: a damaged or foreign file is an empty cache, or the
// entries before the damage.
func TestDamagedFile(t *testing.T) {
	dir := t.TempDir()
	good := Encode(map[string][]byte{"points/a": []byte("xyz")})
	for name, b := range map[string][]byte{
		"foreign":   []byte("hello"),
		"truncated": good[:len(good)-1],
		"huge":      append([]byte(magic), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := Open(path).Get("points/a"); ok {
			t.Errorf("%s: an entry read from a damaged file", name)
		}
	}
	if m, err := Decode(append(bytes.Clone(good), 3, 'k')); err == nil || len(m) != 1 {
		t.Errorf("trailing damage: %v entries, err %v; want the one before it and an error", len(m), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(map[string][]byte{"points/a": []byte("sealed"), "tombstones/b": {}}))
	f.Add(Encode(nil))
	f.Add([]byte(magic + "\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
		back, err := Decode(Encode(m))
		if err != nil || !maps.EqualFunc(m, back, bytes.Equal) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

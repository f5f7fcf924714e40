package filecache

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/azfs/azfs/keys"
)

func cid(n byte) keys.ID {
	var id keys.ID
	for i := range id {
		id[i] = n + byte(i)
	}
	return id
}

func sampleRecord() *Record {
	return &Record{
		Size: 9 << 20, MTime: 1_700_000_000_123_456_789, CTime: -5, Inode: math.MaxUint64, Device: 2049,
		Extents: []Extent{
			{Offset: 0, Length: 4 << 20, ID: cid(1)},
			{Offset: 8 << 20, Length: 1 << 20, ID: cid(2)},
		},
	}
}

func TestEncodeDecode(t *testing.T) {
	for name, r := range map[string]*Record{
		"sample":     sampleRecord(),
		"no extents": {Size: 0, MTime: math.MinInt64, CTime: math.MaxInt64, Extents: []Extent{}},
		"max length": {Size: 1 << 32, Extents: []Extent{{Offset: 1, Length: math.MaxUint32, ID: cid(3)}}},
	} {
		got, err := decode(encode(r))
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip:\n got %+v\nwant %+v", name, got, r)
		}
	}
	b := encode(sampleRecord())
	for n := range len(b) {
		if _, err := decode(b[:n]); !errors.Is(err, errFormat) {
			t.Fatalf("prefix of %d of %d bytes: err = %v, want errFormat", n, len(b), err)
		}
	}
	for _, bad := range [][]byte{nil, {0xff}, {0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := decode(bad); !errors.Is(err, errFormat) {
			t.Errorf("decode(%x): err = %v, want errFormat", bad, err)
		}
	}
}

func TestMatches(t *testing.T) {
	r := sampleRecord()
	const size, mtime, ctime, inode, dev = 9 << 20, 1_700_000_000_123_456_789, -5, math.MaxUint64, 2049
	if !r.Matches(size, mtime, ctime, inode, dev) {
		t.Fatalf("Matches of the recorded values = false")
	}
	for name, ok := range map[string]bool{
		"size":   r.Matches(size+1, mtime, ctime, inode, dev),
		"mtime":  r.Matches(size, mtime+1, ctime, inode, dev),
		"ctime":  r.Matches(size, mtime, ctime+1, inode, dev),
		"inode":  r.Matches(size, mtime, ctime, inode-1, dev),
		"device": r.Matches(size, mtime, ctime, inode, dev+1),
	} {
		if ok {
			t.Errorf("Matches with a different %s = true", name)
		}
	}
}

func openCache(t *testing.T, dir string) *Cache {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func TestCachePersists(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir)
	if _, ok := c.Get("/missing"); ok {
		t.Fatalf("Get on an empty cache found a record")
	}
	b := c.NewBatch()
	want := sampleRecord()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			r := *want
			r.Inode = uint64(i)
			if err := b.Put(fmt.Sprintf("/dir/file-%03d", i), &r); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put: %v", err)
	}
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c = openCache(t, dir)
	defer c.Close()
	for i := range 100 {
		got, ok := c.Get(fmt.Sprintf("/dir/file-%03d", i))
		if !ok || got.Inode != uint64(i) || !reflect.DeepEqual(got.Extents, want.Extents) || got.Size != want.Size {
			t.Fatalf("record %d after reopen = %+v, %v", i, got, ok)
		}
	}
	if _, ok := c.Get("/dir"); ok {
		t.Errorf("Get of a prefix of a key found a record")
	}
}

func TestBatchCancel(t *testing.T) {
	c := openCache(t, t.TempDir())
	defer c.Close()
	b := c.NewBatch()
	if err := b.Put("/a", sampleRecord()); err != nil {
		t.Fatal(err)
	}
	b.Cancel()
	if _, ok := c.Get("/a"); ok {
		t.Errorf("a cancelled batch's record is visible")
	}
}

func TestCorruptRecordIsMissing(t *testing.T) {
	c := openCache(t, t.TempDir())
	defer c.Close()
	err := c.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("/bad"), []byte{0xff, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := c.Get("/bad"); ok || r != nil {
		t.Errorf("Get of a corrupt record = %+v, %v; want missing", r, ok)
	}
}

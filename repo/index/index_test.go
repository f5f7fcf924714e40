package index_test

import (
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
)

func id(n int) keys.ID {
	var x keys.ID
	binary.BigEndian.PutUint64(x[:], uint64(n)+1)
	x[31] = 0xee
	return x
}

func packID(n int) keys.ID {
	var x keys.ID
	binary.BigEndian.PutUint64(x[8:], uint64(n)+1)
	x[0] = 0xaa
	return x
}

// entries returns n entries with IDs first..first+n-1, laid out back to back.
func entries(first, n int, kind keys.Kind) []pack.Entry {
	var out []pack.Entry
	off := uint32(0)
	for i := range n {
		length := uint32(keys.Overhead + 10*i + 1)
		out = append(out, pack.Entry{Kind: kind, ID: id(first + i), Offset: off, Length: length})
		off += length
	}
	return out
}

func TestAddPackLookup(t *testing.T) {
	x := index.New()
	if x.Len() != 0 || x.Has(id(0)) || x.HasPack(packID(0)) || len(x.Packs()) != 0 {
		t.Fatalf("a new index is not empty")
	}
	p0 := entries(0, 10, keys.KindData)
	p1 := entries(10, 5, keys.KindTree)
	x.AddPack(packID(0), p0)
	x.AddPack(packID(1), p1)

	if x.Len() != 15 {
		t.Errorf("Len() = %d, want 15", x.Len())
	}
	for p, es := range map[keys.ID][]pack.Entry{packID(0): p0, packID(1): p1} {
		if !x.HasPack(p) {
			t.Errorf("HasPack(%s) = false", p.Short())
		}
		for _, e := range es {
			loc, ok := x.Lookup(e.ID)
			want := index.Location{Pack: p, Kind: e.Kind, Offset: e.Offset, Length: e.Length}
			if !ok || loc != want {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v", e.ID.Short(), loc, ok, want)
			}
			if !x.Has(e.ID) {
				t.Errorf("Has(%s) = false", e.ID.Short())
			}
		}
	}
	if _, ok := x.Lookup(id(100)); ok || x.Has(id(100)) {
		t.Errorf("an unknown blob is found")
	}
	if x.HasPack(packID(2)) {
		t.Errorf("HasPack of an unknown pack = true")
	}
	if got := x.Packs(); !slices.Equal(got, []keys.ID{packID(0), packID(1)}) {
		t.Errorf("Packs() = %v, want both packs in the order added", got)
	}

	// Each visits every blob once with its location, and stops early.
	seen := make(map[keys.ID]index.Location)
	x.Each(func(blob keys.ID, loc index.Location) bool {
		if _, dup := seen[blob]; dup {
			t.Errorf("Each visited %s twice", blob.Short())
		}
		seen[blob] = loc
		return true
	})
	if len(seen) != 15 {
		t.Errorf("Each visited %d blobs, want 15", len(seen))
	}
	for blob, loc := range seen {
		if want, _ := x.Lookup(blob); want != loc {
			t.Errorf("Each gave %+v for %s, Lookup %+v", loc, blob.Short(), want)
		}
	}
	calls := 0
	x.Each(func(keys.ID, index.Location) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Errorf("Each called fn %d times after it returned false on the third, want 3", calls)
	}

	// Packs() returns a copy.
	ps := x.Packs()
	ps[0] = keys.ID{}
	if x.Packs()[0] != packID(0) {
		t.Errorf("modifying the result of Packs changed the index")
	}
}

// Every copy of a blob is kept, in an order that does not depend on the
// order index files load in (they load in parallel): copies not known to be
// bad first, then by pack ID.
func TestEveryCopyKept(t *testing.T) {
	at0 := index.Location{Pack: packID(0), Kind: keys.KindData, Offset: 0, Length: 100}
	at1 := index.Location{Pack: packID(1), Kind: keys.KindData, Offset: 500, Length: 200}
	for _, order := range [][]int{{0, 1}, {1, 0}} {
		x := index.New()
		for _, p := range order {
			if p == 0 {
				x.AddPack(packID(0), []pack.Entry{{Kind: keys.KindData, ID: id(1), Offset: 0, Length: 100}})
				continue
			}
			// The same blob in another pack, and twice within one pack.
			x.AddPack(packID(1), []pack.Entry{
				{Kind: keys.KindData, ID: id(1), Offset: 500, Length: 200},
				{Kind: keys.KindData, ID: id(2), Offset: 700, Length: 100},
				{Kind: keys.KindData, ID: id(2), Offset: 800, Length: 100},
			})
		}
		// Adding a pack again changes nothing.
		x.AddPack(packID(0), []pack.Entry{{Kind: keys.KindData, ID: id(1), Offset: 9, Length: 99}})

		if got := x.Locations(id(1)); !reflect.DeepEqual(got, []index.Location{at0, at1}) {
			t.Errorf("order %v: Locations = %+v, want both copies, pack 0's first", order, got)
		}
		if loc, _ := x.Lookup(id(2)); loc.Offset != 700 || len(x.Locations(id(2))) != 1 {
			t.Errorf("order %v: duplicate within a pack: Lookup = %+v, %d copies; want offset 700, one copy", order, loc, len(x.Locations(id(2))))
		}
		if x.Len() != 2 || len(x.Packs()) != 2 {
			t.Errorf("Len %d, %d packs; want 2 blobs in 2 packs", x.Len(), len(x.Packs()))
		}
		var copies int
		x.EachCopy(func(keys.ID, index.Location) bool { copies++; return true })
		if copies != 3 {
			t.Errorf("EachCopy saw %d copies, want 3", copies)
		}
		// A bad copy goes last, and a blob whose every copy is bad has no
		// good location.
		if !x.MarkBad(id(1), packID(0)) || x.MarkBad(id(1), packID(0)) {
			t.Errorf("MarkBad: first call not news, or second call news")
		}
		if got := x.Locations(id(1)); !reflect.DeepEqual(got, []index.Location{at1, at0}) {
			t.Errorf("after MarkBad: Locations = %+v, want pack 1's copy first", got)
		}
		if loc, ok := x.Good(id(1)); !ok || loc != at1 {
			t.Errorf("Good = %+v, %v; want pack 1's copy", loc, ok)
		}
		x.MarkBad(id(1), packID(1))
		if _, ok := x.Good(id(1)); ok || !x.Has(id(1)) || !x.IsBad(id(1), packID(1)) {
			t.Errorf("every copy bad: Good ok, or Has false, or IsBad false")
		}
		if x.MarkBad(id(1), packID(5)) || x.MarkBad(id(9), packID(0)) {
			t.Errorf("MarkBad of a copy the index does not hold is news")
		}
		if end := x.PackEnd(packID(1)); end != 900 {
			t.Errorf("PackEnd = %d, want 900", end)
		}
	}
	x := index.New()
	x.AddPack(packID(1), []pack.Entry{{Kind: keys.KindData, ID: id(1), Offset: 0, Length: 100}})
	// A pack whose blobs are all known elsewhere is still a known pack.
	if !x.HasPack(packID(1)) {
		t.Errorf("HasPack of a pack holding only duplicates = false")
	}
	x.AddPack(packID(3), nil)
	if !x.HasPack(packID(3)) {
		t.Errorf("HasPack of an empty pack = false")
	}
}

func TestFileRoundTrip(t *testing.T) {
	f := &index.File{Packs: []index.PackBlobs{
		{Pack: packID(0), Entries: entries(0, 3, keys.KindData)},
		{Pack: packID(1), Entries: entries(3, 1, keys.KindTree)},
		{Pack: packID(2), Entries: []pack.Entry{
			{Kind: keys.KindData, ID: id(9), Offset: 1<<32 - 1 - keys.Overhead, Length: keys.Overhead},
			{Kind: keys.KindData, ID: id(10), Offset: 0, Length: 1<<32 - 1},
		}},
		{Pack: packID(3), Entries: []pack.Entry{}},
	}}
	b := f.Encode()
	got, err := index.DecodeFile(b)
	if err != nil {
		t.Fatalf("DecodeFile: %v", err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, f)
	}

	empty, err := index.DecodeFile((&index.File{}).Encode())
	if err != nil || len(empty.Packs) != 0 {
		t.Errorf("empty file round trip = %+v, %v", empty, err)
	}

	// Every strict prefix of a valid encoding is refused.
	for n := range len(b) {
		if _, err := index.DecodeFile(b[:n]); !errors.Is(err, index.ErrFormat) {
			t.Fatalf("prefix of %d of %d bytes: err = %v, want ErrFormat", n, len(b), err)
		}
	}
}

func TestDecodeFileRejects(t *testing.T) {
	p0, b0 := packID(0), id(0)
	file := func(kind keys.Kind, off, length uint64) []byte {
		b := []byte("AZX1\x01")
		b = append(b, p0[:]...)
		b = append(b, 1, byte(kind))
		b = append(b, b0[:]...)
		b = binary.AppendUvarint(b, off)
		return binary.AppendUvarint(b, length)
	}
	if _, err := index.DecodeFile(file(keys.KindData, 0, keys.Overhead)); err != nil {
		t.Fatalf("hand-encoded valid file: %v", err)
	}
	valid := (&index.File{Packs: []index.PackBlobs{{Pack: packID(0), Entries: entries(0, 2, keys.KindData)}}}).Encode()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("AZX2"), valid[4:]...)},
		{"trailing byte", append(valid[:len(valid):len(valid)], 0)},
		{"huge pack count", binary.AppendUvarint([]byte("AZX1"), 1<<40)},
		{"huge entry count", binary.AppendUvarint(append([]byte("AZX1\x01"), p0[:]...), 1<<40)},
		{"bad varint", []byte("AZX1\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
		{"index kind", file(keys.KindIndex, 0, keys.Overhead)},
		{"kind 0", file(0, 0, keys.Overhead)},
		{"length below overhead", file(keys.KindData, 0, keys.Overhead-1)},
		{"offset beyond 32 bits", file(keys.KindData, 1<<32, keys.Overhead)},
		{"length beyond 32 bits", file(keys.KindData, 0, 1<<32)},
	} {
		if f, err := index.DecodeFile(tc.b); !errors.Is(err, index.ErrFormat) {
			t.Errorf("%s: DecodeFile = %+v, %v; want ErrFormat", tc.name, f, err)
		}
	}
}

// TestConcurrent runs writers and readers together; run it with -race.
func TestConcurrent(t *testing.T) {
	x := index.New()
	const writers, packsEach, blobsEach = 4, 25, 20
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				blob := id((i*7 + r) % (writers * packsEach * blobsEach))
				if loc, ok := x.Lookup(blob); ok && !x.HasPack(loc.Pack) {
					t.Errorf("blob %s found in pack %s that HasPack does not know", blob.Short(), loc.Pack.Short())
					return
				}
				_ = x.Has(blob)
				_ = x.Len()
				_ = x.Packs()
				x.Each(func(keys.ID, index.Location) bool { return false })
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for p := range packsEach {
				n := w*packsEach + p
				x.AddPack(packID(n), entries(n*blobsEach, blobsEach, keys.KindData))
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	if x.Len() != writers*packsEach*blobsEach || len(x.Packs()) != writers*packsEach {
		t.Fatalf("after concurrent adds: %d blobs in %d packs, want %d in %d", x.Len(), len(x.Packs()), writers*packsEach*blobsEach, writers*packsEach)
	}
	for n := range writers * packsEach {
		for _, e := range entries(n*blobsEach, blobsEach, keys.KindData) {
			loc, ok := x.Lookup(e.ID)
			if !ok || loc.Pack != packID(n) || loc.Offset != e.Offset || loc.Length != e.Length {
				t.Fatalf("%s: Lookup = %+v, %v; want pack %s", e.ID.Short(), loc, ok, packID(n).Short())
			}
		}
	}
}

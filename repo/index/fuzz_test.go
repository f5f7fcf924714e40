package index_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
)

func FuzzDecodeFile(f *testing.F) {
	f.Add((&index.File{}).Encode())
	f.Add((&index.File{Packs: []index.PackBlobs{{Pack: packID(0), Entries: entries(0, 3, keys.KindData)}}}).Encode())
	f.Add((&index.File{Packs: []index.PackBlobs{
		{Pack: packID(1), Entries: entries(0, 1, keys.KindTree)},
		{Pack: packID(2), Entries: []pack.Entry{{Kind: keys.KindData, ID: id(5), Offset: 1<<32 - 1, Length: 1<<32 - 1}}},
		{Pack: packID(3)},
	}}).Encode())
	f.Add([]byte("AZX1\xff\xff\xff\xff\x0f"))
	f.Add([]byte("AZX2"))

	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := index.DecodeFile(b)
		if err != nil {
			if !errors.Is(err, index.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		n := 0
		for _, p := range file.Packs {
			for _, e := range p.Entries {
				n++
				if (e.Kind != keys.KindData && e.Kind != keys.KindTree) || e.Length < keys.Overhead {
					t.Fatalf("accepted entry %+v", e)
				}
			}
		}
		if 33*len(file.Packs)+35*n > len(b) {
			t.Fatalf("%d packs and %d entries from %d bytes", len(file.Packs), n, len(b))
		}
		back, err := index.DecodeFile(file.Encode())
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, file) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", file, back)
		}
	})
}

func FuzzDecodeDamageRecord(f *testing.F) {
	f.Add((&index.DamageRecord{}).Encode())
	f.Add((&index.DamageRecord{Bad: []index.BadCopy{{Blob: id(1), Pack: packID(0)}, {Pack: packID(2)}}}).Encode())
	f.Add([]byte("AZD1\xff\xff\xff\xff\x0f"))
	f.Add([]byte("AZD1\x01short"))

	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := index.DecodeDamageRecord(b)
		if err != nil {
			if !errors.Is(err, index.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if 64*len(r.Bad) > len(b) {
			t.Fatalf("%d copies from %d bytes", len(r.Bad), len(b))
		}
		back, err := index.DecodeDamageRecord(r.Encode())
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, r, back)
		}
		x := index.New()
		x.AddPack(packID(0), entries(0, 3, keys.KindData))
		r.Apply(x) // must not panic on any record
	})
}

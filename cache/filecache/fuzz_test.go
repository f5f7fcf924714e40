package filecache

import (
	"errors"
	"reflect"
	"testing"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encode(sampleRecord()))
	f.Add(encode(&Record{}))
	f.Add(encode(&Record{Size: 1, MTime: -1, CTime: 1, Inode: 2, Device: 3, Extents: []Extent{{Offset: 0, Length: 1, ID: cid(9)}}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x80})

	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			if !errors.Is(err, errFormat) || r != nil {
				t.Fatalf("decode = %v, %v; want nil, errFormat", r, err)
			}
			return
		}
		if 34*len(r.Extents) > len(b) {
			t.Fatalf("%d extents from %d bytes", len(r.Extents), len(b))
		}
		back, err := decode(encode(r))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, back)
		}
	})
}

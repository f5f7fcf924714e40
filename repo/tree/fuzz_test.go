package tree_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/azfs/azfs/repo/tree"
)

func FuzzDecodePart(f *testing.F) {
	for _, p := range []*tree.Part{
		{},
		{Nodes: []tree.Node{{Name: "a", Type: tree.File}}},
		{Nodes: fullPart().Nodes[:3]},
		fullPart(),
	} {
		b, err := p.Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("AZT2\x01\x01.\x01"))
	f.Add([]byte("AZT2\xff\xff\xff\xff\x0f"))
	f.Add([]byte("AZT1\x01\x01a\x01\x00\x00\x00\x00\x01\x01\x01\x00\x00\x00\x00")) // an AZT1 part: times in nanoseconds

	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tree.DecodePart(b)
		if err != nil {
			if !errors.Is(err, tree.ErrFormat) || p != nil {
				t.Fatalf("DecodePart = %v, %v; want nil and an error wrapping ErrFormat", p, err)
			}
			return
		}
		for i, n := range p.Nodes {
			if n.Name == "" || n.Name == "." || n.Name == ".." {
				t.Fatalf("node %d has name %q", i, n.Name)
			}
			if i > 0 && p.Nodes[i-1].Name >= n.Name {
				t.Fatalf("nodes %d and %d not sorted", i-1, i)
			}
			var end uint64
			for _, e := range n.Extents {
				if e.Offset < end || e.Length == 0 || e.Offset+uint64(e.Length) > n.Size {
					t.Fatalf("node %q: extent %d+%d out of order or beyond size %d", n.Name, e.Offset, e.Length, n.Size)
				}
				end = e.Offset + uint64(e.Length)
			}
			if got := n.FindExtent(n.Size); got != len(n.Extents) {
				t.Fatalf("node %q: FindExtent(Size) = %d, want %d", n.Name, got, len(n.Extents))
			}
		}
		enc, err := p.Encode(nil)
		if err != nil {
			t.Fatalf("Encode of a decoded part: %v", err)
		}
		back, err := tree.DecodePart(enc)
		if err != nil {
			t.Fatalf("re-encoded part does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(back), normalize(p)) {
			t.Fatalf("round trip changed the part:\n%+v\n%+v", p.Nodes, back.Nodes)
		}
	})
}

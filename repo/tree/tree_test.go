package tree_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/tree"
)

func cid(n byte) keys.ID {
	var id keys.ID
	for i := range id {
		id[i] = n ^ byte(i)
	}
	return id
}

// fullPart has every node type, and every field set somewhere.
func fullPart() *tree.Part {
	return &tree.Part{Nodes: []tree.Node{
		{Name: "a\xff\xfeb", Type: tree.File, Mode: 0o7777, UID: math.MaxUint32, GID: 7,
			User: "us\xc3er\xff", Group: "gr\x00oup", MTime: tree.Time{Sec: -1, Nsec: 999_999_999}, ATime: tree.Time{Sec: math.MinInt64}, CTime: tree.Time{Sec: math.MaxInt64, Nsec: 999_999_999},
			Size: 10 << 20, Inode: math.MaxUint64, Device: 1 << 40, Links: 3,
			Xattrs: []tree.Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}, {Name: "user.empty", Value: []byte{}}, {Name: "security.\xff", Value: bytes.Repeat([]byte{9}, 300)}},
			Extents: []tree.Extent{
				{Offset: 0, Length: 1 << 20, ID: cid(1)},
				{Offset: 1 << 20, Length: 100, ID: cid(2)},     // adjacent
				{Offset: 5 << 20, Length: 4 << 20, ID: cid(3)}, // after a hole
				{Offset: 10<<20 - 1, Length: 1, ID: cid(1)},    // repeated chunk, ends at Size
			}},
		{Name: "blockdev", Type: tree.BlockDev, Mode: 0o660, Rdev: 0x0803, MTime: tree.Time{Nsec: 1}},
		{Name: "chardev", Type: tree.CharDev, Mode: 0o666, Rdev: math.MaxUint64},
		{Name: "dir", Type: tree.Dir, Mode: 0o1777, MTime: tree.Time{Sec: -2_208_988_800}, Links: 2, // 1900-01-01
			Parts: []tree.PartRef{{First: "", ID: cid(4)}, {First: "m", ID: cid(5)}, {First: "z\xff", ID: cid(6)}}, Entries: 2500},
		{Name: "empty-dir", Type: tree.Dir, Mode: 0o755},
		{Name: "fifo", Type: tree.FIFO, Mode: 0o600},
		{Name: "grown", Type: tree.File, Mode: 0o644, Size: 1, Changed: true, MTime: tree.Time{Sec: 16_725_225_600}, // 2500-01-01
			Extents: []tree.Extent{{Offset: 0, Length: 1, ID: cid(9)}}},
		{Name: "link", Type: tree.Symlink, Mode: 0o777, Target: "../a\xff\xfeb/../x", Size: 13},
		{Name: "sock", Type: tree.Socket, Mode: 0o755, Xattrs: []tree.Xattr{{Name: "user.s", Value: []byte("v")}}},
		{Name: "sparse", Type: tree.File, Mode: 0o644, Size: 64 << 20,
			Extents: []tree.Extent{{Offset: 32 << 20, Length: 1 << 20, ID: cid(7)}}},
		{Name: "zero-length", Type: tree.File, Mode: 0o400},
		{Name: "\u00e9t\u00e9", Type: tree.File, Size: 1, Extents: []tree.Extent{{Offset: 0, Length: 1, ID: cid(8)}}},
	}}
}

// normalize maps empty slices to nil: the encoding does not tell them apart.
func normalize(p *tree.Part) *tree.Part {
	out := &tree.Part{}
	for _, n := range p.Nodes {
		if len(n.Xattrs) == 0 {
			n.Xattrs = nil
		} else {
			xs := make([]tree.Xattr, len(n.Xattrs))
			for i, x := range n.Xattrs {
				xs[i] = tree.Xattr{Name: x.Name, Value: append([]byte{}, x.Value...)}
			}
			n.Xattrs = xs
		}
		if len(n.Extents) == 0 {
			n.Extents = nil
		}
		if len(n.Parts) == 0 {
			n.Parts = nil
		}
		out.Nodes = append(out.Nodes, n)
	}
	if len(out.Nodes) == 0 {
		out.Nodes = nil
	}
	return out
}

func mustEncode(t *testing.T, p *tree.Part) []byte {
	t.Helper()
	b, err := p.Encode(nil)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func TestPartRoundTrip(t *testing.T) {
	p := fullPart()
	b := mustEncode(t, p)
	got, err := tree.DecodePart(b)
	if err != nil {
		t.Fatalf("DecodePart: %v", err)
	}
	if !reflect.DeepEqual(normalize(got), normalize(p)) {
		for i := range p.Nodes {
			if i < len(got.Nodes) && !reflect.DeepEqual(normalize(&tree.Part{Nodes: got.Nodes[i : i+1]}), normalize(&tree.Part{Nodes: p.Nodes[i : i+1]})) {
				t.Errorf("node %q:\n got %+v\nwant %+v", p.Nodes[i].Name, got.Nodes[i], p.Nodes[i])
			}
		}
		t.Fatalf("round trip changed the part")
	}
	// Encoding is deterministic and appends to dst.
	b2, err := got.Encode([]byte("xy"))
	if err != nil || !bytes.Equal(b2[2:], b) || string(b2[:2]) != "xy" {
		t.Errorf("re-encoding the decoded part gave different bytes (%v)", err)
	}
	// Every strict prefix is refused.
	for n := range len(b) {
		if _, err := tree.DecodePart(b[:n]); !errors.Is(err, tree.ErrFormat) {
			t.Fatalf("prefix of %d of %d bytes: err = %v, want ErrFormat", n, len(b), err)
		}
	}
}

// TestMinimalNodesRoundTrip: nodes with every number zero have the shortest
// encoding the format allows; Decode must take what Encode makes.
func TestMinimalNodesRoundTrip(t *testing.T) {
	for _, p := range []*tree.Part{
		{},
		{Nodes: []tree.Node{{Name: "a", Type: tree.File}}},
		{Nodes: []tree.Node{{Name: "a", Type: tree.File}, {Name: "b", Type: tree.Dir}, {Name: "c", Type: tree.FIFO}}},
		{Nodes: []tree.Node{{Name: "x", Type: tree.Symlink, Target: "y", Size: 1}}},
	} {
		b := mustEncode(t, p)
		got, err := tree.DecodePart(b)
		if err != nil {
			t.Errorf("%d nodes in %d bytes: DecodePart: %v", len(p.Nodes), len(b), err)
			continue
		}
		if !reflect.DeepEqual(normalize(got), normalize(p)) {
			t.Errorf("%d minimal nodes: round trip = %+v", len(p.Nodes), got.Nodes)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, nodes := range map[string][]tree.Node{
		"unsorted":            {{Name: "b", Type: tree.File}, {Name: "a", Type: tree.File}},
		"duplicate":           {{Name: "a", Type: tree.File}, {Name: "a", Type: tree.Dir}},
		"duplicate not first": {{Name: "a", Type: tree.File}, {Name: "b", Type: tree.File}, {Name: "b", Type: tree.File}},
		"bytewise unsorted":   {{Name: "\xff", Type: tree.File}, {Name: "z", Type: tree.File}},
	} {
		if b, err := (&tree.Part{Nodes: nodes}).Encode(nil); !errors.Is(err, tree.ErrFormat) || b != nil {
			t.Errorf("%s: Encode = %d bytes, %v; want ErrFormat", name, len(b), err)
		}
	}
}

// encodeNodes encodes nodes one by one, bypassing Encode's order check, so
// that Decode's own checks can be exercised.
func encodeNodes(t *testing.T, nodes ...tree.Node) []byte {
	t.Helper()
	b := []byte("AZT2")
	b = binary.AppendUvarint(b, uint64(len(nodes)))
	for _, n := range nodes {
		one := mustEncode(t, &tree.Part{Nodes: []tree.Node{n}})
		b = append(b, one[5:]...) // magic and a one-byte count
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	file := func(name string) tree.Node {
		return tree.Node{Name: name, Type: tree.File, MTime: tree.Time{Sec: 1e9}, ATime: tree.Time{Sec: 1e9}, CTime: tree.Time{Sec: 1e9}, Inode: 1 << 30}
	}
	withExtents := func(size uint64, es ...tree.Extent) tree.Node {
		n := file("f")
		n.Size = size
		n.Extents = es
		return n
	}
	valid := encodeNodes(t, file("a"), file("b"))
	if _, err := tree.DecodePart(valid); err != nil {
		t.Fatalf("valid hand-made part: %v", err)
	}
	typ := func(ty tree.Type) tree.Node { n := file("t"); n.Type = ty; return n }
	mode := file("m")
	mode.Mode = 0o10000
	dirWithExtents := withExtents(100, tree.Extent{Offset: 0, Length: 10, ID: cid(1)})
	dirWithExtents.Type = tree.Dir
	fileWithParts := file("p")
	fileWithParts.Parts = []tree.PartRef{{First: "a", ID: cid(1)}}
	symlinkWithEntries := file("s")
	symlinkWithEntries.Type = tree.Symlink
	symlinkWithEntries.Entries = 3
	unsortedParts := tree.Node{Name: "d", Type: tree.Dir, Parts: []tree.PartRef{{First: "b", ID: cid(1)}, {First: "a", ID: cid(2)}}}
	dupParts := tree.Node{Name: "d", Type: tree.Dir, Parts: []tree.PartRef{{First: "a", ID: cid(1)}, {First: "a", ID: cid(2)}}}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty input", nil},
		{"bad magic", append([]byte("AZT3"), valid[4:]...)},
		{"no count", []byte("AZT2")},
		{"count beyond input", append([]byte("AZT2\x03"), valid[5:]...)},
		{"huge count", binary.AppendUvarint([]byte("AZT2"), 1<<60)},
		{"nanoseconds of a second", timeWithNanos(1e9)},
		{"nanoseconds beyond 32 bits", timeWithNanos(1 << 40)},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"name empty", encodeNodes(t, file(""))},
		{"name .", encodeNodes(t, file("."))},
		{"name ..", encodeNodes(t, file(".."))},
		{"name a/b", encodeNodes(t, file("a/b"))},
		{"name /", encodeNodes(t, file("/"))},
		{"name a\\x00b", encodeNodes(t, file("a\x00b"))},
		{"names unsorted", encodeNodes(t, file("b"), file("a"))},
		{"names duplicate", encodeNodes(t, file("a"), file("a"))},
		{"type 0", encodeNodes(t, typ(0))},
		{"type 8", encodeNodes(t, typ(8))},
		{"mode beyond 07777", encodeNodes(t, mode)},
		{"extent beyond size", encodeNodes(t, withExtents(100, tree.Extent{Offset: 50, Length: 51, ID: cid(1)}))},
		{"extent after size", encodeNodes(t, withExtents(100, tree.Extent{Offset: 200, Length: 1, ID: cid(1)}))},
		{"extents with zero size", encodeNodes(t, withExtents(0, tree.Extent{Offset: 0, Length: 1, ID: cid(1)}))},
		{"overlapping extents", encodeNodes(t, withExtents(100,
			tree.Extent{Offset: 0, Length: 20, ID: cid(1)}, tree.Extent{Offset: 10, Length: 20, ID: cid(2)}))},
		{"extent inside previous", encodeNodes(t, withExtents(100,
			tree.Extent{Offset: 10, Length: 50, ID: cid(1)}, tree.Extent{Offset: 0, Length: 5, ID: cid(2)}))},
		{"zero-length extent", encodeNodes(t, withExtents(100, tree.Extent{Offset: 0, Length: 0, ID: cid(1)}))},
		{"extents on a dir", encodeNodes(t, dirWithExtents)},
		{"parts on a file", encodeNodes(t, fileWithParts)},
		{"entries on a symlink", encodeNodes(t, symlinkWithEntries)},
		{"parts unsorted", encodeNodes(t, unsortedParts)},
		{"parts duplicate", encodeNodes(t, dupParts)},
	} {
		if p, err := tree.DecodePart(tc.b); !errors.Is(err, tree.ErrFormat) || p != nil {
			t.Errorf("%s: DecodePart = %v, %v; want nil, ErrFormat", tc.name, p, err)
		}
	}

	// Unknown flag bits: flip a bit beyond the known ones in a valid node.
	one := mustEncode(t, &tree.Part{Nodes: []tree.Node{{Name: "a", Type: tree.File}}})
	flagsAt := len("AZT2") + 1 + 2 + 1 // magic, count, name, type
	if one[flagsAt] != 0 {
		t.Fatalf("test assumes flags 0 at byte %d, found %#x", flagsAt, one[flagsAt])
	}
	one[flagsAt] = 0x80
	one = append(one[:flagsAt+1], append([]byte{1}, one[flagsAt+1:]...)...) // a two-byte varint: 0x80 0x01
	if _, err := tree.DecodePart(one); !errors.Is(err, tree.ErrFormat) {
		t.Errorf("unknown flag: err = %v, want ErrFormat", err)
	}
	// The changed-during-backup flag (0x40) is new in AZT2: an AZT1 part
	// carrying it is malformed.
	v1 := v1Part(0x40, 0, 0, 0)
	if _, err := tree.DecodePart(v1); !errors.Is(err, tree.ErrFormat) {
		t.Errorf("AZT1 part with flag 0x40: err = %v, want ErrFormat", err)
	}
}

// timeWithNanos is an AZT2 part of one file whose mtime has nsec
// nanoseconds.
func timeWithNanos(nsec uint64) []byte {
	b := []byte("AZT2\x01\x01a\x01\x00\x00\x00\x00") // count, name, type, flags, mode, uid, gid
	b = append(b, 0)                                 // mtime seconds
	b = binary.AppendUvarint(b, nsec)                // mtime nanoseconds
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)            // atime, ctime, size, inode, device, links
	return b
}

// v1Part is an "AZT1" part (as written before times were seconds and
// nanoseconds) of one file named "a" with flags and its times in
// nanoseconds.
func v1Part(flags uint64, mtime, atime, ctime int64) []byte {
	b := []byte("AZT1\x01\x01a\x01")
	b = binary.AppendUvarint(b, flags)
	b = append(b, 0, 0, 0) // mode, uid, gid
	for _, ns := range []int64{mtime, atime, ctime} {
		b = binary.AppendVarint(b, ns)
	}
	return append(b, 0, 0, 0, 0) // size, inode, device, links
}

// TestDecodeV1: parts written before AZT2 keep decoding, their nanosecond
// times read as seconds and nanoseconds (negative ones included).
func TestDecodeV1(t *testing.T) {
	p, err := tree.DecodePart(v1Part(0, 1_700_000_000_123_456_789, -1, math.MinInt64))
	if err != nil {
		t.Fatalf("DecodePart(AZT1): %v", err)
	}
	n := p.Nodes[0]
	want := []tree.Time{{Sec: 1_700_000_000, Nsec: 123_456_789}, {Sec: -1, Nsec: 999_999_999}, {Sec: -9_223_372_037, Nsec: 145_224_192}}
	if got := []tree.Time{n.MTime, n.ATime, n.CTime}; !reflect.DeepEqual(got, want) {
		t.Errorf("times = %+v, want %+v", got, want)
	}
	if n.Name != "a" || n.Type != tree.File || n.Changed {
		t.Errorf("node = %+v", n)
	}
	// Re-encoding writes AZT2, which decodes to the same node.
	b := mustEncode(t, p)
	if !bytes.HasPrefix(b, []byte("AZT2")) {
		t.Errorf("Encode wrote magic %q, want AZT2", b[:4])
	}
	back, err := tree.DecodePart(b)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("AZT1 -> AZT2 round trip = %+v, %v; want %+v", back, err, p)
	}
}

// TestTimesBeyondNanoseconds: times int64 nanoseconds cannot hold (after
// 2262, before 1678) round-trip, as does every UnixTime normalization.
func TestTimesBeyondNanoseconds(t *testing.T) {
	for _, tc := range []struct {
		when string
		t    time.Time
	}{
		{"2500-01-01", time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1900-01-01", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1600-06-30 .5", time.Date(1600, 6, 30, 12, 0, 0, 500_000_000, time.UTC)},
		{"1970-01-01 .5", time.Date(1970, 1, 1, 0, 0, 0, 500_000_000, time.UTC)},
		{"1969-12-31 23:59:59.999999999", time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
	} {
		tt := tree.UnixTime(tc.t.Unix(), int64(tc.t.Nanosecond()))
		p := &tree.Part{Nodes: []tree.Node{{Name: "f", Type: tree.File, MTime: tt, ATime: tt, CTime: tt}}}
		got, err := tree.DecodePart(mustEncode(t, p))
		if err != nil {
			t.Fatalf("%s: %v", tc.when, err)
		}
		if n := got.Nodes[0]; n.MTime != tt || !n.MTime.Time().Equal(tc.t) {
			t.Errorf("%s: mtime came back as %v (%+v), want %v", tc.when, n.MTime.Time().UTC(), n.MTime, tc.t)
		}
	}
	for _, tc := range []struct {
		sec, nsec int64
		want      tree.Time
	}{
		{0, -1, tree.Time{Sec: -1, Nsec: 999_999_999}},
		{5, 2_500_000_000, tree.Time{Sec: 7, Nsec: 500_000_000}},
		{0, -1_000_000_000, tree.Time{Sec: -1}},
		{-3, 1, tree.Time{Sec: -3, Nsec: 1}},
	} {
		if got := tree.UnixTime(tc.sec, tc.nsec); got != tc.want {
			t.Errorf("UnixTime(%d, %d) = %+v, want %+v", tc.sec, tc.nsec, got, tc.want)
		}
	}
}

func TestFindExtent(t *testing.T) {
	n := &tree.Node{Size: 1000, Extents: []tree.Extent{
		{Offset: 0, Length: 100},
		{Offset: 100, Length: 100},
		{Offset: 500, Length: 100}, // hole [200, 500) before it
		{Offset: 900, Length: 50},  // hole [600, 900); tail hole [950, 1000)
	}}
	for _, tc := range []struct {
		off  uint64
		want int
	}{
		{0, 0}, {99, 0}, {100, 1}, {199, 1},
		{200, 2}, {300, 2}, {499, 2}, {500, 2}, {599, 2},
		{600, 3}, {899, 3}, {949, 3},
		{950, 4}, {999, 4}, {1000, 4}, {math.MaxUint64, 4},
	} {
		if got := n.FindExtent(tc.off); got != tc.want {
			t.Errorf("FindExtent(%d) = %d, want %d", tc.off, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name    string
		extents []tree.Extent
		off     uint64
		want    int
	}{
		{"no extents", nil, 0, 0},
		{"no extents, far", nil, 1 << 40, 0},
		{"leading hole", []tree.Extent{{Offset: 10, Length: 5}}, 0, 0},
		{"one extent, inside", []tree.Extent{{Offset: 10, Length: 5}}, 14, 0},
		{"one extent, at end", []tree.Extent{{Offset: 10, Length: 5}}, 15, 1},
	} {
		n := &tree.Node{Extents: tc.extents}
		if got := n.FindExtent(tc.off); got != tc.want {
			t.Errorf("%s: FindExtent(%d) = %d, want %d", tc.name, tc.off, got, tc.want)
		}
	}
}

func TestPartFor(t *testing.T) {
	n := &tree.Node{Type: tree.Dir, Parts: []tree.PartRef{{First: "b"}, {First: "f"}, {First: "m"}}}
	for _, tc := range []struct {
		name string
		want int
	}{
		{"", 0}, {"a", 0}, {"b", 0}, {"c", 0}, {"e\xff", 0},
		{"f", 1}, {"g", 1}, {"l", 1},
		{"m", 2}, {"m\x00", 2}, {"z", 2}, {"\xff", 2},
	} {
		if got := n.PartFor(tc.name); got != tc.want {
			t.Errorf("PartFor(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
	one := &tree.Node{Type: tree.Dir, Parts: []tree.PartRef{{First: "k"}}}
	for _, name := range []string{"a", "k", "z"} {
		if got := one.PartFor(name); got != 0 {
			t.Errorf("one part: PartFor(%q) = %d, want 0", name, got)
		}
	}
	// With no parts the result is 0, which callers must bounds-check.
	if got := (&tree.Node{Type: tree.Dir}).PartFor("a"); got != 0 {
		t.Errorf("no parts: PartFor = %d, want 0", got)
	}
}

func TestFind(t *testing.T) {
	p := fullPart()
	for _, n := range p.Nodes {
		got := p.Find(n.Name)
		if got == nil || got.Name != n.Name {
			t.Errorf("Find(%q) = %v", n.Name, got)
		}
	}
	for _, name := range []string{"", "a", "zzz", "dir/"} {
		if got := p.Find(name); got != nil {
			t.Errorf("Find(%q) = %q, want nil", name, got.Name)
		}
	}
	if got := (&tree.Part{}).Find("a"); got != nil {
		t.Errorf("Find in an empty part = %v", got)
	}
	// Find returns a pointer into the part.
	p.Find("fifo").Mode = 0o111
	if p.Find("fifo").Mode != 0o111 {
		t.Errorf("Find does not return a pointer into the part")
	}
}

func TestFileMode(t *testing.T) {
	for _, tc := range []struct {
		typ  tree.Type
		mode uint32
		want fs.FileMode
	}{
		{tree.File, 0o644, 0o644},
		{tree.File, 0o4755, fs.ModeSetuid | 0o755},
		{tree.File, 0o2755, fs.ModeSetgid | 0o755},
		{tree.Dir, 0o1777, fs.ModeDir | fs.ModeSticky | 0o777},
		{tree.Symlink, 0o777, fs.ModeSymlink | 0o777},
		{tree.CharDev, 0o620, fs.ModeDevice | fs.ModeCharDevice | 0o620},
		{tree.BlockDev, 0o660, fs.ModeDevice | 0o660},
		{tree.FIFO, 0o600, fs.ModeNamedPipe | 0o600},
		{tree.Socket, 0o755, fs.ModeSocket | 0o755},
	} {
		n := &tree.Node{Type: tc.typ, Mode: tc.mode}
		if got := n.FileMode(); got != tc.want {
			t.Errorf("%s %o: FileMode() = %v, want %v", tc.typ, tc.mode, got, tc.want)
		}
	}
}

func TestStoredBytes(t *testing.T) {
	p := fullPart()
	for name, want := range map[string]uint64{"a\xff\xfeb": 1<<20 + 100 + 4<<20 + 1, "sparse": 1 << 20, "zero-length": 0, "dir": 0} {
		if got := p.Find(name).StoredBytes(); got != want {
			t.Errorf("%q: StoredBytes() = %d, want %d", name, got, want)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"type(0)", "file", "dir", "symlink", "chardev", "blockdev", "fifo", "socket", "type(8)"}
	for i, w := range want {
		if got := tree.Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
}

// TestDecodeAllocsPerNode: decoding a part of files with one owner and a
// few extents each allocates about one object per node (its name): owner
// names are shared between nodes, extents allocated a block at a time, and
// names checked without a copy.
func TestDecodeAllocsPerNode(t *testing.T) {
	p := &tree.Part{}
	for i := range 1000 {
		// Names longer than 32 bytes, as many are: converting one to
		// bytes would allocate.
		n := tree.Node{Name: "a_source_file_with_a_long_name_" + string(rune('a'+i/100)) + string(rune('a'+i/10%10)) + string(rune('a'+i%10)) + ".go",
			Type: tree.File, Mode: 0o644, User: "root", Group: "staff", Size: 3 << 20, Links: 1}
		for j := range 1 + i%3 {
			n.Extents = append(n.Extents, tree.Extent{Offset: uint64(j) << 20, Length: 1 << 20, ID: cid(byte(i + j))})
		}
		p.Nodes = append(p.Nodes, n)
	}
	b, err := p.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got *tree.Part
	allocs := testing.AllocsPerRun(10, func() {
		if got, err = tree.DecodePart(b); err != nil {
			t.Fatal(err)
		}
	}) / float64(len(p.Nodes))
	if !reflect.DeepEqual(normalize(got), normalize(p)) {
		t.Fatal("decoded part differs")
	}
	if allocs > 1.1 {
		t.Errorf("%.2f allocations per node, want at most 1.1", allocs)
	}
	// Each node's extents have no room beyond their own: appending to
	// one never writes into another's.
	for _, n := range got.Nodes {
		if cap(n.Extents) != len(n.Extents) {
			t.Fatalf("%q: %d extents with room for %d", n.Name, len(n.Extents), cap(n.Extents))
		}
	}
	before := got.Nodes[1].Extents[0]
	_ = append(got.Nodes[0].Extents, tree.Extent{Offset: 9 << 20, Length: 1, ID: cid(99)})
	if got.Nodes[1].Extents[0] != before {
		t.Fatal("appending to a node's extents changed the next node's")
	}
}

package pack_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

// TestReserve: blobs sealed into the room Reserve returns make the same
// pack, byte for byte, as blobs added with Add.
func TestReserve(t *testing.T) {
	ks := testKeys()
	s := ks.NewSealer()
	added, reserved := pack.NewWriter(), pack.NewWriter()
	for i, n := range []int{0, 1, 100, 4096, 200 << 10, 1 << 20} {
		plain := testfiles.RandomBytes(n, uint64(i))
		id := ks.ID(keys.KindData, plain)
		payload := pack.EncodePayload(nil, plain, pack.CompressFast)
		added.Add(keys.KindData, id, s.Seal(nil, keys.KindData, id, payload))
		room := reserved.Reserve(keys.KindData, id, len(payload)+keys.Overhead)
		if len(room) != len(payload)+keys.Overhead || cap(room) != len(room) {
			t.Fatalf("blob %d: room of %d bytes (capacity %d), want %d", i, len(room), cap(room), len(payload)+keys.Overhead)
		}
		s.Seal(room[:0], keys.KindData, id, payload)
	}
	name1, b1, e1 := added.Finish(ks, ks.NewIndexSealer())
	name2, b2, e2 := reserved.Finish(ks, ks.NewIndexSealer())
	if name1 != name2 || !bytes.Equal(b1, b2) || !reflect.DeepEqual(e1, e2) {
		t.Fatalf("packs differ: added %s (%d bytes), reserved %s (%d bytes)", name1.Short(), len(b1), name2.Short(), len(b2))
	}
}

// TestReserveFull: Reserve refuses a blob that, with the trailer that
// would list it, does not fit beside the blobs a pack holds, and leaves
// the pack as it was; Finish then never moves the buffer that blobs were
// sealed into, however many blobs it lists; an empty pack takes a blob
// larger than its buffer.
func TestReserveFull(t *testing.T) {
	ks := testKeys()
	s := ks.NewSealer()
	w := pack.NewWriter()
	var first []byte
	for i := 0; ; i++ {
		id := keys.ID{byte(i), byte(i >> 8), byte(i >> 16)}
		payload := make([]byte, 200)
		room := w.Reserve(keys.KindTree, id, len(payload)+keys.Overhead)
		if room == nil {
			break
		}
		if first == nil {
			first = room
		}
		s.Seal(room[:0], keys.KindTree, id, payload)
	}
	size, count := w.Size(), w.Count()
	if size < pack.TargetSize*3/4 {
		t.Fatalf("Reserve refused a blob at %d bytes, well below the target size %d", size, pack.TargetSize)
	}
	if w.Reserve(keys.KindTree, keys.ID{0xff}, 300) != nil || w.Size() != size || w.Count() != count {
		t.Fatalf("a refused Reserve changed the pack: %d blobs, %d bytes; want %d, %d", w.Count(), w.Size(), count, size)
	}
	_, b, entries := w.Finish(ks, ks.NewIndexSealer())
	if &b[0] != &first[0] {
		t.Fatalf("Finish moved the buffer of a pack of %d blobs", len(entries))
	}
	f, err := pack.DecodeFooter(b[len(b)-pack.FooterLen:], int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pack.OpenTrailer(ks.NewIndexSealer(), f, b[len(b)-pack.FooterLen-int(f.TrailerLen):len(b)-pack.FooterLen], int64(len(b)))
	if err != nil || len(got) != count {
		t.Fatalf("trailer of the full pack: %d entries, %v; want %d", len(got), err, count)
	}

	w.Reset()
	big := pack.TargetSize + 4<<20
	if room := w.Reserve(keys.KindData, keys.ID{1}, big); len(room) != big {
		t.Fatalf("an empty pack gave %d bytes of room for a blob of %d", len(room), big)
	}
}

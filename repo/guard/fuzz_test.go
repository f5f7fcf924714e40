package guard_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/guard"
)

// FuzzDecodeMark: mark objects are read from storage that anyone who can
// write it controls (a machine with a backup SAS can create them).
func FuzzDecodeMark(f *testing.F) {
	owner, err := keys.NewOwnerKeys("vault")
	if err != nil {
		f.Fatal(err)
	}
	m := guard.Mark{Area: "0123456789abcdef0123456789abcdef", ID: guard.MarkID{1, 2}, Created: time.Unix(1e9, 5), Margin: time.Hour,
		Packs: []keys.ID{{1}, {2}, {3}}}
	f.Add(m.Encode(owner))
	f.Add((&guard.Mark{Area: "a", Created: time.Unix(1, 0)}).Encode(owner))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := guard.DecodeMark(b)
		if err != nil {
			if !errors.Is(err, guard.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if len(m.Packs) > len(b)/32 {
			t.Fatalf("%d packs from %d bytes", len(m.Packs), len(b))
		}
		for i := 1; i < len(m.Packs); i++ {
			if bytes.Compare(m.Packs[i-1][:], m.Packs[i][:]) >= 0 {
				t.Fatal("packs out of order")
			}
		}
		back, err := guard.DecodeMark(m.Encode(owner))
		if err != nil || back.Area != m.Area || back.ID != m.ID || !back.Created.Equal(m.Created) || back.Margin != m.Margin || len(back.Packs) != len(m.Packs) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, m)
		}
	})
}

func FuzzDecodeKeep(f *testing.F) {
	f.Add(guard.EncodeKeep(guard.MarkID{9}, []keys.ID{{1}, {2}}))
	f.Add(guard.EncodeKeep(guard.MarkID{}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, packs, err := guard.DecodeKeep(b)
		if err != nil {
			if !errors.Is(err, guard.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		id2, packs2, err := guard.DecodeKeep(guard.EncodeKeep(id, packs))
		if err != nil || id2 != id || len(packs2) != len(packs) {
			t.Fatalf("round trip: %v, %d packs, %v", id2, len(packs2), err)
		}
		for i := range packs {
			if packs[i] != packs2[i] {
				t.Fatal("round trip changed a pack")
			}
		}
	})
}

func TestMarkSignature(t *testing.T) {
	owner, err := keys.NewOwnerKeys("vault")
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.NewOwnerKeys("vault")
	if err != nil {
		t.Fatal(err)
	}
	m := guard.Mark{Area: "area", ID: guard.MarkID{7}, Created: time.Unix(1e9, 0), Margin: time.Hour, Packs: []keys.ID{{1}, {2}}}
	b := m.Encode(owner)
	if got, err := guard.VerifyMark(b, owner.Public(), "area", m.ID); err != nil || got.Margin != time.Hour || len(got.Packs) != 2 {
		t.Fatalf("VerifyMark = %+v, %v", got, err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		pub  keys.OwnerPublic
		area string
		id   guard.MarkID
	}{
		{"another owner", b, other.Public(), "area", m.ID},
		{"another area", b, owner.Public(), "other", m.ID},
		{"another name", b, owner.Public(), "area", guard.MarkID{8}},
		{"changed pack", append(append([]byte(nil), b[:len(b)-70]...), append([]byte{0xff}, b[len(b)-69:]...)...), owner.Public(), "area", m.ID},
		{"truncated", b[:len(b)-1], owner.Public(), "area", m.ID},
	} {
		if _, err := guard.VerifyMark(c.b, c.pub, c.area, c.id); err == nil {
			t.Errorf("%s: the mark verifies", c.name)
		}
	}
}

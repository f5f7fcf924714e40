package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/retention"
)

// The seed corpora in testdata/fuzz hold records as the package writes
// them and broken variants; the decoders parse bodies whose signature (or
// seal) has been checked, so their input comes from the owner or a holder
// of the area's keys, but a decoder must never fail other than with its
// error.

const fuzzVault = "3b295e7c0b85f3b891b681f48965545e"

func FuzzDecodePolicy(f *testing.F) {
	p := Default("web01")
	p.Seq, p.Set = 1, t0
	b, _ := json.Marshal(p.record(fuzzVault))
	f.Add(b)
	p.Schedule = Schedule{At: []TimeOfDay{120, 840}}
	p.TimeZone = "Europe/Berlin"
	p.Retention = retention.Retention{KeepLast: 3, KeepWithin: 14 * retention.Day}
	b, _ = json.Marshal(p.record(fuzzVault))
	f.Add(b)
	sets := twoSets()
	sets.Seq, sets.Set = 1, t0
	b, _ = json.Marshal(sets.record(fuzzVault))
	f.Add(b)
	f.Add([]byte(`{"vault":"` + fuzzVault + `","machine":"web01","seq":1,"time":"2026-11-22T12:00:00Z","timezone":"UTC","schedule":{"every":-1},"retention":{"within":9223372036854775807}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePolicy(b, fuzzVault, "web01", 1)
		if err != nil {
			if !errors.Is(err, ErrPolicy) && !errors.Is(err, ErrElsewhere) {
				t.Fatalf("error %v wraps neither ErrPolicy nor ErrElsewhere", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded an invalid policy: %v", err)
		}
		again, err := json.Marshal(p.record(fuzzVault))
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodePolicy(again, fuzzVault, "web01", 1)
		if err != nil {
			t.Fatalf("re-encoded policy does not decode: %v\n%s", err, again)
		}
		p.Set, back.Set = p.Set.UTC(), back.Set.UTC()
		if !reflect.DeepEqual(p, back) {
			t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, back)
		}
	})
}

func FuzzDecodeWindow(f *testing.F) {
	b, _ := json.Marshal(windowRecord{Vault: fuzzVault, Seq: 2, Time: t0, Window: 14 * 86400})
	f.Add(b)
	f.Add([]byte(`{"vault":"` + fuzzVault + `","seq":2,"time":"2026-11-22T12:00:00Z","window":-5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeWindow(b, fuzzVault, 2)
		if err != nil {
			if !errors.Is(err, ErrPolicy) && !errors.Is(err, ErrElsewhere) {
				t.Fatalf("error %v wraps neither ErrPolicy nor ErrElsewhere", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("negative window %s", d)
		}
	})
}

func FuzzDecodeOwnerRecord(f *testing.F) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, action := range []string{ActionForget, ActionUndelete} {
		b, _ := json.Marshal(ownerRecordBody{Vault: fuzzVault, Machine: "web01", ID: id, Action: action, Points: []keys.ID{{1}, {2}}, Time: t0})
		f.Add(b)
	}
	f.Add([]byte(`{"vault":"` + fuzzVault + `","machine":"web01","id":"` + id + `","action":"delete","points":["zz"],"time":"2026-11-22T12:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeOwnerRecord(b, fuzzVault, "web01", id)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		if rec.ID != id || len(rec.Points) == 0 || rec.Time.IsZero() || (rec.Action != ActionForget && rec.Action != ActionUndelete) {
			t.Fatalf("accepted %+v", rec)
		}
	})
}

func FuzzDecodeTombstone(f *testing.F) {
	b, _ := EncodeTombstone(Tombstone{Points: []keys.ID{{1}, {2}}, Time: t0, Policy: 3, Host: "web01"})
	f.Add(b)
	f.Add([]byte(`{"version":1,"points":[],"time":"2026-11-22T12:00:00Z"}`))
	f.Add([]byte(`{"version":2,"points":["0100000000000000000000000000000000000000000000000000000000000000"],"time":"2026-11-22T12:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := DecodeTombstone(b)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		again, err := EncodeTombstone(ts)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTombstone(again)
		if err != nil {
			t.Fatalf("re-encoded tombstone does not decode: %v", err)
		}
		if !back.Time.Equal(ts.Time) || !reflect.DeepEqual(back.Points, ts.Points) || back.Policy != ts.Policy || back.Host != ts.Host {
			t.Fatalf("round trip changed the tombstone:\n%+v\n%+v", ts, back)
		}
	})
}

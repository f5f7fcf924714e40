package prune

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/storage/mem"
)

// FuzzReadLock: prune/lock is read from storage that anyone who can write
// it controls (a stale or foreign lock is taken over). readLock must not
// panic, and what it accepts must encode to a lock that reads the same.
func FuzzReadLock(f *testing.F) {
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC)
	for _, body := range []lockBody{
		{Host: "laptop", PID: 4242, Run: guard.MarkID{1, 2}.String(), Time: at},
		{Host: "h\u00e9\u2028", PID: -1, Run: "", Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", 14*3600))},
	} {
		// As lock.save stores it.
		b, err := json.Marshal(body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"host":"x","pid":1e99}`))
	f.Add([]byte(`{"time":"2026-11-22T12:00:00+24:00"}`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, b []byte) {
		st := mem.New()
		if err := st.Save(ctx, lockName, b); err != nil {
			t.Fatal(err)
		}
		l, err := readLock(ctx, st)
		if err != nil {
			return
		}
		if len(b) > 4096 {
			t.Fatalf("readLock accepted a lock of %d bytes; it reads at most 4096", len(b))
		}
		// In UTC: time.Time parses zone offsets of 24 hours and more,
		// which it refuses to encode.
		enc := l
		enc.Time = l.Time.UTC()
		again, err := json.Marshal(enc)
		if err != nil {
			t.Fatalf("an accepted lock does not encode again: %v", err)
		}
		st2 := mem.New()
		if err := st2.Save(ctx, lockName, again); err != nil {
			t.Fatal(err)
		}
		back, err := readLock(ctx, st2)
		if err != nil || back.Host != l.Host || back.PID != l.PID || back.Run != l.Run || !back.Time.Equal(l.Time) {
			t.Fatalf("round trip changed the lock (%v): %+v -> %+v", err, l, back)
		}
	})
}

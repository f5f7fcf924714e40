package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/chunker"
	"github.com/azfs/azfs/repo/storage/mem"
)

func FuzzDecodePoint(f *testing.F) {
	for _, p := range []*repo.Point{
		{Version: 1, Machine: "m", Hostname: "h", Time: time.Date(2024, 5, 1, 9, 0, 0, 123, time.UTC), Paths: []string{"/home"}, Root: keys.ID{1}},
		{Version: 1, Machine: "m", Time: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC), Paths: []string{"/var", "/etc"}, SetName: "db", Root: keys.ID{4}},
		{Version: 1, Machine: "m", Time: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), Paths: []string{"/db.sql"}, SetName: "db.sql", Tags: []string{"daily", "env=prod"}, Root: keys.ID{5}},
		{Version: 1, Machine: "m\u00e9", Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Root: keys.ID{2}, Partial: true,
			Stats: repo.PointStats{Files: 1, Dirs: 2, Others: 3, FilesNew: 4, FilesChanged: 5, FilesUnchanged: 6, Errors: 7, Bytes: 8, BytesRead: 9, BytesStored: 10, Xattrs: 11, Duration: time.Hour}},
		{Version: 1, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -12*3600)), Root: keys.ID{3}, Paths: []string{}},
	} {
		b, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"time":"2024-05-01T00:00:00+23:59","root":"0100000000000000000000000000000000000000000000000000000000000000"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := repo.DecodePoint(b)
		if err != nil {
			if !errors.Is(err, repo.ErrDamaged) {
				t.Fatalf("error %v does not wrap ErrDamaged", err)
			}
			return
		}
		if p.Version != 1 || p.Root.IsZero() || p.Time.IsZero() {
			t.Fatalf("DecodePoint accepted version %d, root %s, time %s", p.Version, p.Root.Short(), p.Time)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a decoded point does not encode again: %v", err)
		}
		back, err := repo.DecodePoint(again)
		if err != nil {
			t.Fatalf("re-encoded point does not decode: %v\n%s", err, again)
		}
		if !back.Time.Equal(p.Time) {
			t.Fatalf("round trip changed the time: %s -> %s", p.Time, back.Time)
		}
		g, w := *back, *p
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip changed the point:\n%+v\n%+v", w, g)
		}
	})
}

// FuzzReadConfig: config objects (the root's and every machine area's) are
// plaintext and unauthenticated, so whoever can write the storage chooses
// them. The seeds are configs as Create, CreateRoot and RegisterMachine
// write them (MarshalIndent), see docs/format.md section 5.
func FuzzReadConfig(f *testing.F) {
	ctx := context.Background()
	st := mem.New()
	if _, err := repo.Create(ctx, st, testPass, cheapKDF); err != nil {
		f.Fatal(err)
	}
	legacy, err := st.Load(ctx, "config", 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(legacy)
	created := time.Date(2026, 11, 22, 11, 59, 2, 0, time.UTC)
	owner := &keys.OwnerPublic{Sign: make([]byte, 32), Escrow: make([]byte, 32)}
	root := repo.Config{Format: repo.FormatVersion, ID: "0123456789abcdef0123456789abcdef", Created: created, Owner: owner}
	area := repo.Config{Format: repo.FormatVersion, ID: "fedcba9876543210fedcba9876543210", Created: created,
		Vault: root.ID, Machine: "laptop"}
	area.Chunker.Min, area.Chunker.Avg, area.Chunker.Max = repo.ChunkerParams.Min, repo.ChunkerParams.Avg, repo.ChunkerParams.Max
	for _, cfg := range []repo.Config{root, area} {
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":2,"id":"x"}`))
	f.Add([]byte(`{"format":1,"id":""}`))
	f.Add([]byte(`{"format":1,"id":"x","machine":"m","chunker":{"min":10,"avg":5,"max":1}}`))
	f.Add([]byte(`{"format":1,"id":"x","owner":{"sign":null}}`))
	f.Add([]byte(`{"format":1,"id":"x","owner":{},"created":"2026-11-22T12:00:00+24:00"}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		st := mem.New()
		if err := st.Save(ctx, "config", b); err != nil {
			t.Fatal(err)
		}
		cfg, err := repo.ReadConfig(ctx, st)
		if err != nil {
			if errors.Is(err, repo.ErrNoVault) {
				t.Fatalf("a config that is there reads as %v", err)
			}
			return
		}
		if cfg.Format != repo.FormatVersion || cfg.ID == "" {
			t.Fatalf("ReadConfig accepted format %d, id %q", cfg.Format, cfg.ID)
		}
		// Every config but the root's may hold data, and a backup hands
		// its chunk size bounds to the chunker, which panics on bounds
		// it cannot use.
		if cfg.Owner == nil || cfg.Machine != "" {
			c := cfg.Chunker
			if c.Max > 64<<20 {
				t.Fatalf("ReadConfig accepted chunks of up to %d bytes", c.Max)
			}
			chunker.New(nil, [32]byte{}, chunker.Params{Min: c.Min, Avg: c.Avg, Max: c.Max})
		}
		// In UTC: time.Time parses zone offsets of 24 hours and more,
		// which it refuses to encode.
		enc := cfg
		enc.Created = cfg.Created.UTC()
		again, err := json.MarshalIndent(enc, "", "  ")
		if err != nil {
			t.Fatalf("an accepted config does not encode again: %v", err)
		}
		st2 := mem.New()
		if err := st2.Save(ctx, "config", again); err != nil {
			t.Fatal(err)
		}
		back, err := repo.ReadConfig(ctx, st2)
		if err != nil {
			t.Fatalf("re-encoded config does not read: %v\n%s", err, again)
		}
		if !back.Created.Equal(cfg.Created) {
			t.Fatalf("round trip changed created: %s -> %s", cfg.Created, back.Created)
		}
		back.Created, cfg.Created = time.Time{}, time.Time{}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, back)
		}
	})
}

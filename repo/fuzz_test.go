package repo_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

func FuzzDecodePoint(f *testing.F) {
	for _, p := range []*repo.Point{
		{Version: 1, Machine: "m", Hostname: "h", Time: time.Date(2024, 5, 1, 9, 0, 0, 123, time.UTC), Paths: []string{"/home"}, Root: keys.ID{1}},
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

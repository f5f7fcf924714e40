package machines_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/machines"
	"github.com/azfs/azfs/repo/storage/mem"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const pass keys.Passphrase = "a passphrase long enough"

// TestList: the owner sees each machine with its registration, newest
// live point and keys; a machine without points has none.
func TestList(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	root, owner, err := repo.CreateVault(ctx, st, pass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	web, err := root.RegisterMachine(ctx, "web01", pass, cheapKDF, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.RegisterMachine(ctx, "db01", pass, cheapKDF, nil); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{1e9, 2e9} {
		if err := web.SavePoint(ctx, &repo.Point{Machine: "web01", Time: time.Unix(at, 0).UTC(), Root: keys.ID{1}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := machines.List(ctx, root, owner)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "db01" || got[1].Name != "web01" {
		t.Fatalf("List = %+v, want db01 and web01", got)
	}
	db, w := got[0], got[1]
	if db.LivePoints != 0 || db.LastPoint != nil || w.LivePoints != 2 || w.LastPoint == nil || !w.LastPoint.Time.Equal(time.Unix(2e9, 0)) {
		t.Errorf("points: db01 %d %v, web01 %d %v", db.LivePoints, db.LastPoint, w.LivePoints, w.LastPoint)
	}
	for _, m := range got {
		if m.Registered.Before(before) || m.Keys != (machines.KeyState{Slots: 1, Escrow: true}) || m.Problem != "" {
			t.Errorf("%s: registered %v, keys %+v, problem %q", m.Name, m.Registered, m.Keys, m.Problem)
		}
	}

	// As 'azfs machines --json' lists them (docs/cli.md).
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"name":"db01"`, `"live_points":0,"last_point":null`, `"live_points":2,"last_point":{"id":"` + w.LastPoint.ID.String() + `","time":"2033-05-18T03:33:20Z","partial":false,"source":"vault"}`,
		`"keys":{"passphrase_slots":1,"unparsable_slots":0,"escrow":true,"write_only":false}`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, "problem") {
		t.Errorf("%s: a problem given when there is none", s)
	}
	// Unknown points are null; a problem is given.
	b, _ = json.Marshal(machines.Machine{Name: "x", LivePoints: -1, Problem: "escrow: gone"})
	if s := string(b); !strings.Contains(s, `"live_points":null,"last_point":null`) || !strings.Contains(s, `"problem":"escrow: gone"`) {
		t.Errorf("unknown points: %s", s)
	}
}

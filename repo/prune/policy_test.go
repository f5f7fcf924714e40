package prune_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
	"github.com/azfs/azfs/repo/prune"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestRunWithPolicy: a point forgotten longer than the soft-delete window
// is purged, and the owner record that forgot it is deleted after it; a
// dry run deletes neither, and a point still in its window stays.
func TestRunWithPolicy(t *testing.T) {
	ctx := context.Background()
	const pass = "correct horse battery staple"
	root, owner, err := repo.CreateVault(ctx, mem.New(), pass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	v, err := root.RegisterMachine(ctx, "m", pass, cheapKDF, nil)
	if err != nil {
		t.Fatal(err)
	}
	var points []*repo.Point
	for i := range 3 {
		p, err := store(ctx, v, v.NewWriter(ctx, 1), map[string][]byte{"f": testfiles.RandomBytes(1000, uint64(i))})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SavePoint(ctx, p); err != nil {
			t.Fatal(err)
		}
		points = append(points, p)
	}
	m := policy.Machine{Root: root, Area: v, Host: "h"}
	t0 := time.Now()
	if err := policy.Forget(ctx, m, owner, []keys.ID{points[0].ID}, t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(policy.DefaultWindow + time.Hour)
	if err := policy.Forget(ctx, m, owner, []keys.ID{points[1].ID}, later); err != nil {
		t.Fatal(err)
	}
	records := func() int {
		n := 0
		for _, name := range listNames(t, v) {
			if strings.HasPrefix(name, "owner/") {
				n++
			}
		}
		return n
	}
	exists := func(p *repo.Point) bool {
		_, err := v.Storage().Stat(ctx, repo.PointsPrefix+p.ID.String())
		return err == nil
	}
	run := func(dryRun bool) *prune.Result {
		t.Helper()
		fresh, err := root.OpenMachine(ctx, "m", v.Keys())
		if err != nil {
			t.Fatal(err)
		}
		state, err := policy.Load(ctx, policy.Machine{Root: root, Area: fresh, Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := prune.RunWithPolicy(ctx, fresh, state, prune.Options{Owner: owner, MaxUnused: 1, DryRun: dryRun}, later)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(true); res.Purged != 1 || !exists(points[0]) || records() != 2 {
		t.Fatalf("dry run: purged %d, point kept %v, %d owner records; want 1 to purge and nothing deleted", res.Purged, exists(points[0]), records())
	}
	if res := run(false); res.Purged != 1 || exists(points[0]) || !exists(points[1]) || !exists(points[2]) || records() != 1 {
		t.Fatalf("run: purged %d, points kept %v %v %v, %d owner records; want the first point and its record gone",
			res.Purged, exists(points[0]), exists(points[1]), exists(points[2]), records())
	}
}

// listNames lists every object of v's area.
func listNames(t *testing.T, v *repo.Area) []string {
	t.Helper()
	var names []string
	err := v.Storage().List(context.Background(), "", func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

package prune_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/guard"
	"github.com/azfs/azfs/repo/storage/local"
)

// BenchmarkGuardCommit measures what Commit costs a backup that depends on
// every pack of an area of n packs in a local vault: with no mark new
// since the run started (the guard's last listing only), and with one
// (the packs listed to confirm that none is gone).
//
//	go test -run '^$' -bench GuardCommit -benchtime 20x ./repo/prune
func BenchmarkGuardCommit(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		ctx := context.Background()
		st, err := local.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		v, err := repo.Create(ctx, st, "correct horse battery staple", cheapKDF)
		if err != nil {
			b.Fatal(err)
		}
		owner, err := keys.NewOwnerKeys(v.ID())
		if err != nil {
			b.Fatal(err)
		}
		packs := make([]keys.ID, n)
		for i := range packs {
			rand.Read(packs[i][:])
			s := packs[i].String()
			if err := st.Save(ctx, "data/"+s[:2]+"/"+s, []byte("pack")); err != nil {
				b.Fatal(err)
			}
		}
		for _, newMark := range []bool{false, true} {
			b.Run(fmt.Sprintf("packs=%d/new-mark=%v", n, newMark), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					g, err := guard.Start(ctx, v, guard.Options{Every: time.Hour}, func(error) {})
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range packs {
						g.Depend(p)
					}
					if newMark {
						m := guard.Mark{Area: v.ID(), Created: time.Now(), Margin: time.Hour}
						rand.Read(m.ID[:])
						if err := st.Save(ctx, guard.MarksPrefix+m.ID.String(), m.Encode(owner)); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					if err := g.Commit(ctx, func(context.Context) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

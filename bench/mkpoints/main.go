// Command mkpoints adds many recovery points to a machine cheaply, for
// measuring what scales with the number of points (bench/points.sh): it
// copies the machine's latest point with other times, so that every copy
// shares its tree and costs one small object; with -distinct, every copy
// gets a root tree part of its own (the same entries, another mtime), as
// real points have, so that what reads each point's root pays for it.
//
//	mkpoints [-n 9999] [-every 6h] [-distinct]
//
// It works on this machine's default vault and area (the keyring in
// $AZFS_CONFIG_DIR), and dates the copies back from the latest point, one
// every -every.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/tree"
)

func main() {
	n := flag.Int("n", 9999, "points to add")
	every := flag.Duration("every", 6*time.Hour, "time between the points")
	distinct := flag.Bool("distinct", false, "give every point a root tree part of its own")
	flag.Parse()
	if err := run(*n, *every, *distinct); err != nil {
		fmt.Fprintln(os.Stderr, "mkpoints:", err)
		os.Exit(1)
	}
}

func run(n int, every time.Duration, distinct bool) error {
	ctx := context.Background()
	ring, err := keyring.LoadHost()
	if err != nil {
		return err
	}
	e := ring.Vaults[ring.Default]
	if e == nil || e.Keys == nil {
		return errors.New("no default vault with this machine's keys")
	}
	st, err := local.Open(e.Location)
	if err != nil {
		return err
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		return err
	}
	v, err := root.OpenMachine(ctx, e.Machine, e.Keys)
	if err != nil {
		return err
	}
	points, err := v.Points(ctx)
	if err != nil {
		return err
	}
	if len(points) == 0 {
		return errors.New("back up once first: the copies share the latest point's tree")
	}
	latest := *points[len(points)-1]
	if err := v.LoadIndex(ctx); err != nil {
		return err
	}
	rootPart, err := v.Part(ctx, latest.Root)
	if err != nil {
		return err
	}
	w := v.NewWriter(ctx, 2)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				p := latest
				p.Time = latest.Time.Add(-time.Duration(i) * every)
				if distinct {
					root, err := distinctRoot(ctx, v, w, rootPart, p.Time)
					if err != nil {
						errs <- err
						return
					}
					p.Root = root
				}
				if err := v.SavePoint(ctx, &p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	fmt.Printf("added %d points to %s, one every %s back from %s\n", n, e.Machine, every, latest.Time.Format(time.RFC3339))
	return nil
}

// distinctRoot stores a copy of root whose one node has mtime t, and
// returns its ID. The points saved with it are committed before the
// writer's Flush makes the parts durable: mkpoints makes a benchmark
// fixture, not a backup.
func distinctRoot(ctx context.Context, v *repo.Area, w *repo.Writer, root *tree.Part, t time.Time) (keys.ID, error) {
	part := tree.Part{Nodes: append([]tree.Node(nil), root.Nodes...)}
	part.Nodes[0].MTime = tree.UnixTime(t.Unix(), int64(t.Nanosecond()))
	b, err := part.Encode(nil)
	if err != nil {
		return keys.ID{}, err
	}
	id := v.Keys().ID(keys.KindTree, b)
	if _, err := w.Save(ctx, keys.KindTree, id, b); err != nil {
		return keys.ID{}, err
	}
	return id, nil
}

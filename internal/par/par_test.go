package par_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/azfs/azfs/internal/par"
)

func TestRangeBoundsConcurrencyAndCallsAll(t *testing.T) {
	var running, peak, calls atomic.Int64
	err := par.Range(context.Background(), 100, 4, func(ctx context.Context, i int) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		calls.Add(1)
		running.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 100 {
		t.Errorf("%d calls, want 100", calls.Load())
	}
	if peak.Load() > 4 {
		t.Errorf("%d calls at once, want at most 4", peak.Load())
	}
}

func TestRangeStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	err := par.Range(context.Background(), 1000, 1, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if n := calls.Load(); n > 12 {
		t.Errorf("%d calls after an error at the 11th, want no more started", n)
	}
}

func TestEachCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int64
	err := par.Each(ctx, []string{"a", "b"}, 2, func(context.Context, string) error { calls.Add(1); return nil })
	if !errors.Is(err, context.Canceled) || calls.Load() != 0 {
		t.Errorf("cancelled: err %v, %d calls; want context.Canceled and none", err, calls.Load())
	}
}

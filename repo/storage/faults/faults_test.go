package faults_test

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/azfs/azfs/integration/faulttrial"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/faults"
	"github.com/azfs/azfs/repo/storage/local"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

func TestConformanceWithoutFaults(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return faults.Wrap(mem.New(), faults.Rates{Delay: 0.3, MaxDelay: time.Millisecond}, 1)
	})
}

// TestConformanceOverRetry: answers lost after the fact, retried, keep the
// storage contract (with the retry wrapper's relaxation). Not Fail: a
// retried Delete of a missing object is taken for one whose first attempt
// landed, as package retry documents.
func TestConformanceOverRetry(t *testing.T) {
	storagetest.RunWith(t, storagetest.Options{IdenticalResaveMaySucceed: true}, func(t *testing.T) storage.Storage {
		return retry.Wrap(faults.Wrap(mem.New(), faults.Rates{Lost: 0.2, Delay: 0.1, MaxDelay: time.Millisecond}, 2), faulttrial.Fast)
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	if err := raw.Save(ctx, "a", bytes.Repeat([]byte{7}, 100)); err != nil {
		t.Fatal(err)
	}
	load := func(r faults.Rates) ([]byte, error) {
		return faults.Wrap(raw, r, 3).Load(ctx, "a", 0, -1)
	}
	if _, err := load(faults.Rates{Fail: 1}); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Fail: %v", err)
	}
	if b, err := load(faults.Rates{Truncate: 1}); err != nil || len(b) >= 100 || !bytes.Equal(b, bytes.Repeat([]byte{7}, len(b))) {
		t.Errorf("Truncate: %d bytes, %v", len(b), err)
	}
	if b, err := load(faults.Rates{Corrupt: 1}); err != nil || len(b) != 100 || bytes.Equal(b, bytes.Repeat([]byte{7}, 100)) {
		t.Errorf("Corrupt: %d bytes, %v", len(b), err)
	}
	f := faults.Wrap(raw, faults.Rates{Lost: 1}, 4)
	if err := f.Save(ctx, "b", []byte("x")); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Lost save: %v", err)
	}
	if b, err := raw.Load(ctx, "b", 0, -1); err != nil || string(b) != "x" {
		t.Errorf("after a lost save: %q, %v", b, err)
	}
	f = faults.Wrap(raw, faults.Rates{Partial: 1}, 5)
	if err := f.Save(ctx, "c", []byte("0123456789")); !errors.Is(err, faults.ErrInjected) {
		t.Errorf("Partial save: %v", err)
	}
	if b, err := raw.Load(ctx, "c", 0, -1); err != nil || len(b) >= 10 || !bytes.HasPrefix([]byte("0123456789"), b) {
		t.Errorf("after a partial save: %q, %v", b, err)
	}
	if f.Count(faults.Partial) != 1 || f.String() != "fail=0 lost=0 delay=0 truncate=0 corrupt=0 partial=1" {
		t.Errorf("counts: %s", f)
	}
}

func memStorage(testing.TB) storage.Storage { return mem.New() }

func localStorage(t testing.TB) storage.Storage {
	d, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var setups = []faulttrial.Setup{
	{Name: "retry-mem", New: memStorage, Retry: true, Rates: faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.03, Corrupt: 0.03, MaxDelay: time.Millisecond}, ContractKept: true},
	{Name: "retry-local", New: localStorage, Retry: true, Rates: faults.Rates{Fail: 0.1, Lost: 0.05, Delay: 0.05, Truncate: 0.03, Corrupt: 0.03, MaxDelay: time.Millisecond}, ContractKept: true},
	{Name: "local", New: localStorage, Rates: faults.Rates{Fail: 0.01, Lost: 0.01, Truncate: 0.01, Corrupt: 0.01}, ContractKept: true},
	{Name: "mem", New: memStorage, Rates: faults.Rates{Fail: 0.005, Lost: 0.005, Truncate: 0.005, Corrupt: 0.005}, ContractKept: true},
	{Name: "partial-retry-mem", New: memStorage, Retry: true, Rates: faults.Rates{Fail: 0.05, Lost: 0.02, Partial: 0.05, Truncate: 0.02, Corrupt: 0.02}},
	{Name: "partial-local", New: localStorage, Rates: faults.Rates{Partial: 0.01, Fail: 0.005}},
}

// TestBackupsUnderFaults runs backups over a changing tree into faulty
// storage. Each run either succeeds, and then the vault passes check
// --read-data, or fails; after every run, every committed point is whole
// and matches the tree as it was. (Package azblob runs the same trials over
// Azurite.)
func TestBackupsUnderFaults(t *testing.T) {
	faulttrial.RunBackups(t, setups, faulttrial.Budget(t, 12*time.Second, 2*time.Second))
}

// TestReadsUnderFaults reads every blob of a vault, many times, through
// storage that corrupts, truncates and fails loads: each read returns the
// right bytes or an error (ErrDamaged for what the storage mangled, the
// injected error for what it failed), never wrong bytes.
func TestReadsUnderFaults(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	v, err := repo.Create(ctx, raw, faulttrial.Passphrase, faulttrial.KDF)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	faulttrial.Mutate(t, mrand.New(mrand.NewPCG(9, 9)), src, 0)
	if _, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"}); err != nil {
		t.Fatal(err)
	}
	clean, err := repo.Open(ctx, raw, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := clean.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	type blob struct {
		id    keys.ID
		kind  keys.Kind
		plain []byte
	}
	var blobs []blob
	clean.Index().Each(func(id keys.ID, loc index.Location) bool {
		blobs = append(blobs, blob{id: id, kind: loc.Kind})
		return true
	})
	for i := range blobs {
		if blobs[i].plain, err = clean.LoadBlob(ctx, blobs[i].kind, blobs[i].id); err != nil {
			t.Fatal(err)
		}
	}
	f := faults.Wrap(raw, faults.Rates{}, 10)
	fv, err := repo.Open(ctx, f, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if err := fv.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	f.SetRates(faults.Rates{Fail: 0.1, Truncate: 0.2, Corrupt: 0.2})
	var right, damaged, failed int
	deadline := time.Now().Add(faulttrial.Budget(t, 2*time.Second, time.Second))
	for i := 0; i < len(blobs) || time.Now().Before(deadline); i++ {
		b := blobs[i%len(blobs)]
		got, err := fv.LoadBlob(ctx, b.kind, b.id)
		switch {
		case err == nil && bytes.Equal(got, b.plain):
			right++
		case err == nil:
			t.Fatalf("blob %s: wrong bytes with no error", b.id.Short())
		case errors.Is(err, repo.ErrDamaged):
			damaged++
		case errors.Is(err, faults.ErrInjected):
			failed++
		default:
			t.Fatalf("blob %s: %v", b.id.Short(), err)
		}
	}
	t.Logf("%d blobs, %d reads: %d right, %d ErrDamaged, %d failed; injected %s", len(blobs), right+damaged+failed, right, damaged, failed, f)
	if damaged == 0 || right == 0 {
		t.Error("the faults were not exercised")
	}
}

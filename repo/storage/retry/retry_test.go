package retry_test

import (
	"context"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

var fast = retry.Policy{Attempts: 30, Base: time.Microsecond, Max: 100 * time.Microsecond}

var errTransient = errors.New("injected transient failure")

// lossy is the conformance suite for a storage that loses answers: after a
// failed attempt, a save of bytes already stored counts as the attempt
// having landed (see the package documentation).
var lossy = storagetest.Options{IdenticalResaveMaySucceed: true}

// flaky fails a fraction of requests with a transient error; some failed
// Saves and Deletes have in fact happened (the answer was lost).
type flaky struct {
	storage.Storage
	rate     float64
	mu       sync.Mutex
	rng      *mrand.Rand
	failures atomic.Int64
}

func newFlaky(st storage.Storage, rate float64) *flaky {
	return &flaky{Storage: st, rate: rate, rng: mrand.New(mrand.NewPCG(1, 2))}
}

func (f *flaky) roll() (fail, lost bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= f.rate {
		return false, false
	}
	f.failures.Add(1)
	return true, f.rng.IntN(2) == 0
}

func (f *flaky) Save(ctx context.Context, name string, data []byte) error {
	fail, lost := f.roll()
	if fail && !lost {
		return &storage.Error{Op: "save", Name: name, Err: errTransient}
	}
	err := f.Storage.Save(ctx, name, data)
	if fail && err == nil {
		return &storage.Error{Op: "save", Name: name, Err: errTransient} // landed, answer lost
	}
	return err
}

func (f *flaky) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if fail, _ := f.roll(); fail {
		return nil, &storage.Error{Op: "load", Name: name, Err: errTransient}
	}
	return f.Storage.Load(ctx, name, off, length)
}

// hanging makes a fraction of Saves and Loads hang until their context
// ends; some hanging Saves have landed.
type hanging struct {
	storage.Storage
	f *flaky // only its dice are used
}

func (h *hanging) Save(ctx context.Context, name string, data []byte) error {
	hang, landed := h.f.roll()
	if !hang {
		return h.Storage.Save(ctx, name, data)
	}
	if landed {
		if err := h.Storage.Save(ctx, name, data); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return &storage.Error{Op: "save", Name: name, Err: ctx.Err()}
}

func (h *hanging) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if hang, _ := h.f.roll(); hang {
		<-ctx.Done()
		return nil, &storage.Error{Op: "load", Name: name, Err: ctx.Err()}
	}
	return h.Storage.Load(ctx, name, off, length)
}

func (f *flaky) Stat(ctx context.Context, name string) (storage.Info, error) {
	if fail, _ := f.roll(); fail {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: errTransient}
	}
	return f.Storage.Stat(ctx, name)
}

func (f *flaky) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if fail, _ := f.roll(); fail {
		return &storage.Error{Op: "list", Name: prefix, Err: errTransient}
	}
	return f.Storage.List(ctx, prefix, fn)
}

func (f *flaky) Delete(ctx context.Context, name string) error {
	fail, lost := f.roll()
	if fail && !lost {
		return &storage.Error{Op: "delete", Name: name, Err: errTransient}
	}
	err := f.Storage.Delete(ctx, name)
	if fail && err == nil {
		return &storage.Error{Op: "delete", Name: name, Err: errTransient}
	}
	return err
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return retry.Wrap(mem.New(), fast) })
}

// TestConformanceOverFlakyStorage: with 30% of requests failing, some of
// them after the fact, the wrapped storage still behaves exactly as the
// storage contract says.
func TestConformanceOverFlakyStorage(t *testing.T) {
	storagetest.RunWith(t, lossy, func(t *testing.T) storage.Storage { return retry.Wrap(newFlaky(mem.New(), 0.3), fast) })
}

// TestConformanceOverHangingStorage: with a fifth of the saves and loads
// hanging (some after the save landed), attempts time out and are retried,
// and the storage still behaves as the contract says.
func TestConformanceOverHangingStorage(t *testing.T) {
	p := fast
	p.Timeout = 20 * time.Millisecond
	dice := newFlaky(nil, 0.2)
	t.Cleanup(func() { // after the parallel subtests
		if dice.failures.Load() == 0 {
			t.Error("no request hung")
		}
		t.Logf("%d requests hung", dice.failures.Load())
	})
	storagetest.RunWith(t, lossy, func(t *testing.T) storage.Storage {
		return retry.Wrap(&hanging{Storage: mem.New(), f: dice}, p)
	})
}

// TestPermanentErrorsAreNotRetried: a missing object, or a request the
// storage refuses to the credentials in use, costs one request.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	var calls atomic.Int64
	st := retry.Wrap(&counting{Storage: mem.New(), calls: &calls}, fast)
	if _, err := st.Load(context.Background(), "data/00/missing", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load of a missing object: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("a missing object took %d requests, want 1", n)
	}

	calls.Store(0)
	st = retry.Wrap(&counting{Storage: mem.New(), calls: &calls, err: storage.ErrPermission}, fast)
	if _, err := st.Load(context.Background(), "config", 0, -1); !errors.Is(err, storage.ErrPermission) {
		t.Fatalf("Load the storage refuses: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("a refused request took %d requests, want 1", n)
	}
}

// TestGivesUp: a storage that always fails is given up on after the
// policy's attempts, with the storage's error.
func TestGivesUp(t *testing.T) {
	st := retry.Wrap(newFlaky(mem.New(), 1), retry.Policy{Attempts: 3, Base: time.Microsecond, Max: time.Microsecond})
	if _, err := st.Stat(context.Background(), "config"); !errors.Is(err, errTransient) {
		t.Errorf("Stat on a dead storage: %v, want the injected failure", err)
	}
}

// counting counts Loads, and fails each with err when it is set.
type counting struct {
	storage.Storage
	calls *atomic.Int64
	err   error
}

func (c *counting) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	c.calls.Add(1)
	if c.err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: c.err}
	}
	return c.Storage.Load(ctx, name, off, length)
}

// TestBackupOverFlakyStorage: a backup into storage that fails a fifth of
// its requests completes, and every stored byte authenticates.
func TestBackupOverFlakyStorage(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	for i := range 20 {
		b := make([]byte, 300<<10)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFlaky(mem.New(), 0.2)
	st := retry.Wrap(f, fast)
	v, err := repo.Create(ctx, st, "correct horse battery staple", keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := backup.Run(ctx, v, backup.Options{Paths: []string{src}, Machine: "m"})
	if err != nil {
		t.Fatalf("backup over flaky storage: %v", err)
	}
	if p.Stats.Files != 20 {
		t.Errorf("point has %d files, want 20", p.Stats.Files)
	}
	fresh, err := repo.Open(ctx, st, v.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := check.Run(ctx, fresh, check.Options{ReadData: true}); err != nil {
		t.Errorf("check --read-data after a backup over flaky storage: %v", err)
	}
	if f.failures.Load() == 0 {
		t.Fatal("no failure was injected")
	}
	t.Logf("%d injected failures", f.failures.Load())
}

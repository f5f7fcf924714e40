// Package faults wraps a storage so that it misbehaves on purpose, at
// configurable rates drawn from a seeded random source, to show that what
// is built on it loses nothing and returns no wrong bytes.
//
// Each request draws at most one fault, among those that apply to it:
//
//   - [Fail]: the request fails with a transient error, wrapping
//     [ErrInjected], before it reaches the backend; nothing happened (a
//     refused connection, a 503 before the body was read).
//   - [Lost]: a Save or Delete reaches the backend and takes effect, then
//     fails with a transient error: the answer was lost on the way back (a
//     dropped connection, a timeout after the service committed).
//   - [Delay]: the request waits a random time up to Rates.MaxDelay (or
//     until its context ends, failing then) and then runs normally: a slow
//     or congested backend.
//   - [Truncate]: a Load that would return bytes returns a random strict
//     prefix of them and no error: a connection cut short that the client
//     library did not notice.
//   - [Corrupt]: a Load that would return bytes returns them with one to
//     three bytes flipped and no error: bit rot, a faulty disk or proxy.
//   - [Partial]: a Save of a non-empty object stores a random strict prefix
//     of it under the name and fails with a transient error. This breaks the
//     storage contract (Save is atomic): it models a broken backend or
//     filesystem that makes a half-written object visible, which a correct
//     backend never does.
//
// Stat and List draw only Fail and Delay. A request whose context is
// already done draws nothing and goes to the backend, which fails it. The wrapper is safe for
// concurrent use; with concurrent requests the order of draws, and so which
// request gets which fault, depends on scheduling.
package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azfs/azfs/repo/storage"
)

// ErrInjected is wrapped by every error the wrapper injects.
var ErrInjected = errors.New("injected storage fault")

// Kind is a kind of fault; see the package documentation.
type Kind int

// The kinds of faults.
const (
	Fail Kind = iota
	Lost
	Delay
	Truncate
	Corrupt
	Partial
	numKinds
)

var kindNames = [numKinds]string{"fail", "lost", "delay", "truncate", "corrupt", "partial"}

func (k Kind) String() string { return kindNames[k] }

// Rates are the probabilities, each in [0, 1], that a request to which a
// fault applies gets it. Their sum for one kind of request should not
// exceed 1.
type Rates struct {
	Fail, Lost, Delay, Truncate, Corrupt, Partial float64
	MaxDelay                                      time.Duration // bound of a Delay
}

func (r Rates) of(k Kind) float64 {
	return [numKinds]float64{r.Fail, r.Lost, r.Delay, r.Truncate, r.Corrupt, r.Partial}[k]
}

// Store is a faulty storage.
type Store struct {
	st     storage.Storage
	mu     sync.Mutex
	rates  Rates
	rng    *rand.Rand
	counts [numKinds]atomic.Int64
}

var _ storage.Storage = (*Store)(nil)

// Wrap returns st injecting faults at rates r, drawn from a random source
// seeded with seed.
func Wrap(st storage.Storage, r Rates, seed uint64) *Store {
	return &Store{st: st, rates: r, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetRates replaces the rates for the requests that follow.
func (s *Store) SetRates(r Rates) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rates = r
}

// Count returns how many faults of kind k were injected.
func (s *Store) Count(k Kind) int64 { return s.counts[k].Load() }

// String summarises the faults injected, as "fail=3 lost=1 ...".
func (s *Store) String() string {
	var b strings.Builder
	for k := range numKinds {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, s.Count(k))
	}
	return b.String()
}

// draw picks at most one of the kinds that apply, by their rates; ok is
// false when none is drawn. n, when positive, also draws a number in
// [0, n) for the fault's own use.
func (s *Store) draw(n int, kinds ...Kind) (k Kind, ok bool, delay time.Duration, x int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.rng.Float64()
	for _, k := range kinds {
		if u -= s.rates.of(k); u < 0 {
			s.counts[k].Add(1)
			if k == Delay && s.rates.MaxDelay > 0 {
				delay = time.Duration(s.rng.Int64N(int64(s.rates.MaxDelay) + 1))
			}
			if n > 0 {
				x = s.rng.IntN(n)
			}
			return k, true, delay, x
		}
	}
	return 0, false, 0, 0
}

// flips draws one to three positions in [0, n) and nonzero masks to flip
// there.
func (s *Store) flips(n int) (pos []int, mask []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 1 + s.rng.IntN(3) {
		pos = append(pos, s.rng.IntN(n))
		mask = append(mask, byte(1+s.rng.IntN(255)))
	}
	return pos, mask
}

func injected(op, name string, k Kind) error {
	return &storage.Error{Op: op, Name: name, Err: fmt.Errorf("%w (%s)", ErrInjected, k)}
}

func wait(ctx context.Context, op, name string, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &storage.Error{Op: op, Name: name, Err: ctx.Err()}
	}
}

// Save draws Fail, Lost, Delay or Partial.
func (s *Store) Save(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return s.st.Save(ctx, name, data) // the backend's own error
	}
	k, ok, d, x := s.draw(max(len(data), 1), Fail, Lost, Delay, Partial)
	switch {
	case !ok:
	case k == Fail || k == Partial && len(data) == 0:
		return injected("save", name, k)
	case k == Delay:
		if err := wait(ctx, "save", name, d); err != nil {
			return err
		}
	case k == Lost:
		if err := s.st.Save(ctx, name, data); err != nil {
			return err
		}
		return injected("save", name, k)
	case k == Partial:
		if err := s.st.Save(ctx, name, data[:x]); err != nil {
			return err
		}
		return injected("save", name, k)
	}
	return s.st.Save(ctx, name, data)
}

// Load draws Fail, Delay, Truncate or Corrupt; the last two only matter
// when the result is not empty.
func (s *Store) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return s.st.Load(ctx, name, off, length)
	}
	k, ok, d, _ := s.draw(0, Fail, Delay, Truncate, Corrupt)
	switch {
	case !ok:
	case k == Fail:
		return nil, injected("load", name, k)
	case k == Delay:
		if err := wait(ctx, "load", name, d); err != nil {
			return nil, err
		}
	}
	b, err := s.st.Load(ctx, name, off, length)
	if err != nil || !ok || k == Fail || k == Delay {
		return b, err
	}
	if len(b) == 0 {
		s.counts[k].Add(-1) // nothing to truncate or corrupt
		return b, nil
	}
	if k == Truncate {
		return b[:s.intN(len(b))], nil
	}
	pos, mask := s.flips(len(b))
	for i, p := range pos {
		b[p] ^= mask[i]
	}
	return b, nil
}

// Stat draws Fail or Delay.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := s.failOrDelay(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	return s.st.Stat(ctx, name)
}

// List draws Fail or Delay, before listing.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := s.failOrDelay(ctx, "list", prefix); err != nil {
		return err
	}
	return s.st.List(ctx, prefix, fn)
}

// Delete draws Fail, Lost or Delay.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return s.st.Delete(ctx, name)
	}
	k, ok, d, _ := s.draw(0, Fail, Lost, Delay)
	switch {
	case !ok:
	case k == Fail:
		return injected("delete", name, k)
	case k == Delay:
		if err := wait(ctx, "delete", name, d); err != nil {
			return err
		}
	case k == Lost:
		if err := s.st.Delete(ctx, name); err != nil {
			return err
		}
		return injected("delete", name, k)
	}
	return s.st.Delete(ctx, name)
}

func (s *Store) failOrDelay(ctx context.Context, op, name string) error {
	if ctx.Err() != nil {
		return nil // the backend reports it
	}
	k, ok, d, _ := s.draw(0, Fail, Delay)
	switch {
	case !ok:
		return nil
	case k == Fail:
		return injected(op, name, k)
	}
	return wait(ctx, op, name, d)
}

func (s *Store) intN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

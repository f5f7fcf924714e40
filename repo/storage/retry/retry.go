// Package retry wraps any storage so that transient failures (throttling,
// 5xx answers, timeouts, dropped connections) are retried with exponential
// backoff and jitter, and one failed request does not fail a backup.
//
// An attempt that hangs is abandoned after the policy's Timeout and
// retried like a failed one.
//
// Failures that retrying cannot change are returned at once: missing or
// existing objects, bad ranges and names, refused permissions, and the
// caller's own cancellation. A Save whose earlier attempt failed may in
// fact have landed; when its retry finds the name taken, the stored bytes
// are compared with the ones being saved, and equal bytes count as success.
package retry

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/azfs/azfs/repo/storage"
)

// Policy bounds the retries of one request.
type Policy struct {
	Attempts int           // attempts in all, at least 1
	Base     time.Duration // delay before the second attempt
	Max      time.Duration // bound of one delay
	// Timeout bounds one attempt of a Save, Load, Stat or Delete (none
	// when 0). A List is not bounded: its callback's time counts in it.
	Timeout time.Duration
}

// DefaultPolicy retries for about half a minute before giving up.
// An attempt may take two minutes: a 16 MiB pack at 150 kB/s.
var DefaultPolicy = Policy{Attempts: 8, Base: 200 * time.Millisecond, Max: 10 * time.Second, Timeout: 2 * time.Minute}

// Wrap returns st with every request retried under p.
func Wrap(st storage.Storage, p Policy) storage.Storage {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	return &store{st: st, p: p}
}

type store struct {
	st storage.Storage
	p  Policy
}

var _ storage.Storage = (*store)(nil)

// permanent reports errors that a retry cannot change.
func permanent(ctx context.Context, err error) bool {
	return ctx.Err() != nil ||
		errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists) ||
		errors.Is(err, storage.ErrRange) || errors.Is(err, storage.ErrInvalidName) ||
		errors.Is(err, storage.ErrPermission) || errors.Is(err, context.Canceled)
}

// do runs op until it succeeds, fails permanently, or runs out of
// attempts, giving each attempt a context bounded by the policy's Timeout.
// It reports whether an earlier attempt had failed.
func (s *store) do(ctx context.Context, op func(ctx context.Context) error) (retried bool, err error) {
	return s.doFinal(ctx, func() (bool, error) {
		if s.p.Timeout <= 0 {
			return false, op(ctx)
		}
		actx, cancel := context.WithTimeout(ctx, s.p.Timeout)
		defer cancel()
		return false, op(actx)
	})
}

// doFinal is do for an op that can also declare its failure final.
func (s *store) doFinal(ctx context.Context, op func() (final bool, err error)) (retried bool, err error) {
	delay := s.p.Base
	for attempt := 1; ; attempt++ {
		final, err := op()
		if err == nil || final || permanent(ctx, err) || attempt == s.p.Attempts {
			return attempt > 1, err
		}
		// Full jitter: many machines retrying one throttled account spread out.
		wait := time.Duration(rand.Int64N(int64(delay) + 1))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return true, err
		}
		delay = min(2*delay, s.p.Max)
	}
}

func (s *store) Save(ctx context.Context, name string, data []byte) error {
	retried, err := s.do(ctx, func(ctx context.Context) error { return s.st.Save(ctx, name, data) })
	if retried && errors.Is(err, storage.ErrExists) {
		// An attempt that failed may have landed after all.
		var stored []byte
		if _, lerr := s.do(ctx, func(ctx context.Context) error {
			var e error
			stored, e = s.st.Load(ctx, name, 0, -1)
			return e
		}); lerr == nil && bytes.Equal(stored, data) {
			return nil
		}
	}
	return err
}

func (s *store) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	var b []byte
	_, err := s.do(ctx, func(ctx context.Context) error {
		var e error
		b, e = s.st.Load(ctx, name, off, length)
		return e
	})
	return b, err
}

func (s *store) Stat(ctx context.Context, name string) (storage.Info, error) {
	var fi storage.Info
	_, err := s.do(ctx, func(ctx context.Context) error {
		var e error
		fi, e = s.st.Stat(ctx, name)
		return e
	})
	return fi, err
}

// List retries a listing that fails before it calls fn; once fn has seen
// objects, a failure is final, so fn never sees an object twice. An error
// from fn itself is returned as is.
func (s *store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	_, err := s.doFinal(ctx, func() (bool, error) {
		called := false
		err := s.st.List(ctx, prefix, func(fi storage.Info) error {
			called = true
			return fn(fi)
		})
		return called, err
	})
	return err
}

func (s *store) Delete(ctx context.Context, name string) error {
	retried, err := s.do(ctx, func(ctx context.Context) error { return s.st.Delete(ctx, name) })
	if retried && errors.Is(err, storage.ErrNotFound) {
		return nil // an attempt that failed had deleted it
	}
	return err
}

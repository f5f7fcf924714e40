package storage

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Counts tallies the requests made through a [Count] wrapper and the bytes
// they moved. Every call counts, failed or not: placed below a retrying
// wrapper, it counts each attempt, as a metered service bills them.
type Counts struct {
	Saves, Loads, Stats, Lists, Deletes atomic.Uint64
	// BytesUp counts the data given to Save; BytesDown the data Load
	// returned.
	BytesUp, BytesDown atomic.Uint64
}

// Tally is a snapshot of [Counts].
type Tally struct {
	Requests  uint64 `json:"requests"`
	Saves     uint64 `json:"saves"`
	Loads     uint64 `json:"loads"`
	Stats     uint64 `json:"stats"`
	Lists     uint64 `json:"lists"`
	Deletes   uint64 `json:"deletes"`
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
}

// Tally returns the counts as they are now.
func (c *Counts) Tally() Tally {
	return Tally{
		Requests: c.Requests(), Saves: c.Saves.Load(), Loads: c.Loads.Load(), Stats: c.Stats.Load(),
		Lists: c.Lists.Load(), Deletes: c.Deletes.Load(), BytesUp: c.BytesUp.Load(), BytesDown: c.BytesDown.Load(),
	}
}

// Requests returns the number of calls of every kind.
func (c *Counts) Requests() uint64 {
	return c.Saves.Load() + c.Loads.Load() + c.Stats.Load() + c.Lists.Load() + c.Deletes.Load()
}

// String summarises the counts on one line.
func (t Tally) String() string {
	return fmt.Sprintf("%d requests (%d saves, %d loads, %d stats, %d lists, %d deletes), %d bytes up, %d bytes down",
		t.Requests, t.Saves, t.Loads, t.Stats, t.Lists, t.Deletes, t.BytesUp, t.BytesDown)
}

// Count returns st with every call tallied in c. A List counts once however
// many pages the backend fetches.
func Count(st Storage, c *Counts) Storage { return &counted{st: st, c: c} }

type counted struct {
	st Storage
	c  *Counts
}

func (s *counted) Save(ctx context.Context, name string, data []byte) error {
	s.c.Saves.Add(1)
	s.c.BytesUp.Add(uint64(len(data)))
	return s.st.Save(ctx, name, data)
}

func (s *counted) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.c.Loads.Add(1)
	b, err := s.st.Load(ctx, name, off, length)
	s.c.BytesDown.Add(uint64(len(b)))
	return b, err
}

// LoadInto is Load into dst's room when the counted storage can ([LoadInto]).
func (s *counted) LoadInto(ctx context.Context, dst []byte, name string, off, length int64) ([]byte, error) {
	s.c.Loads.Add(1)
	b, err := LoadInto(ctx, s.st, dst, name, off, length)
	if err == nil {
		s.c.BytesDown.Add(uint64(len(b) - len(dst)))
	}
	return b, err
}

func (s *counted) Stat(ctx context.Context, name string) (Info, error) {
	s.c.Stats.Add(1)
	return s.st.Stat(ctx, name)
}

func (s *counted) List(ctx context.Context, prefix string, fn func(Info) error) error {
	s.c.Lists.Add(1)
	return s.st.List(ctx, prefix, fn)
}

func (s *counted) Delete(ctx context.Context, name string) error {
	s.c.Deletes.Add(1)
	return s.st.Delete(ctx, name)
}

// Close passes [Close] on to the counted storage.
func (s *counted) Close() error { return Close(s.st) }

package storagetest

import (
	"context"
	"sync"
	"time"

	"github.com/azfs/azfs/repo/storage"
)

// SaveEvent is a Save starting or returning, as RecordingSaves logs it.
type SaveEvent struct {
	Name string
	Done bool  // false: the Save started; true: it returned
	Err  error // what it returned (Done only)
}

// RecordingSaves wraps a storage and records its Saves: each one's start
// and return, in order (Events), and the most Saves of names Match
// selects that were under way at once (MostAtOnce). A selected Save waits,
// before it saves, until Want selected Saves are under way or Patience
// (default 2 s) has passed, so that Saves a caller starts together are
// seen together whatever the scheduler does; once Want were, no Save
// waits. Want 0 waits for nothing.
type RecordingSaves struct {
	storage.Storage
	Match    func(name string) bool
	Want     int
	Patience time.Duration

	mu      sync.Mutex
	events  []SaveEvent
	now     int
	most    int
	reached chan struct{} // closed when Want were first under way
	wanted  bool
}

var _ storage.Storage = (*RecordingSaves)(nil)

// Save records the Save and passes it on.
func (r *RecordingSaves) Save(ctx context.Context, name string, data []byte) error {
	selected := r.Match != nil && r.Match(name)
	r.mu.Lock()
	r.events = append(r.events, SaveEvent{Name: name})
	if r.reached == nil {
		r.reached = make(chan struct{})
	}
	reached := r.reached
	if selected {
		r.now++
		r.most = max(r.most, r.now)
		if r.now == r.Want && !r.wanted {
			r.wanted = true
			close(r.reached)
		}
	}
	r.mu.Unlock()
	if selected && r.Want > 0 {
		patience := r.Patience
		if patience == 0 {
			patience = 2 * time.Second
		}
		t := time.NewTimer(patience)
		select {
		case <-reached:
		case <-t.C:
		}
		t.Stop()
	}
	err := r.Storage.Save(ctx, name, data)
	r.mu.Lock()
	r.events = append(r.events, SaveEvent{Name: name, Done: true, Err: err})
	if selected {
		r.now--
	}
	r.mu.Unlock()
	return err
}

// Events returns the Saves' starts and returns so far, in order.
func (r *RecordingSaves) Events() []SaveEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SaveEvent(nil), r.events...)
}

// MostAtOnce returns the most selected Saves under way at once so far.
func (r *RecordingSaves) MostAtOnce() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.most
}

// Package freelist keeps a bounded number of reusable values (buffers, pack
// writers) for a pipeline that needs the same few over and over.
//
// Unlike a sync.Pool, which empties itself at every garbage collection (and,
// under the race detector, drops a quarter of what it is given), a List
// keeps what it holds until it is taken, so a long run that cycles through a
// handful of multi-megabyte buffers allocates them once. Unlike an unbounded
// list it never holds more than its capacity: a value given back to a full
// List is left to the garbage collector.
package freelist

// List holds up to a fixed number of values of type T. It is safe for
// concurrent use.
type List[T any] struct {
	free  chan T
	fresh func() T
}

// New returns a List that holds at most capacity values and makes a new
// one with fresh when it is empty.
func New[T any](capacity int, fresh func() T) *List[T] {
	return &List[T]{free: make(chan T, capacity), fresh: fresh}
}

// Get returns a value from the list, or a fresh one when it is empty.
func (l *List[T]) Get() T {
	select {
	case v := <-l.free:
		return v
	default:
		return l.fresh()
	}
}

// Put gives v back to the list for a later Get; it drops v when the list
// already holds its capacity.
func (l *List[T]) Put(v T) {
	select {
	case l.free <- v:
	default:
	}
}

// Len returns the number of values the list holds.
func (l *List[T]) Len() int { return len(l.free) }

// Clear drops every value the list holds, for the garbage collector: for
// when the pipeline is done with them. The list stays usable.
func (l *List[T]) Clear() {
	for {
		select {
		case <-l.free:
		default:
			return
		}
	}
}

package fs

import "sync/atomic"

// holders counts the holders of something whose buffers are recycled (a
// cached chunk, a window of an image's blocks): the cache while it keeps
// it, and each reader still using it. The last to let go hands the buffers
// back; the count never rises from zero again, so a reader that comes too
// late cannot take what is being reused.
type holders struct {
	n atomic.Int32
}

// first makes the count one: the first holder (the cache it is added to,
// or the caller that loaded it alone).
func (h *holders) first() { h.n.Store(1) }

// hold adds a holder, unless the last one has already let go.
func (h *holders) hold() bool {
	for {
		n := h.n.Load()
		if n <= 0 {
			return false
		}
		if h.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a holder of what (for the panic of a release too many) and
// reports whether it was the last.
func (h *holders) release(what string) bool {
	n := h.n.Add(-1)
	if n < 0 {
		panic("fs: " + what + " released more often than held")
	}
	return n == 0
}

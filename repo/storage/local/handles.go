package local

import (
	"errors"
	"os"
	"syscall"

	lru "github.com/hashicorp/golang-lru/v2"
)

// openFiles is how many objects a Dir keeps open for Load. Packs are tens of
// MB: a mount or a restore reading a few of them at a time reads from open
// files, and a Load costs one pread instead of opening the vault directory,
// resolving the name, stat, pread and close.
const openFiles = 32

// handle is an object kept open for reading, with its size.
type handle struct {
	f    *os.File
	size int64
}

// handles is a bounded LRU of the objects a Dir keeps open. A file leaving
// it is closed; a Load reading it at that moment fails with os.ErrClosed
// and opens the object again (os.File defers the close(2) until reads under
// way are done, so no read ever lands on a reused descriptor).
type handles struct {
	open *lru.Cache[string, handle]
}

func newHandles(n int) *handles {
	c, err := lru.NewWithEvict(n, func(_ string, h handle) { h.f.Close() })
	if err != nil {
		panic("local: open-file cache of size " + err.Error()) // n is a positive constant
	}
	return &handles{open: c}
}

// get returns the open handle of name, if kept.
func (h *handles) get(name string) (handle, bool) { return h.open.Get(name) }

// keep keeps hd open as name's handle and returns it, unless a concurrent
// Load kept one first: then hd is closed and that one returned.
func (h *handles) keep(name string, hd handle) handle {
	if kept, ok, _ := h.open.PeekOrAdd(name, hd); ok {
		hd.f.Close()
		return kept
	}
	return hd
}

// current returns h with its file's size now while that file is still the
// object name, else it drops h. Objects are immutable, but another process
// may delete one (a prune run elsewhere, or outside interference) or damage
// it (truncation): a Load must then see what opening the object would, not
// the file as it was. One fstat costs far less than opening again.
func (h *handles) current(name string, hd handle) (handle, bool) {
	fi, err := hd.f.Stat()
	if errors.Is(err, os.ErrClosed) {
		return handle{}, false // it left the cache meanwhile
	}
	if err != nil {
		h.drop(name)
		return handle{}, false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
		h.drop(name)
		return handle{}, false
	}
	hd.size = fi.Size()
	return hd, true
}

// drop closes name's handle, if kept: name was deleted.
func (h *handles) drop(name string) { h.open.Remove(name) }

// closeAll closes every kept handle.
func (h *handles) closeAll() { h.open.Purge() }

// len returns the number of handles kept.
func (h *handles) len() int { return h.open.Len() }

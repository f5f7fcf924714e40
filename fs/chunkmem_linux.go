package fs

import "golang.org/x/sys/unix"

// chunkBuffersOffHeap reports that pooled chunk buffers are mapped outside
// the Go heap (mapChunkBuffer), so that the collector needs no room for
// them: see chunkShares and MemoryLimit.
const chunkBuffersOffHeap = true

// mapChunkBuffer returns n bytes of anonymous memory outside the Go heap,
// zeroed, faulted in when first touched; unmapChunkBuffer hands them back
// to the kernel at once.
func mapChunkBuffer(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// unmapChunkBuffer unmaps b, returned by mapChunkBuffer. Nothing may read
// or write b afterwards: the access would fault (SIGSEGV).
func unmapChunkBuffer(b []byte) error {
	return unix.Munmap(b[:cap(b)])
}

// remapChunkBuffer resizes b, returned by mapChunkBuffer, to n bytes,
// moving it if need be: the pages it keeps stay in memory, with no fault
// to touch them again. b may not be used afterwards.
func remapChunkBuffer(b []byte, n int) ([]byte, error) {
	return unix.Mremap(b[:cap(b)], n, unix.MREMAP_MAYMOVE)
}

//go:build !linux

package fs

// chunkBuffersOffHeap reports that pooled chunk buffers live on the Go
// heap on this system: the collector frees those dropped.
const chunkBuffersOffHeap = false

// mapChunkBuffer returns a buffer of n bytes from the Go heap.
func mapChunkBuffer(n int) ([]byte, error) { return make([]byte, n), nil }

// unmapChunkBuffer leaves b to the collector.
func unmapChunkBuffer([]byte) error { return nil }

// remapChunkBuffer returns a new buffer of n bytes, b left to the
// collector.
func remapChunkBuffer(_ []byte, n int) ([]byte, error) { return make([]byte, n), nil }

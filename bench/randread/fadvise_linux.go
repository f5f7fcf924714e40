//go:build linux && (amd64 || arm64)

package main

import (
	"os"
	"syscall"
)

// posix_fadvise advice.
const (
	// fadvRandom: no read-ahead, so every read that misses the page cache
	// reaches the filesystem as is.
	fadvRandom = 1
	// fadvDontNeed: drop the file's cached pages.
	fadvDontNeed = 4
)

// fadvise gives the kernel advice about the whole of f.
func fadvise(f *os.File, advice uintptr) error {
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, advice, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

//go:build linux && (amd64 || arm64)

package main

import (
	"os"
	"syscall"
)

// fadviseRandom tells the kernel the file is read at random: no read-ahead,
// so every read that misses the page cache reaches the filesystem as is.
func fadviseRandom(f *os.File) error {
	const posixFadvRandom = 1
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvRandom, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

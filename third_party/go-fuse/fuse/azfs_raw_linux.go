// Copyright 2026 the azfs authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fuse

// azfs patch: system calls on /dev/fuse that never wait, made without
// telling the runtime (RawSyscall), see AZFS-PATCH.md.

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawRead reads from fd, which is non-blocking: it returns at once, with
// EAGAIN when there is nothing to read.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawWritev writes iov to fd. Only for replies to requests: the kernel
// copies a reply in and returns, never waiting for the server (a
// notification may, and goes through writev).
func rawWritev(fd int, iov [][]byte) (int, error) {
	vecs := make([]unix.Iovec, 0, len(iov))
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vecs = append(vecs, v)
	}
	if len(vecs) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vecs[0])), uintptr(len(vecs)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

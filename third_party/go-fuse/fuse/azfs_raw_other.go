// Copyright 2026 the azfs authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package fuse

import "syscall"

// rawRead reads from fd (azfs patch; as upstream off Linux).
func rawRead(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

// rawWritev writes iov to fd (azfs patch; as upstream off Linux).
func rawWritev(fd int, iov [][]byte) (int, error) { return writev(fd, iov) }

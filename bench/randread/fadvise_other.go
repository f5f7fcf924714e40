//go:build !(linux && (amd64 || arm64))

package main

import (
	"errors"
	"os"
)

const (
	fadvRandom   = 1
	fadvDontNeed = 4
)

func fadvise(*os.File, uintptr) error {
	return errors.New("-fadvise-random and -fadvise-dontneed are not supported on this platform")
}

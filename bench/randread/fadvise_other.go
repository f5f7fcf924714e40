//go:build !(linux && (amd64 || arm64))

package main

import (
	"errors"
	"os"
)

func fadviseRandom(*os.File) error {
	return errors.New("-fadvise-random is not supported on this platform")
}
